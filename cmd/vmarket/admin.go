package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/operator"
)

// adminFlags are the connection flags of the admin commands.
type adminFlags struct {
	server  string
	token   string
	timeout time.Duration
	json    bool
}

// addAdminFlags adds --server, --token, --timeout and --json to every
// subcommand of cmd.
func addAdminFlags(cmd *cobra.Command, f *adminFlags) {
	p := cmd.PersistentFlags()
	p.StringVar(&f.server, "server", envString("VMARKET_SERVER", "http://127.0.0.1:8080"), "vmarket server base URL (env VMARKET_SERVER)")
	p.StringVar(&f.token, "token", envString("VMARKET_TOKEN", ""), "operator bearer token: admin for changes, support may read (env VMARKET_TOKEN)")
	p.DurationVar(&f.timeout, "timeout", 30*time.Second, "request timeout")
	p.BoolVar(&f.json, "json", false, "print the server's JSON answer")
}

// call sends one admin request and decodes the answer into out (unless
// nil). With --json it prints the answer and reports printed = true.
func (f *adminFlags) call(cmd *cobra.Command, method, path string, q url.Values, body, out any) (printed bool, err error) {
	if f.token == "" {
		return false, errors.New("no operator token: pass --token or set VMARKET_TOKEN (e.g. VMARKET_TOKEN=$(vmarket token))")
	}
	c, err := client.New(f.server, client.Options{Token: f.token, Timeout: f.timeout})
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
	defer cancel()
	b, _, err := c.Do(ctx, method, "/api/v1/admin"+path, q, body)
	if err != nil {
		var ae *client.APIError
		if errors.As(err, &ae) {
			return false, withDetails(ae)
		}
		return false, err
	}
	if f.json {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), string(b))
		return true, err
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return false, fmt.Errorf("unexpected answer: %w", err)
		}
	}
	return false, nil
}

// table writes aligned columns.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// unixTime formats unix seconds for tables ("-" for 0).
func unixTime(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04:05")
}

// readArgFile reads a file argument; "-" is stdin.
func readArgFile(cmd *cobra.Command, path string) (string, error) {
	if path == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		return string(b), err
	}
	b, err := os.ReadFile(path)
	return string(b), err
}

func newModuleCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "module",
		Short: "Manage operator Lua modules on a server (upload, activate, roll back, dry-run)",
		Long: `Operator modules are Lua modules the operator uploads to a running server.
Every upload is a new version, compiled before it is accepted; one version
of each module is active. require(name) in any script (lifecycle scripts,
hooks, other modules) finds the active operator module first, then the
bundled ones. Activation takes effect for the next run, without a restart;
a run in progress keeps the versions it started with.

Hooks are modules too: bind their functions to events with "vmarket hook".`,
		Example: `  export VMARKET_TOKEN=$(vmarket token)
  vmarket module push limits ./limits.lua --activate
  vmarket module list
  vmarket module versions limits
  vmarket module rollback limits
  vmarket module dryrun limits --event before.order.create --input '{"address":"AR…","amount":2}'`,
	}
	addAdminFlags(cmd, &f)
	cmd.AddCommand(newModulePushCmd(&f), newModuleListCmd(&f), newModuleVersionsCmd(&f), newModuleShowCmd(&f),
		newModuleActivateCmd(&f), newModuleRollbackCmd(&f), newModuleDeleteCmd(&f), newModuleDryRunCmd(&f))
	return cmd
}

func newModulePushCmd(f *adminFlags) *cobra.Command {
	var activate bool
	cmd := &cobra.Command{
		Use:   "push NAME FILE",
		Short: "Upload FILE (plain Lua, - for stdin) as a new version of module NAME",
		Long: `Upload a Lua file as the next version of a module. The server compiles it
first; a syntax error is reported as FILE:LINE and nothing is stored. The new
version is inactive until activated (--activate does both at once).`,
		Example: `  vmarket module push greet greet.lua
  vmarket module push greet greet.lua --activate`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := readArgFile(cmd, args[1])
			if err != nil {
				return err
			}
			var m operator.ModuleVersion
			printed, err := f.call(cmd, "POST", "/modules/"+url.PathEscape(args[0]), nil, map[string]any{"source": src, "activate": activate}, &m)
			if err != nil {
				var ae *client.APIError
				if errors.As(err, &ae) {
					if line, ok := ae.Details["line"].(float64); ok {
						return fmt.Errorf("%s:%d: %s", args[1], int(line), ae.Message)
					}
				}
				return err
			}
			if printed {
				return nil
			}
			state := "inactive (activate with: vmarket module activate " + args[0] + " " + strconv.Itoa(m.Version) + ")"
			if m.Active {
				state = "active"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "module %s version %d (%s, %d bytes): %s\n", m.Name, m.Version, m.Hash, m.Size, state)
			return nil
		},
	}
	cmd.Flags().BoolVar(&activate, "activate", false, "make the new version active at once")
	return cmd
}

func newModuleListCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the modules with their active and latest versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct{ List []operator.Module }
			if printed, err := f.call(cmd, "GET", "/modules", nil, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, m := range ans.List {
				active := "-"
				if m.Active > 0 {
					active = fmt.Sprintf("v%d (%s)", m.Active, m.ActiveHash)
				}
				rows = append(rows, []string{m.Name, active, strconv.Itoa(m.Latest), strconv.Itoa(m.Versions), m.Origin, unixTime(m.UpdatedAt)})
			}
			return table(cmd.OutOrStdout(), "NAME\tACTIVE\tLATEST\tVERSIONS\tORIGIN\tUPDATED", rows)
		},
	}
}

func newModuleVersionsCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List a module's versions and its activation history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ans struct {
				Versions    []operator.ModuleVersion
				Activations []operator.Activation
			}
			if printed, err := f.call(cmd, "GET", "/modules/"+url.PathEscape(args[0]), nil, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, v := range ans.Versions {
				mark := ""
				if v.Active {
					mark = "active"
				}
				rows = append(rows, []string{strconv.Itoa(v.Version), v.Hash, strconv.Itoa(v.Size), v.Origin, v.CreatedBy, unixTime(v.CreatedAt), mark})
			}
			if err := table(cmd.OutOrStdout(), "VERSION\tHASH\tBYTES\tORIGIN\tBY\tCREATED\t", rows); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nactivations (newest first):")
			rows = nil
			for _, a := range ans.Activations {
				v := strconv.Itoa(a.Version)
				if a.Version == 0 {
					v = "none"
				}
				rows = append(rows, []string{unixTime(a.At), v, a.By})
			}
			return table(cmd.OutOrStdout(), "AT\tVERSION\tBY", rows)
		},
	}
}

func newModuleShowCmd(f *adminFlags) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print the source of a module version (the active one by default)",
		Example: `  vmarket module show greet > greet.lua
  vmarket module show greet --version 2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			v := "active"
			if version > 0 {
				v = strconv.Itoa(version)
			}
			var m operator.ModuleVersion
			if printed, err := f.call(cmd, "GET", "/modules/"+url.PathEscape(args[0])+"/versions/"+v, nil, nil, &m); err != nil || printed {
				return err
			}
			_, err := io.WriteString(cmd.OutOrStdout(), m.Source)
			return err
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "version to print (default the active one)")
	return cmd
}

func newModuleActivateCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "activate NAME VERSION | NAME=VERSION...",
		Short: "Make module versions active, all at once (VERSION 0 deactivates)",
		Long: `Activate one version of a module, or versions of several modules at once:
the next run sees all of them or none, never a mix.`,
		Example: `  vmarket module activate greet 3
  vmarket module activate billing=4 billing.util=2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			versions := map[string]int{}
			if len(args) == 2 && !strings.Contains(args[0], "=") && !strings.Contains(args[1], "=") {
				args = []string{args[0] + "=" + args[1]}
			}
			for _, a := range args {
				name, v, ok := strings.Cut(a, "=")
				n, err := strconv.Atoi(v)
				if !ok || err != nil || n < 0 {
					return fmt.Errorf("%q: want NAME=VERSION", a)
				}
				versions[name] = n
			}
			var ans struct {
				Versions   map[string]int
				Generation uint64
			}
			if printed, err := f.call(cmd, "POST", "/modules/activate", nil, map[string]any{"versions": versions}, &ans); err != nil || printed {
				return err
			}
			names := make([]string, 0, len(ans.Versions))
			for n := range ans.Versions {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "module %s: version %d active\n", n, ans.Versions[n])
			}
			return nil
		},
	}
}

