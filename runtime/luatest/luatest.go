// Package luatest runs Lua test files (*_test.lua) in the runtime sandbox:
// the machinery behind "vmarket script test DIR", usable from Go tests.
//
// A test file returns a table whose test_* functions are the tests, or
// defines global test_* functions; optional setup(t)/teardown(t) run
// around each test. Every test runs in a fresh sandbox run and gets an
// assertion object t (t:eq, t:ok, t:fail, t:error, t:log); the globals
// assert_eq, assert_true and assert_error do the same. A failure is
// reported with the file and line of the failing assertion.
//
// DIR/luatest.json (optional) configures the runs; see Config. A Go test
// typically starts an httptest fake, then calls Run with the fake's host
// in Config.AllowedHosts and its URL in Config.Settings.
package luatest

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/vmarket/vmarket/runtime"
)

//go:embed harness.lua
var harnessSource string

// ConfigFile is the optional configuration file in a test directory.
const ConfigFile = "luatest.json"

// Config configures the runs of a test directory. Fields from
// luatest.json and from the caller are merged (lists appended, maps
// merged with the caller winning).
type Config struct {
	// AllowedHosts, RootCAs, Settings, SecretKeys, KVScope and Values are
	// passed to every run (see runtime.RunOptions). KVScope defaults to
	// "test".
	AllowedHosts []string          `json:"allowed_hosts"`
	RootCAs      []byte            `json:"-"`
	Settings     map[string]string `json:"settings"`
	SecretKeys   []string          `json:"secret_keys"`
	KVScope      string            `json:"kv_scope"`
	Values       map[string]any    `json:"-"`
	// Timeout of each test run (5s).
	Timeout Duration `json:"timeout"`
	// ModuleDirs are directories (relative to the test directory) whose Lua
	// modules tests may require; default: the test directory and its
	// parent (so scripts/vcc/vcc_test.lua can require "vcc").
	ModuleDirs []string `json:"modules"`
	// Modules resolves further modules, asked before ModuleDirs (e.g. the
	// embedded scripts tree).
	Modules runtime.ModuleResolver `json:"-"`
	// Engine runs the tests; nil builds one with an in-memory KV store.
	Engine *runtime.Engine `json:"-"`
	// Logger receives the scripts' log lines (discarded when nil).
	Logger *slog.Logger `json:"-"`
}

// Duration is a time.Duration read from JSON as "5s" or seconds.
type Duration time.Duration

// UnmarshalJSON accepts "1.5s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("timeout: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("timeout: want a duration string or seconds: %w", err)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// TestResult is the outcome of one test function.
type TestResult struct {
	File     string // file name relative to the directory
	Name     string // test function name
	Passed   bool
	Message  string // failure as "file:line: message"
	Duration time.Duration
	Logs     []runtime.LogLine
}

// Report is the outcome of a directory.
type Report struct {
	Results        []TestResult
	Passed, Failed int
}

// OK reports whether every test passed (and there was at least one).
func (r *Report) OK() bool { return r.Failed == 0 && r.Passed > 0 }

