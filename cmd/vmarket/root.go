package main

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newRootCmd builds the vmarket command tree. Every flag takes its default
// from a VMARKET_* environment variable, named in the flag's help.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "vmarket",
		Short: "Lua-scriptable service marketplace runtime",
		Long: `vmarket serves a V Cloud compatible service marketplace: providers publish
catalogs of service types with Lua start/stop/refund scripts, users buy and
pay for services, and vmarket runs the scripts in a sandbox.

Run "vmarket serve" to start the server with its embedded defaults.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newTokenCmd(),
		newTemplateCmd(),
		newKeygenCmd(), newCallCmd(),
		newScriptCmd(),
		newSecretCmd(),
		newModuleCmd(), newHookCmd(), newSettingsCmd(), newUserCmd(), newKeyCmd(), newRunsCmd(),
		newReconcileCmd(),
	)
	return root
}

// envString returns the environment variable name's value, or def when it
// is unset or empty.
func envString(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// envBool returns the environment variable name parsed as a boolean, or def
// when it is unset or not a boolean.
func envBool(name string, def bool) bool {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if b, err := strconv.ParseBool(v); err == nil {
			return b
		}
	}
	return def
}

// envInt returns the environment variable name as an int, or def.
func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// envDuration returns the environment variable name as a duration, or def.
func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// envList returns the comma-separated environment variable name as a list.
func envList(name string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// addServerFlag adds the --server flag of client commands.
func addServerFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "server", envString("VMARKET_SERVER", "http://127.0.0.1:8080"),
		"vmarket server base URL (env VMARKET_SERVER)")
}