func newModuleRollbackCmd(f *adminFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback NAME",
		Short: "Re-activate the version that was active before the current one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ans struct{ Versions map[string]int }
			if printed, err := f.call(cmd, "POST", "/modules/"+url.PathEscape(args[0])+"/rollback", nil, nil, &ans); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "module %s: rolled back to version %d\n", args[0], ans.Versions[args[0]])
			return nil
		},
	}
}

func newModuleDeleteCmd(f *adminFlags) *cobra.Command {
	var version int
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a module (all versions), or one inactive version",
		Long: `Delete a module with every version, or with --version one version that is
not the active one. A module hooks are bound to cannot be deleted: unbind its
hooks first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/modules/" + url.PathEscape(args[0])
			what := "module " + args[0]
			if version > 0 {
				path += "/versions/" + strconv.Itoa(version)
				what += " version " + strconv.Itoa(version)
			}
			if printed, err := f.call(cmd, "DELETE", path, nil, nil, nil); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s deleted\n", what)
			return nil
		},
	}
	cmd.Flags().IntVar(&version, "version", 0, "delete only this version")
	return cmd
}

func newModuleDryRunCmd(f *adminFlags) *cobra.Command {
	var req operator.DryRunRequest
	var input, file string
	var settings, kv []string
	cmd := &cobra.Command{
		Use:   "dryrun [NAME]",
		Short: "Run a module function or hook on the server's sandbox, with no effect outside it",
		Long: `Run a function of a module (a stored version, or a local file with --file)
against a sample input on the server, without side effects outside the
sandbox: kv reads and writes go to an in-memory store (seed it with --kv),
HTTP reaches only the hosts given with --allow-host (your fakes), nothing is
recorded. Modules resolve as in a real run, except the one under test. Prints
the result, a before-check's rejection, the error with its line and the logs.

--event calls the event's conventional function (on_order_paid for
order.paid, before_order_create for before.order.create). With --file and
neither --function nor --event, the file runs as a lifecycle script.`,
		Example: `  vmarket module dryrun limits --event before.order.create --input '{"address":"A","amount":3}'
  vmarket module dryrun notify --version 4 --event order.paid --input @paid.json --allow-host 127.0.0.1:9000
  vmarket module dryrun limits --file limits.lua --event before.order.create --kv orders:A=5
  vmarket module dryrun --file start.lua --input @input.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				req.Module = args[0]
			}
			if file != "" {
				src, err := readArgFile(cmd, file)
				if err != nil {
					return err
				}
				req.Source = src
			}
			if input != "" {
				raw := input
				if strings.HasPrefix(input, "@") {
					b, err := os.ReadFile(input[1:])
					if err != nil {
						return err
					}
					raw = string(b)
				}
				if err := json.Unmarshal([]byte(raw), &req.Input); err != nil {
					return fmt.Errorf("--input: want a JSON object: %w", err)
				}
			}
			var err error
			if req.Settings, err = keyValues("--setting", settings); err != nil {
				return err
			}
			if req.KV, err = keyValues("--kv", kv); err != nil {
				return err
			}
			var res operator.DryRunResult
			if printed, err := f.call(cmd, "POST", "/dryrun", nil, req, &res); err != nil || printed {
				return err
			}
			return printDryRun(cmd, &res)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&req.Version, "version", 0, "stored version to run (default the active one)")
	fl.StringVar(&file, "file", "", "run this local Lua file (- for stdin) instead of a stored version")
	fl.StringVar(&req.Function, "function", "", "function of the module to call")
	fl.StringVar(&req.Event, "event", "", "event whose hook function to call (e.g. order.paid, before.order.create)")
	fl.StringVar(&input, "input", "", "the argument: a JSON object, or @file.json")
	fl.StringVar(&req.Provider, "provider", "", "settings scope: this provider's settings (default the operator's)")
	fl.StringArrayVar(&settings, "setting", nil, "override a setting as key=value, repeatable")
	fl.StringSliceVar(&req.Secrets, "secret", nil, "setting key whose value is secret (redacted), repeatable")
	fl.StringSliceVar(&req.AllowHosts, "allow-host", nil, "host or host:port the run may call over HTTP (a fake), repeatable")
	fl.StringArrayVar(&kv, "kv", nil, "seed the in-memory kv with key=value, repeatable")
	fl.IntVar(&req.TimeoutMs, "timeout-ms", 0, "deadline of the run in milliseconds (default the after-hook deadline)")
	return cmd
}

