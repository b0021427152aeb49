package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/wallet"
	"github.com/vmarket/vmarket/templates"
)

func newTemplateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Check and upload service templates",
		Long: `A template is one JSON file holding a provider, its categories and their
service types. Scripts (serviceAPI.start/stop/refund) are inline Lua or
"@file.lua" references to plain Lua files next to the template. See the
README's "Template format" section.`,
	}
	cmd.AddCommand(newTemplateCheckCmd(), newTemplatePushCmd())
	return cmd
}

// loadTemplate reads a template file, or a folder's template.json.
func loadTemplate(path string) (*market.Template, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, templates.FileName)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	t, _, err := templates.Load(os.DirFS(filepath.Dir(abs)), filepath.Base(abs))
	if err != nil {
		return nil, err
	}
	return t, nil
}

func newTemplateCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check PATH",
		Short: "Validate a template offline",
		Long: `Validate a template file (or a folder holding template.json) without a
server: field rules, unique names, price sets, and every script decoded and
compiled as Lua. Exits non-zero naming the field and script line at fault.`,
		Example: `  vmarket template check templates/container-service
  vmarket template check ./my-provider/template.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := loadTemplate(args[0])
			if err != nil {
				return err
			}
			templates.Expand(t, "http://127.0.0.1:8080")
			if err := market.NewCatalog(nil, luascript.Compiler{}).CheckTemplate(t); err != nil {
				return err
			}
			types := 0
			for _, c := range t.Categories {
				types += len(c.ServiceTypes)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: provider %q, %d categories, %d service types\n", t.Provider.Name, len(t.Categories), types)
			return nil
		},
	}
}

func newTemplatePushCmd() *cobra.Command {
	var server, token string
	var wf walletFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "push PATH",
		Short: "Upload a template to a server",
		Long: `Load a template (url-encoding its scripts), validate it offline, and upload
it to POST /api/v1/template/add. The whole tree is created or updated in one
transaction on the server.

The upload is signed with the provider's wallet (--wallet, default
./vmarket-wallet.json) when that file exists: a new provider gets that wallet
as its signAddress, and only that wallet may change it later. Without a
wallet, an operator token (--token) is needed.`,
		Example: `  vmarket keygen --out provider.json
  vmarket template push ./my-provider --wallet provider.json
  vmarket template push templates/container-service --token "$(vmarket token)"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := loadTemplate(args[0])
			if err != nil {
				return err
			}
			templates.Expand(t, server)
			if err := market.NewCatalog(nil, luascript.Compiler{}).CheckTemplate(t); err != nil {
				return err
			}
			var c *client.Client
			signer := "operator token"
			switch {
			case wf.exists() || cmd.Flags().Changed("wallet"):
				var w *wallet.Wallet
				if c, w, err = signingClient(server, &wf, token, timeout); err != nil {
					return err
				}
				signer = "wallet " + w.Address()
			case token != "":
				if c, err = client.New(server, client.Options{Token: token, Timeout: timeout}); err != nil {
					return err
				}
			default:
				return fmt.Errorf("no credentials: create a provider wallet with \"vmarket keygen\" (or name one with --wallet), or pass an operator --token")
			}
			body, err := json.Marshal(t)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "uploading template for provider %q (%d bytes) to %s, signed by %s\n", t.Provider.Name, len(body), server, signer)
			out, _, err := c.Do(cmd.Context(), "POST", "/api/v1/template/add", nil, json.RawMessage(body))
			if err != nil {
				var ae *client.APIError
				if errors.As(err, &ae) {
					return withDetails(ae)
				}
				return err
			}
			var res market.TemplateResult
			if err := json.Unmarshal(out, &res); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: provider %q: %d created, %d updated\n", t.Provider.Name, res.Created, res.Updated)
			for _, st := range res.ServiceTypes {
				fmt.Fprintf(cmd.OutOrStdout(), "  %s / %s  %s\n", st.Category, st.Name, st.ID)
			}
			return nil
		},
	}
	addServerFlag(cmd, &server)
	addWalletFlags(cmd, &wf)
	cmd.Flags().StringVar(&token, "token", envString("VMARKET_TOKEN", ""), "operator bearer token (env VMARKET_TOKEN)")
	cmd.Flags().DurationVar(&timeout, "timeout", 60*time.Second, "request timeout")
	return cmd
}
