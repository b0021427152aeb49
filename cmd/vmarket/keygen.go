package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/wallet"
)

// Wallet defaults shared by the commands that use a wallet.
const (
	defaultWalletFile = "vmarket-wallet.json"
	envWallet         = "VMARKET_WALLET"
	envPassphrase     = "VMARKET_WALLET_PASSPHRASE"
)

func newKeygenCmd() *cobra.Command {
	var out, network, passEnv string
	var force bool
	cmd := &cobra.Command{
		Use:   "keygen",
		Short: "Create a wallet: a Curve25519 key pair and its VSYS address",
		Long: `Create a wallet file holding a new Curve25519 key pair, the identity that
signs requests the way the V Cloud market client does (users buying
services, providers uploading templates from their signAddress).

The file is JSON, written with mode 0600. With a passphrase the private key
is encrypted (Argon2id + XChaCha20-Poly1305). The passphrase is never a
flag value: it is read from the environment variable named by
--passphrase-env, or from VMARKET_WALLET_PASSPHRASE when that is set.

An existing file is never replaced unless --force is given. The address and
public key are printed on stdout.`,
		Example: `  vmarket keygen
  vmarket keygen --network testnet --out ~/.vmarket/provider.json
  VMARKET_WALLET_PASSPHRASE='correct horse battery staple' vmarket keygen --out user.json
  read -rs PASS && export PASS && vmarket keygen --passphrase-env PASS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := wallet.ParseNetwork(network)
			if err != nil {
				return err
			}
			pass, err := readPassphrase(passEnv)
			if err != nil {
				return err
			}
			w, err := wallet.Generate(n)
			if err != nil {
				return err
			}
			if err := w.Save(out, wallet.SaveOptions{Passphrase: pass, Force: force}); err != nil {
				if errors.Is(err, os.ErrExist) {
					return fmt.Errorf("wallet file %s already exists; use --force to replace it (its key is lost)", out)
				}
				return err
			}
			encrypted := "no (set --passphrase-env or " + envPassphrase + " to encrypt)"
			if len(pass) > 0 {
				encrypted = "yes"
			}
			o := cmd.OutOrStdout()
			fmt.Fprintf(o, "wallet:     %s\n", out)
			fmt.Fprintf(o, "network:    %s\n", w.Network)
			fmt.Fprintf(o, "address:    %s\n", w.Address())
			fmt.Fprintf(o, "public key: %s\n", w.PublicKey())
			fmt.Fprintf(o, "encrypted:  %s\n", encrypted)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", envString(envWallet, defaultWalletFile), "wallet file to write (env "+envWallet+")")
	f.StringVar(&network, "network", envString("VMARKET_NETWORK", "mainnet"), "VSYS network of the address: mainnet or testnet (env VMARKET_NETWORK)")
	f.StringVar(&passEnv, "passphrase-env", "", "name of the environment variable holding the passphrase (default "+envPassphrase+" when set)")
	f.BoolVar(&force, "force", false, "replace an existing wallet file")
	return cmd
}

// walletFlags pick and open a wallet file: --wallet and --passphrase-env.
// Commands that sign requests (call, template push) share them.
type walletFlags struct {
	path    string
	passEnv string
}

// addWalletFlags adds --wallet and --passphrase-env to cmd.
func addWalletFlags(cmd *cobra.Command, wf *walletFlags) {
	f := cmd.Flags()
	f.StringVar(&wf.path, "wallet", envString(envWallet, defaultWalletFile), "wallet file that signs requests (env "+envWallet+")")
	f.StringVar(&wf.passEnv, "passphrase-env", "", "name of the environment variable holding the wallet passphrase (default "+envPassphrase+")")
}

// exists reports whether the wallet file is there.
func (wf *walletFlags) exists() bool {
	_, err := os.Stat(wf.path)
	return err == nil
}

// load opens the wallet file, decrypting it with the passphrase from the
// environment when it is encrypted.
func (wf *walletFlags) load() (*wallet.Wallet, error) {
	pass, err := readPassphrase(wf.passEnv)
	if err != nil {
		return nil, err
	}
	w, err := wallet.Load(wf.path, pass)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("no wallet file %s: create one with \"vmarket keygen\" or name it with --wallet", wf.path)
	case errors.Is(err, wallet.ErrPassphraseRequired):
		return nil, fmt.Errorf("%w: set %s or --passphrase-env", err, envPassphrase)
	}
	return w, err
}

// readPassphrase returns the passphrase in the environment variable named
// envName, or in VMARKET_WALLET_PASSPHRASE when envName is empty (nil when
// that is unset).
func readPassphrase(envName string) ([]byte, error) {
	if envName == "" {
		if v := os.Getenv(envPassphrase); v != "" {
			return []byte(v), nil
		}
		return nil, nil
	}
	v := os.Getenv(envName)
	if v == "" {
		return nil, fmt.Errorf("--passphrase-env %s: that environment variable is unset or empty", envName)
	}
	return []byte(v), nil
}