// keyValues parses key=value flags.
func keyValues(flag string, list []string) (map[string]string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// printDryRun prints a dry run's outcome; a failed run is an error (exit
// status 1) after its logs.
func printDryRun(cmd *cobra.Command, r *operator.DryRunResult) error {
	out := cmd.OutOrStdout()
	for _, l := range r.Logs {
		fields := ""
		if len(l.Fields) > 0 {
			b, _ := json.Marshal(l.Fields)
			fields = " " + string(b)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "%s %-5s %s%s\n", l.Time.Format("15:04:05.000"), l.Level, l.Message, fields)
	}
	if r.LogsDropped > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "(%d log lines dropped)\n", r.LogsDropped)
	}
	if len(r.KV) > 0 {
		b, _ := json.Marshal(r.KV)
		fmt.Fprintf(cmd.ErrOrStderr(), "kv after the run: %s\n", b)
	}
	if !r.OK {
		msg := r.Error
		if r.ErrorLine > 0 && !strings.Contains(msg, ":"+strconv.Itoa(r.ErrorLine)+":") {
			msg = fmt.Sprintf("line %d: %s", r.ErrorLine, msg)
		}
		return fmt.Errorf("run failed after %.1f ms: %s", r.DurationMs, msg)
	}
	if r.Rejected != "" {
		fmt.Fprintf(out, "REJECTED: %s\n", r.Rejected)
	}
	b, err := json.MarshalIndent(r.Value, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\n", b)
	fmt.Fprintf(cmd.ErrOrStderr(), "ok in %.1f ms (%s; modules %s)\n", r.DurationMs, r.Version, strings.Join(r.Modules, ", "))
	return nil
}

func newHookCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Bind operator module functions to market events",
		Long: `A hook is a function of an operator module bound to an event. It gets one
argument, the event table: the event's payload (e.g. {order = {...}}) plus
event = "<name>". The function name defaults to the event's conventional
one: on_order_paid for order.paid, before_order_create for
before.order.create.

After-events (order.created, order.paid, order.filed, order.completed,
order.refunded, service.start_failed, template.uploaded) run in the
background with their own deadline; a failing hook never breaks the order.

Before-checks (before.order.create, before.order.refund,
before.template.upload) run first, each with a short deadline, and reject the
action by returning {reject = "message"}: the caller gets 403 with that
message. A check that errors or times out does not block the action. Every
run is recorded (vmarket runs).

Files in "serve --hooks-dir DIR" (DIR/hooks/<name>.lua) are bound
automatically to the events whose conventional functions they export.`,
		Example: `  vmarket module push limits limits.lua --activate
  vmarket hook bind before.order.create limits
  vmarket hook bind order.paid notify --function announce
  vmarket hook list
  vmarket hook unbind 3`,
	}
	addAdminFlags(cmd, &f)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List hook bindings and the events they may bind to",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans operator.HookList
			if printed, err := f.call(cmd, "GET", "/hooks", nil, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, h := range ans.Hooks {
				rows = append(rows, []string{strconv.FormatInt(h.ID, 10), h.Event, h.Module, h.Function, h.Origin, h.CreatedBy})
			}
			if err := table(cmd.OutOrStdout(), "ID\tEVENT\tMODULE\tFUNCTION\tORIGIN\tBY", rows); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nevents:")
			rows = nil
			for _, e := range ans.Events {
				kind := "after"
				if e.Before {
					kind = "before (may reject)"
				}
				rows = append(rows, []string{e.Event, e.Function, kind})
			}
			return table(cmd.OutOrStdout(), "EVENT\tFUNCTION\tKIND", rows)
		},
	}, newHookBindCmd(&f), &cobra.Command{
		Use:   "unbind ID",
		Short: "Remove a hook binding",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if printed, err := f.call(cmd, "DELETE", "/hooks/"+url.PathEscape(args[0]), nil, nil, nil); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hook %s unbound\n", args[0])
			return nil
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "Show the hooks directory (--hooks-dir) status: files, errors, versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct {
				Generation     uint64
				HooksDir       *operator.DirStatus
				RecordsDropped uint64
			}
			if printed, err := f.call(cmd, "GET", "/status", nil, nil, &ans); err != nil || printed {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "generation %d, run records dropped %d\n", ans.Generation, ans.RecordsDropped)
			if ans.HooksDir == nil {
				fmt.Fprintln(out, "no hooks directory (serve --hooks-dir)")
				return nil
			}
			d := ans.HooksDir
			fmt.Fprintf(out, "hooks directory %s: scanned %s, %d scans, %d changes\n", d.Dir, d.Scanned.Format(time.RFC3339), d.Scans, d.Changes)
			if d.Error != "" {
				fmt.Fprintf(out, "error: %s\n", d.Error)
			}
			var rows [][]string
			for _, fl := range d.Files {
				state := "ok"
				if !fl.OK {
					state = "BROKEN: " + fl.Error
					if fl.Line > 0 {
						state = fmt.Sprintf("BROKEN line %d: %s", fl.Line, fl.Error)
					}
				}
				v := "-"
				if fl.Version > 0 {
					v = "v" + strconv.Itoa(fl.Version)
				}
				rows = append(rows, []string{fl.Path, fl.Module, v, strings.Join(fl.Events, ","), state})
			}
			return table(out, "FILE\tMODULE\tSERVING\tEVENTS\tSTATE", rows)
		},
	})
	return cmd
}

