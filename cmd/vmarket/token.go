package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

func newTokenCmd() *cobra.Command {
	var dataDir, secret, role, subject string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an operator JWT",
		Long: `Print an operator bearer token (HS256 JWT) on stdout, signed with the
server's secret: the --jwt-secret given, or the one the server generated
in its data directory. Send it as "Authorization: Bearer <token>".`,
		Example: `  vmarket token
  vmarket token --data-dir /var/lib/vmarket --role support --ttl 1h
  curl -H "Authorization: Bearer $(vmarket token)" ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			key, err := operatorSecret(secret, dataDir, false)
			if err != nil {
				return err
			}
			keys, err := opauth.NewKeyring(key)
			if err != nil {
				return err
			}
			tok, err := keys.Issue(subject, role, ttl, time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	addDataDirFlag(cmd, &dataDir)
	f.StringVar(&secret, "jwt-secret", envString("VMARKET_JWT_SECRET", ""), "signing secret; read from the data directory when unset (env VMARKET_JWT_SECRET)")
	f.StringVar(&role, "role", market.RoleAdmin, "operator role: admin (full access) or support (read-only)")
	f.StringVar(&subject, "subject", "operator", "operator name recorded in the token")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "token lifetime")
	return cmd
}
