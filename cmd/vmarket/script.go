package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/luafixture"
)

func newScriptCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "script",
		Short: "Run Lua scripts and Lua tests in the sandbox",
		Long: `Run provider scripts and Lua module tests in the same sandbox the server
uses: same standard library, host modules (json, http, crypto, url, time,
log, kv, settings), limits and script contract. See runtime/README.md for the
Lua-facing API.`,
	}
	cmd.AddCommand(newScriptRunCmd(), newScriptTestCmd())
	return cmd
}

// scriptFlags are the sandbox options shared by script run and test.
type scriptFlags struct {
	allowHosts []string
	settings   []string
	secrets    []string
	modules    []string
	timeout    time.Duration
	verbose    bool
}

func (f *scriptFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.allowHosts, "allow-host", envList("VMARKET_SCRIPT_ALLOW_HOSTS"),
		`host or host:port the http module may reach, repeatable (env VMARKET_SCRIPT_ALLOW_HOSTS, comma-separated)`)
	fl.StringArrayVar(&f.settings, "setting", nil, `setting for settings.get as key=value, repeatable`)
	fl.StringSliceVar(&f.secrets, "secret", nil, `setting key whose value is secret (redacted from logs and errors), repeatable`)
	fl.StringSliceVar(&f.modules, "modules", envList("VMARKET_SCRIPT_MODULES"),
		`directory of Lua modules for require ("name/name.lua" or "name.lua"), repeatable (env VMARKET_SCRIPT_MODULES)`)
	timeout, _ := time.ParseDuration(envString("VMARKET_SCRIPT_TIMEOUT", "5s"))
	fl.DurationVar(&f.timeout, "timeout", timeout, "wall-clock limit of each run (env VMARKET_SCRIPT_TIMEOUT)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the logs of passing tests and the run record")
}

func (f *scriptFlags) settingsMap() (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range f.settings {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--setting %q: want key=value", kv)
		}
		m[k] = v
	}
	return m, nil
}