func newHookBindCmd(f *adminFlags) *cobra.Command {
	var function string
	cmd := &cobra.Command{
		Use:   "bind EVENT MODULE",
		Short: "Bind a function of an active module to an event",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h operator.Hook
			body := map[string]any{"event": args[0], "module": args[1], "function": function}
			if printed, err := f.call(cmd, "POST", "/hooks", nil, body, &h); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "hook %d: %s.%s on %s\n", h.ID, h.Module, h.Function, h.Event)
			return nil
		},
	}
	cmd.Flags().StringVar(&function, "function", "", "function to call (default the event's conventional name)")
	return cmd
}

func newSettingsCmd() *cobra.Command {
	var f adminFlags
	var provider string
	cmd := &cobra.Command{
		Use:   "settings",
		Short: "Manage the settings and secrets scripts read with settings.get",
		Long: `Settings are key/value pairs scripts read with require("settings").get(key).
Operator settings (the default scope) are seen by hooks and by every
provider's scripts; --provider settings only by that provider's scripts, and
they win over operator settings of the same key.

Secrets (--secret) are sealed at rest, never shown again by the API, and
redacted from logs and run records. Pass a secret's value as "-" to read it
from stdin, so it stays out of your shell history.`,
		Example: `  vmarket settings set vcc_url https://vcc.example
  printf %s "$KEY" | vmarket settings set vcc_api_key - --secret
  vmarket settings set api_url https://acme.example --provider acme
  vmarket settings list
  vmarket settings delete api_url --provider acme`,
	}
	addAdminFlags(cmd, &f)
	cmd.PersistentFlags().StringVar(&provider, "provider", "", "provider scope (default the operator's settings)")
	q := func() url.Values {
		if provider == "" {
			return nil
		}
		return url.Values{"provider": {provider}}
	}
	var secret bool
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set a setting (VALUE - reads stdin)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := args[1]
			if value == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				value = strings.TrimRight(string(b), "\r\n")
			}
			var v operator.SettingView
			if printed, err := f.call(cmd, "PUT", "/settings/"+url.PathEscape(args[0]), q(), map[string]any{"value": value, "secret": secret}, &v); err != nil || printed {
				return err
			}
			printSettings(cmd, []operator.SettingView{v})
			return nil
		},
	}
	set.Flags().BoolVar(&secret, "secret", false, "the value is a secret: sealed, never shown, redacted from logs")
	var operatorOnly bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List settings (secrets masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			query := q()
			if operatorOnly {
				query = url.Values{"scope": {"operator"}}
			}
			var ans struct{ List []operator.SettingView }
			if printed, err := f.call(cmd, "GET", "/settings", query, nil, &ans); err != nil || printed {
				return err
			}
			printSettings(cmd, ans.List)
			return nil
		},
	}
	list.Flags().BoolVar(&operatorOnly, "operator", false, "only the operator's settings")
	cmd.AddCommand(set, list, &cobra.Command{
		Use:   "get KEY",
		Short: "Show one setting (a secret masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var v operator.SettingView
			if printed, err := f.call(cmd, "GET", "/settings/"+url.PathEscape(args[0]), q(), nil, &v); err != nil || printed {
				return err
			}
			printSettings(cmd, []operator.SettingView{v})
			return nil
		},
	}, &cobra.Command{
		Use:   "delete KEY",
		Short: "Delete a setting",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if printed, err := f.call(cmd, "DELETE", "/settings/"+url.PathEscape(args[0]), q(), nil, nil); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "setting %s deleted\n", args[0])
			return nil
		},
	})
	return cmd
}

