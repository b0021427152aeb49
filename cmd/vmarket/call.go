package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/wallet"
)

func newCallCmd() *cobra.Command {
	var server, data, token string
	var queries []string
	var unsigned bool
	var timeout time.Duration
	var wf walletFlags
	cmd := &cobra.Command{
		Use:   "call METHOD PATH",
		Short: "Send a wallet-signed request to a vmarket server (curl-like)",
		Long: `Send one request to the server's API and print the JSON answer, indented.
The request is signed with the wallet exactly as the V Cloud market client
signs (headers x-sdk-time, User-Agent, address, public-key, signature).

--data sends a JSON body as given (validated, not re-encoded: the bytes
typed are the bytes signed); "@file" reads it from a file and "@-" from
stdin. --query adds query parameters; repeat a key for a list.
--unsigned sends the address header without a signature (as the client
does for GET /api/v1/order), and works without a wallet file. --token sends
an operator bearer token, alone or with the signature.

Exits non-zero on a non-2xx answer, printing the server's message.`,
		Example: `  vmarket call GET /api/v1/service/provider --query current=1 --query pageSize=10
  vmarket call POST /api/v1/order/add --data '{"serviceID": "0ac3…", "serviceOptions": {"region": "eu"}, "duration": 720, "amount": 1.5}'
  vmarket call GET /api/v1/order --unsigned --query 'statuses[]=OrderPaid' --query 'statuses[]=OrderFiled'
  vmarket call GET /api/v1/order/id/3f1c2d9e-8a57-4b1e-9c0d-2e6f5a7b8c9d --wallet user.json
  vmarket call POST /api/v1/template/add --data @template.json --wallet provider.json
  VMARKET_TOKEN=$(vmarket token) vmarket call GET /api/v1/service/type --unsigned`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, path := strings.ToUpper(args[0]), args[1]
			query := url.Values{}
			for _, q := range queries {
				k, v, ok := strings.Cut(q, "=")
				if !ok || k == "" {
					return fmt.Errorf("--query %q: want key=value", q)
				}
				query.Add(k, v)
			}
			var body any
			if data != "" {
				raw, err := readData(data, cmd.InOrStdin())
				if err != nil {
					return err
				}
				body = json.RawMessage(raw)
			}

			opts := client.Options{Unsigned: unsigned, Token: token, Timeout: timeout}
			if !unsigned || wf.exists() {
				w, err := wf.load()
				if err != nil {
					return err
				}
				opts.Wallet = w
			}
			c, err := client.New(server, opts)
			if err != nil {
				return err
			}
			out, _, err := c.Do(cmd.Context(), method, path, query, body)
			if err != nil {
				var ae *client.APIError
				if errors.As(err, &ae) {
					return withDetails(ae)
				}
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	f := cmd.Flags()
	addServerFlag(cmd, &server)
	addWalletFlags(cmd, &wf)
	f.StringVarP(&data, "data", "d", "", `JSON body; "@file" reads a file, "@-" stdin`)
	f.StringArrayVarP(&queries, "query", "q", nil, "query parameter key=value (repeatable)")
	f.BoolVar(&unsigned, "unsigned", false, "do not sign; send the wallet's address header if there is a wallet")
	f.StringVar(&token, "token", envString("VMARKET_TOKEN", ""), "operator bearer token (env VMARKET_TOKEN)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "request timeout")
	return cmd
}

// readData returns the --data body: inline JSON, @file or @- (stdin).
func readData(data string, stdin io.Reader) ([]byte, error) {
	raw := []byte(data)
	if name, ok := strings.CutPrefix(data, "@"); ok {
		var err error
		if name == "-" {
			raw, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
		} else {
			raw, err = os.ReadFile(name)
		}
		if err != nil {
			return nil, fmt.Errorf("--data %s: %w", data, err)
		}
		raw = bytes.TrimSpace(raw)
	}
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--data is not valid JSON")
	}
	return raw, nil
}

// printJSON writes an answer indented, or as it is when it is not JSON.
func printJSON(w io.Writer, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		buf.Reset()
		buf.Write(data)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// withDetails adds an error answer's details beyond its field to its
// message.
func withDetails(ae *client.APIError) error {
	details := map[string]any{}
	for k, v := range ae.Details {
		if k != "field" {
			details[k] = v
		}
	}
	if len(details) == 0 {
		return ae
	}
	b, err := json.Marshal(details)
	if err != nil {
		return ae
	}
	return fmt.Errorf("%w (details: %s)", ae, b)
}

// signingClient returns a client of server that signs with the wallet of
// wf, and sends token when not empty: what provider commands such as
// "template push" use to act as the provider's signAddress.
func signingClient(server string, wf *walletFlags, token string, timeout time.Duration) (*client.Client, *wallet.Wallet, error) {
	w, err := wf.load()
	if err != nil {
		return nil, nil, err
	}
	c, err := client.New(server, client.Options{Wallet: w, Token: token, Timeout: timeout})
	if err != nil {
		return nil, nil, err
	}
	return c, w, nil
}