func newScriptRunCmd() *cobra.Command {
	var f scriptFlags
	var input string
	var encoded bool
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a Lua script with an input table and print its result and logs",
		Long: `Run FILE (plain Lua, or url-encoded with --encoded as the catalog API stores
it) in the sandbox. The script gets the input table as its first vararg and
as the global "input", and returns a table (or nil), printed as JSON on
stdout. Log lines go to stderr. Exits non-zero when the script fails or hits
a limit; the error names the script line.

require() finds modules in the --modules directories, then next to FILE.
The kv module uses an in-memory store that lives for this command only.`,
		Example: `  vmarket script run start.lua --input '{"order":{"id":"o1"}}'
  vmarket script run start.lua --input @order.json --allow-host api.example.com --setting api_key=k --secret api_key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			source := string(src)
			if encoded {
				if source, err = runtime.DecodeScript(strings.TrimSpace(source)); err != nil {
					return err
				}
			}
			in, err := readInput(input)
			if err != nil {
				return err
			}
			settings, err := f.settingsMap()
			if err != nil {
				return err
			}
			dirs := append(append([]string(nil), f.modules...), filepath.Dir(args[0]))
			eng, err := runtime.NewEngine(runtime.Options{
				MinStates: 1, MaxStates: 1,
				Resolver: dirResolver(dirs),
				KV:       runtime.NewMemoryKV(),
				Logger:   slog.New(slog.DiscardHandler),
			})
			if err != nil {
				return err
			}
			defer eng.Close()
			name := strings.TrimSuffix(filepath.Base(args[0]), filepath.Ext(args[0]))
			res, runErr := eng.Run(cmd.Context(), runtime.Script{Name: name, Source: source}, in, runtime.RunOptions{
				Timeout:      f.timeout,
				AllowedHosts: f.allowHosts,
				Settings:     settings,
				SecretKeys:   f.secrets,
				KVScope:      "cli",
			})
			if res != nil {
				printLogs(cmd.ErrOrStderr(), res.Record.Logs, res.Record.LogsDropped)
				if f.verbose {
					r := res.Record
					fmt.Fprintf(cmd.ErrOrStderr(), "run: %s, %d instructions, %d http requests, memory peak %d B, modules %v\n",
						r.Duration.Round(time.Microsecond), r.Instructions, r.HTTPRequests, r.MemoryPeak, r.Modules)
				}
			}
			if runErr != nil {
				var se *runtime.ScriptError
				if errors.As(runErr, &se) && se.Traceback != "" && f.verbose {
					fmt.Fprintln(cmd.ErrOrStderr(), se.Traceback)
				}
				return runErr
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res.Value)
		},
	}
	cmd.Flags().StringVar(&input, "input", "{}", `input table as JSON, or @FILE to read it from a file`)
	cmd.Flags().BoolVar(&encoded, "encoded", false, "FILE is url-encoded (as the catalog API carries scripts)")
	f.add(cmd)
	return cmd
}

func newScriptTestCmd() *cobra.Command {
	var f scriptFlags
	var fakes bool
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run the Lua tests (*_test.lua) of a directory",
		Long: `Run every *_test.lua file in DIR (not recursive) in the sandbox. A test file
returns a table of test_* functions (or defines global test_* functions);
each test runs in a fresh sandbox run and gets an assertion object t
(t:eq, t:ok, t:fail, t:error, t:log; globals assert_eq, assert_true,
assert_error). Prints PASS/FAIL per test with file:line of failures and a
closing "N passed, M failed" line; exits non-zero on any failure.

DIR/luatest.json may set allowed_hosts, settings, secret_keys, kv_scope,
timeout and modules (directories relative to DIR; default DIR and its
parent, so scripts/vcc/vcc_test.lua can require "vcc"). Flags add to it.

When luatest.json names a fixture ("fixture": "<name>", as the bundled
module, template and payment source folders do), the command first starts
that fixture's loopback fakes on 127.0.0.1 with the tests' seed data, and
the runs get the settings pointing at them, their root CAs, the allowed
host 127.0.0.1 and the test-only host modules (fake, and template or
source); the bundled modules then resolve from the binary's embedded tree,
then from DIR. It prints which fakes it started. Flags still add to this
(a --setting wins over the fixture's). --fakes=false starts nothing.
Fixtures: ` + strings.Join(luafixture.Names(), ", ") + `.`,
		Example: `  vmarket script test scripts/vcc
  vmarket script test templates/vcc-gas-topup
  vmarket script test market/paysource
  vmarket script test ./my-module --allow-host 127.0.0.1 --setting base_url=http://127.0.0.1:9000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			settings, err := f.settingsMap()
			if err != nil {
				return err
			}
			cfg := luatest.Config{
				AllowedHosts: f.allowHosts,
				Settings:     settings,
				SecretKeys:   f.secrets,
				ModuleDirs:   f.modules,
			}
			if cmd.Flags().Changed("timeout") {
				cfg.Timeout = luatest.Duration(f.timeout)
			}
			out := cmd.OutOrStdout()
			var rep *luatest.Report
			fx, err := startFixture(cmd, dir, fakes)
			if err != nil {
				return err
			}
			if fx != nil {
				defer fx.Close()
				rep, err = fx.Run(cmd.Context(), cfg)
			} else {
				rep, err = luatest.Run(cmd.Context(), dir, cfg)
			}
			if err != nil {
				return err
			}
			rep.Write(out, f.verbose)
			if !rep.OK() {
				return fmt.Errorf("%d of %d Lua tests failed", rep.Failed, rep.Failed+rep.Passed)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&fakes, "fakes", true, "start the loopback fakes of the fixture DIR/luatest.json names (--fakes=false: none)")
	return cmd
}

// startFixture starts the fixture dir's luatest.json names and prints
// which fakes it started; nil when it names none or fakes is false.
func startFixture(cmd *cobra.Command, dir string, fakes bool) (*luafixture.Fixture, error) {
	name, err := luafixture.Lookup(dir)
	if err != nil || name == "" {
		return nil, err
	}
	out := cmd.OutOrStdout()
	if !fakes {
		fmt.Fprintf(out, "fixture %s: not started (--fakes=false)\n", name)
		return nil, nil
	}
	fx, err := luafixture.Start(cmd.Context(), name, dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "fixture %s: started", name)
	for _, fake := range fx.Started {
		fmt.Fprintf(out, "\n  %s", fake)
	}
	fmt.Fprintln(out)
	return fx, nil
}

// readInput parses --input: JSON text or @FILE.
func readInput(arg string) (map[string]any, error) {
	data := []byte(arg)
	if rest, ok := strings.CutPrefix(arg, "@"); ok {
		b, err := os.ReadFile(rest)
		if err != nil {
			return nil, err
		}
		data = b
	}
	var in map[string]any
	if err := json.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("--input: want a JSON object: %w", err)
	}
	return in, nil
}

// dirResolver serves modules from directories, first match wins.
func dirResolver(dirs []string) runtime.ModuleResolver {
	rs := make([]runtime.ModuleResolver, 0, len(dirs))
	for _, d := range dirs {
		rs = append(rs, runtime.FSResolver(os.DirFS(d)))
	}
	return runtime.Chain(rs...)
}

func printLogs(w io.Writer, logs []runtime.LogLine, dropped int) {
	for _, l := range logs {
		line := fmt.Sprintf("[%s] %s", l.Level, l.Message)
		if len(l.Fields) > 0 {
			if b, err := json.Marshal(l.Fields); err == nil {
				line += " " + string(b)
			}
		}
		fmt.Fprintln(w, line)
	}
	if dropped > 0 {
		fmt.Fprintf(w, "[log] %d more lines dropped (log cap)\n", dropped)
	}
}