func printSettings(cmd *cobra.Command, list []operator.SettingView) {
	var rows [][]string
	for _, s := range list {
		scope := "operator"
		if s.Provider != "" {
			scope = "provider " + s.Provider
		}
		secret := ""
		if s.Secret {
			secret = "secret"
		}
		rows = append(rows, []string{scope, s.Key, s.Value, secret, s.UpdatedBy, unixTime(s.UpdatedAt)})
	}
	_ = table(cmd.OutOrStdout(), "SCOPE\tKEY\tVALUE\t\tBY\tUPDATED", rows)
}

func newUserCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage operator users and their tokens",
		Long: `Operator users hold JWTs with a role: admin (everything) or support
(read-only: every write answers 403). A user's tokens stop working when the
user is revoked. Bootstrap with the data directory's secret ("vmarket token"),
then hand out user tokens.`,
		Example: `  export VMARKET_TOKEN=$(vmarket token)
  vmarket user create alice --role admin
  vmarket user create sam --role support --ttl 168h
  vmarket user token sam --ttl 24h
  vmarket user revoke sam`,
	}
	addAdminFlags(cmd, &f)
	var role, ttl string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user and print its first token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ut operator.UserToken
			if printed, err := f.call(cmd, "POST", "/users", nil, map[string]any{"name": args[0], "role": role, "ttl": ttl}, &ut); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "user %s (%s), token valid until %s:\n", ut.User.Name, ut.User.Role, unixTime(ut.ExpiresAt))
			fmt.Fprintln(cmd.OutOrStdout(), ut.Token)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "support", "role: admin or support (read-only)")
	create.Flags().StringVar(&ttl, "ttl", "", "token lifetime, e.g. 24h (default 720h)")
	token := &cobra.Command{
		Use:   "token NAME",
		Short: "Issue a new token to a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ut operator.UserToken
			if printed, err := f.call(cmd, "POST", "/users/"+url.PathEscape(args[0])+"/token", nil, map[string]any{"ttl": ttl}, &ut); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token of %s (%s), valid until %s:\n", ut.User.Name, ut.User.Role, unixTime(ut.ExpiresAt))
			fmt.Fprintln(cmd.OutOrStdout(), ut.Token)
			return nil
		},
	}
	token.Flags().StringVar(&ttl, "ttl", "", "token lifetime, e.g. 24h (default 720h)")
	cmd.AddCommand(create, token, &cobra.Command{
		Use:   "list",
		Short: "List users, revoked ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct{ List []operator.User }
			if printed, err := f.call(cmd, "GET", "/users", nil, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, u := range ans.List {
				rows = append(rows, []string{u.Name, u.Role, u.CreatedBy, unixTime(u.CreatedAt), unixTime(u.RevokedAt)})
			}
			return table(cmd.OutOrStdout(), "NAME\tROLE\tBY\tCREATED\tREVOKED", rows)
		},
	}, &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a user: all its tokens stop working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if printed, err := f.call(cmd, "DELETE", "/users/"+url.PathEscape(args[0]), nil, nil, nil); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s revoked\n", args[0])
			return nil
		},
	})
	return cmd
}

func newKeyCmd() *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Rotate and retire the operator JWT signing keys",
		Long: `"key rotate" creates a new signing key (sealed in the database) that signs
every new token; tokens signed with older keys keep working until "key retire"
removes their key. The data directory's secret ("vmarket token") is one of the
keys: retire it to make tokens printed by "vmarket token" stop working.`,
		Example: `  vmarket key rotate
  vmarket user token alice            # a token signed with the new key
  vmarket key list
  vmarket key retire 3f2a9c0d1e2b`,
	}
	addAdminFlags(cmd, &f)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List signing keys (ids only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ans struct{ List []operator.KeyInfo }
			if printed, err := f.call(cmd, "GET", "/keys", nil, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, k := range ans.List {
				state := "verifies"
				switch {
				case k.Current:
					state = "current (signs)"
				case k.RetiredAt != 0:
					state = "retired"
				}
				where := "data dir / flag"
				if k.Stored {
					where = "database"
				}
				rows = append(rows, []string{k.ID, state, where, unixTime(k.CreatedAt), unixTime(k.RetiredAt)})
			}
			return table(cmd.OutOrStdout(), "ID\tSTATE\tKEPT IN\tCREATED\tRETIRED", rows)
		},
	}, &cobra.Command{
		Use:   "rotate",
		Short: "Create a new current signing key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var k operator.KeyInfo
			if printed, err := f.call(cmd, "POST", "/keys/rotate", nil, nil, &k); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s is current; retire old keys with: vmarket key retire ID\n", k.ID)
			return nil
		},
	}, &cobra.Command{
		Use:   "retire ID",
		Short: "Retire a signing key: tokens signed with it stop working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if printed, err := f.call(cmd, "DELETE", "/keys/"+url.PathEscape(args[0]), nil, nil, nil); err != nil || printed {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signing key %s retired\n", args[0])
			return nil
		},
	})
	return cmd
}

