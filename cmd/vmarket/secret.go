package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/wallet"
)

func newSecretCmd() *cobra.Command {
	var server string
	var wf walletFlags
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "secret USER_SERVICE_ID",
		Short: "Read and decrypt the secret of a bought service",
		Long: `Fetch GET /api/v1/userService/ID (signed with your wallet) and open its
"magic": the service's secret, sealed by vmarket to your wallet's public key
(NaCl anonymous sealed box). The user service id is the order id. Prints the
secret, then the service's data.`,
		Example: `  vmarket secret 3f1c2d9e-8a57-4b1e-9c0d-2e6f5a7b8c9d --wallet me.json`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, w, err := signingClient(server, &wf, "", timeout)
			if err != nil {
				return err
			}
			body, _, err := c.Do(cmd.Context(), "GET", "/api/v1/userService/"+args[0], nil, nil)
			if err != nil {
				var ae *client.APIError
				if errors.As(err, &ae) {
					return withDetails(ae)
				}
				return err
			}
			var us struct {
				Magic         string         `json:"magic"`
				ServiceStatus string         `json:"serviceStatus"`
				UserService   map[string]any `json:"userService"`
			}
			if err := json.Unmarshal(body, &us); err != nil {
				return fmt.Errorf("unexpected answer: %w", err)
			}
			if us.Magic == "" {
				return fmt.Errorf("user service %s has no secret yet (service is %s)", args[0], us.ServiceStatus)
			}
			secret, err := wallet.OpenSecret(us.Magic, w.Keys)
			if err != nil {
				return fmt.Errorf("open the secret with wallet %s: %w", w.Address(), err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "secret: %s\n", secret)
			if len(us.UserService) > 0 {
				data, _ := json.MarshalIndent(us.UserService, "", "  ")
				fmt.Fprintf(out, "service: %s\n", data)
			}
			return nil
		},
	}
	addServerFlag(cmd, &server)
	addWalletFlags(cmd, &wf)
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "request timeout")
	return cmd
}