// Write prints one line per test, failure details and logs of failed
// tests, and a closing "N passed, M failed" line.
func (r *Report) Write(w io.Writer, verbose bool) {
	for _, t := range r.Results {
		status := "PASS"
		if !t.Passed {
			status = "FAIL"
		}
		fmt.Fprintf(w, "%s %s %s (%s)\n", status, t.File, t.Name, t.Duration.Round(time.Microsecond))
		if !t.Passed {
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(t.Message, "\n", "\n    "))
		}
		if !t.Passed || verbose {
			for _, l := range t.Logs {
				fmt.Fprintf(w, "    [%s] %s\n", l.Level, l.Message)
			}
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", r.Passed, r.Failed)
}

// LoadConfig reads dir/luatest.json; a missing file is an empty Config.
func LoadConfig(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("luatest: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("luatest: %s: %w", ConfigFile, err)
	}
	return c, nil
}

// merge returns file overlaid by caller.
func merge(file, caller Config) Config {
	out := file
	out.AllowedHosts = append(append([]string(nil), file.AllowedHosts...), caller.AllowedHosts...)
	out.SecretKeys = append(append([]string(nil), file.SecretKeys...), caller.SecretKeys...)
	out.ModuleDirs = append(append([]string(nil), file.ModuleDirs...), caller.ModuleDirs...)
	out.Settings = map[string]string{}
	for k, v := range file.Settings {
		out.Settings[k] = v
	}
	for k, v := range caller.Settings {
		out.Settings[k] = v
	}
	if caller.KVScope != "" {
		out.KVScope = caller.KVScope
	}
	if caller.Timeout != 0 {
		out.Timeout = caller.Timeout
	}
	out.RootCAs, out.Values, out.Modules, out.Engine, out.Logger = caller.RootCAs, caller.Values, caller.Modules, caller.Engine, caller.Logger
	return out
}

// Run runs every *_test.lua file of dir (not recursive), each test in a
// fresh sandbox run. The error is for setup problems (unreadable
// directory, bad config); test failures are in the report.
func Run(ctx context.Context, dir string, cfg Config) (*Report, error) {
	fileCfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	cfg = merge(fileCfg, cfg)
	files, err := filepath.Glob(filepath.Join(dir, "*_test.lua"))
	if err != nil {
		return nil, fmt.Errorf("luatest: %w", err)
	}
	sort.Strings(files)
	eng := cfg.Engine
	if eng == nil {
		logger := cfg.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		eng, err = runtime.NewEngine(runtime.Options{KV: runtime.NewMemoryKV(), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("luatest: %w", err)
		}
		defer eng.Close()
	}
	moduleDirs := cfg.ModuleDirs
	if len(moduleDirs) == 0 {
		moduleDirs = []string{".", ".."}
	}
	var resolvers []runtime.ModuleResolver
	if cfg.Modules != nil {
		resolvers = append(resolvers, cfg.Modules)
	}
	for _, d := range moduleDirs {
		if !filepath.IsAbs(d) {
			d = filepath.Join(dir, d)
		}
		resolvers = append(resolvers, runtime.FSResolver(os.DirFS(d)))
	}
	report := &Report{}
	for _, f := range files {
		if err := runFile(ctx, eng, f, cfg, resolvers, report); err != nil {
			return nil, err
		}
	}
	return report, nil
}

// testModulePrefix names test files as modules; chunk names in errors are
// mapped back to file names.
const testModulePrefix = "luatest__"

func runFile(ctx context.Context, eng *runtime.Engine, path string, cfg Config, resolvers []runtime.ModuleResolver, report *Report) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("luatest: %w", err)
	}
	file := filepath.Base(path)
	modName := testModulePrefix + strings.NewReplacer(".", "_", " ", "_").Replace(strings.TrimSuffix(file, ".lua"))
	self := runtime.MapResolver(map[string]string{modName: string(src)})
	opts := runtime.RunOptions{
		Timeout:      time.Duration(cfg.Timeout),
		AllowedHosts: cfg.AllowedHosts,
		RootCAs:      cfg.RootCAs,
		Settings:     cfg.Settings,
		SecretKeys:   cfg.SecretKeys,
		KVScope:      cfg.KVScope,
		Values:       cfg.Values,
		Resolver:     runtime.Chain(append([]runtime.ModuleResolver{self}, resolvers...)...),
	}
	if opts.KVScope == "" {
		opts.KVScope = "test"
	}
	harness := runtime.Script{Name: "luatest", Source: harnessSource}
	fixName := func(s string) string { return strings.ReplaceAll(s, modName+":", file+":") }

	res, err := eng.Run(ctx, harness, map[string]any{"module": modName, "list": true}, opts)
	if err != nil {
		report.Results = append(report.Results, TestResult{File: file, Name: "(load)", Message: fixName(err.Error())})
		report.Failed++
		return nil
	}
	names := orderByDefinition(string(src), stringList(res.Map()["names"]))
	if len(names) == 0 {
		report.Results = append(report.Results, TestResult{File: file, Name: "(none)", Message: file + ": no test_* functions"})
		report.Failed++
		return nil
	}
	for _, name := range names {
		res, err := eng.Run(ctx, harness, map[string]any{"module": modName, "test": name}, opts)
		tr := TestResult{File: file, Name: name, Passed: err == nil}
		if res != nil {
			tr.Duration, tr.Logs = res.Record.Duration, res.Record.Logs
		}
		if err != nil {
			tr.Message = fixName(err.Error())
			if errors.Is(err, runtime.ErrBusy) || ctx.Err() != nil {
				return fmt.Errorf("luatest: %s %s: %w", file, name, err)
			}
		}
		if tr.Passed {
			report.Passed++
		} else {
			report.Failed++
		}
		report.Results = append(report.Results, tr)
	}
	return nil
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// defRE finds where test functions are defined: "function M.test_x(",
// "function test_x(", "test_x = function".
var defRE = regexp.MustCompile(`(?m)(?:function\s+(?:[A-Za-z_][A-Za-z0-9_]*[.:])?(test_[A-Za-z0-9_]*)\s*\()|(?:\b(test_[A-Za-z0-9_]*)\s*=\s*function\b)`)

// orderByDefinition sorts names by their first definition in src;
// names not found keep alphabetical order after them.
func orderByDefinition(src string, names []string) []string {
	pos := map[string]int{}
	for _, m := range defRE.FindAllStringSubmatchIndex(src, -1) {
		for _, g := range []int{2, 4} {
			if m[g] >= 0 {
				n := src[m[g]:m[g+1]]
				if _, seen := pos[n]; !seen {
					pos[n] = m[0]
				}
			}
		}
	}
	out := append([]string(nil), names...)
	sort.SliceStable(out, func(i, j int) bool {
		pi, iok := pos[out[i]]
		pj, jok := pos[out[j]]
		switch {
		case iok && jok:
			return pi < pj
		case iok != jok:
			return iok
		}
		return out[i] < out[j]
	})
	return out
}