func newRunsCmd() *cobra.Command {
	var f adminFlags
	var kind, name, event, order, provider, from, to string
	var since time.Duration
	var failed bool
	var page, pageSize int
	cmd := &cobra.Command{
		Use:   "runs [ID]",
		Short: "Show the recorded script and hook runs",
		Long: `Every lifecycle script run and hook run is recorded: kind, name, version,
order, provider, start, duration, result or error with its line, the limit
that stopped it, log lines (trimmed). List them newest first with filters,
or show one run in full by its ID.`,
		Example: `  vmarket runs --order 6c1f…
  vmarket runs --kind hook --failed --since 1h
  vmarket runs --provider acme --from 2026-01-01T00:00:00Z --page 2
  vmarket runs 1234`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				var r operator.Run
				if printed, err := f.call(cmd, "GET", "/runs/"+url.PathEscape(args[0]), nil, nil, &r); err != nil || printed {
					return err
				}
				b, err := json.MarshalIndent(r, "", "  ")
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"kind": kind, "name": name, "event": event, "orderId": order, "provider": provider, "from": from, "to": to} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if since > 0 {
				q.Set("from", strconv.FormatInt(time.Now().Add(-since).Unix(), 10))
			}
			if failed {
				q.Set("ok", "false")
			}
			q.Set("current", strconv.Itoa(page))
			q.Set("pageSize", strconv.Itoa(pageSize))
			var ans operator.RunPage
			if printed, err := f.call(cmd, "GET", "/runs", q, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, r := range ans.List {
				result := "ok"
				switch {
				case r.Rejected != "":
					result = "rejected: " + r.Rejected
				case !r.OK:
					result = r.Error
					if r.Limit != "" {
						result = "limit " + r.Limit + ": " + result
					}
					if r.ErrorLine > 0 {
						result = fmt.Sprintf("line %d: %s", r.ErrorLine, result)
					}
				}
				if len(result) > 80 {
					result = result[:77] + "..."
				}
				label := r.Name
				if r.Event != "" {
					label += " (" + r.Event + ")"
				}
				rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Started.UTC().Format("2006-01-02 15:04:05.000"), r.Kind, label,
					r.Version, r.OrderID, r.Provider, fmt.Sprintf("%.1fms", r.Duration), result})
			}
			if err := table(cmd.OutOrStdout(), "ID\tSTARTED\tKIND\tNAME\tVERSION\tORDER\tPROVIDER\tDURATION\tRESULT", rows); err != nil {
				return err
			}
			p := ans.Pagination
			fmt.Fprintf(cmd.ErrOrStderr(), "page %d of %d runs (%d per page)\n", p.Current, p.Total, p.PageSize)
			return nil
		},
	}
	addAdminFlags(cmd, &f)
	fl := cmd.Flags()
	fl.StringVar(&kind, "kind", "", "script or hook")
	fl.StringVar(&name, "name", "", "script step (start, stop, refund) or hook module.function")
	fl.StringVar(&event, "event", "", "hook event")
	fl.StringVar(&order, "order", "", "order id")
	fl.StringVar(&provider, "provider", "", "provider")
	fl.StringVar(&from, "from", "", "started at or after (RFC 3339 or unix seconds)")
	fl.StringVar(&to, "to", "", "started at or before (RFC 3339 or unix seconds)")
	fl.DurationVar(&since, "since", 0, "started within this long (e.g. 1h); overrides --from")
	fl.BoolVar(&failed, "failed", false, "only failed runs")
	fl.IntVar(&page, "page", 1, "page number")
	fl.IntVar(&pageSize, "page-size", 20, "runs per page (at most 100)")
	return cmd
}
