// Package luafixture provides the fixtures of vmarket's bundled Lua test
// folders: the loopback fakes their *_test.lua files run against, seeded
// with the data the tests expect, and the runtime/luatest configuration
// that points the scripts at them.
//
// # Which folder gets which fixture
//
// A folder names its fixture in its luatest.json (the file runtime/luatest
// reads), under the key "fixture":
//
//	{"fixture": "vcc"}
//
// luatest itself ignores the key, so the file's other fields still apply.
// A copy of a folder keeps its fixture as long as luatest.json goes along.
// The bundled folders and their fixtures:
//
//	scripts/vcc                 vcc                vccfake (HTTPS, own CA) + sftpfake
//	scripts/vcp                 vcp                vcpfake
//	scripts/kassa24             kassa24            kassa24fake
//	templates/vcc-gas-topup     vcc-gas-topup      vccfake (HTTPS, own CA)
//	templates/vcp-site-monitor  vcp-site-monitor   vcpfake
//	market/paysource            kassa24-paysource  kassa24fake
//
// A new Lua test folder that needs fakes gets a fixture in fixtures.go and a
// luatest.json naming it; one that only needs static settings sets them in
// luatest.json ("settings") and names no fixture.
//
// # What a fixture gives the runs
//
// Every fake listens on 127.0.0.1 only. A Fixture carries the settings that
// point the modules at the fakes (base URLs, keys, tokens, SFTP host and
// pinned host key, short retry backoffs) and which of them are secret, the
// allowed host 127.0.0.1, the root CAs of TLS fakes, and the host modules
// the tests require:
//
//   - "sftp": the runtime's sftp module (runtime/sftphost), as the server
//     registers it;
//   - "fake": test-only control of the fixture's fakes: fail_next(n
//     [, status]), reject_auth_next(n), delay(seconds), reset() (clears
//     all of them; with an SFTP fake also sftp_fail_next, sftp_reject_auth_next,
//     sftp_delay), count{filter} of the calls received, and per-fake
//     helpers (vcc: balance, withdrawal, put_reconciliation, put_file,
//     remove_file; vcp: scopes; kassa24: last_call, last_params);
//   - "template" (template folders): template.source(file) returns the text
//     of a file of the folder, to load a lifecycle script;
//   - "source" (the payment source folder): source.script() returns the
//     source's script (kassa24.lua of the folder).
//
// Lua modules resolve from the embedded bundled tree
// (runtime.FSResolver(scripts.FS())) first, then from the folder itself.
//
// "vmarket script test DIR" starts a folder's fixture on its own; a Go test
// calls For and Fixture.Run.
package luafixture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/runtime/sftphost"
	"github.com/vmarket/vmarket/scripts"
	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
	"github.com/vmarket/vmarket/scripts/sftpfake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

// Key is the key of luatest.json that names a folder's fixture.
const Key = "fixture"

// ErrNoFixture is returned by For when the folder names no fixture.
var ErrNoFixture = errors.New("luafixture: the folder's " + luatest.ConfigFile + " names no fixture")

// Names lists the known fixtures, sorted.
func Names() []string {
	names := make([]string, 0, len(definitions()))
	for name := range definitions() {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Lookup returns the fixture name dir/luatest.json gives under Key; ""
// when the file is missing or has no such key. A name that is not a known
// fixture is an error.
func Lookup(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, luatest.ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("luafixture: %w", err)
	}
	file := filepath.Join(dir, luatest.ConfigFile)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", fmt.Errorf("luafixture: %s: %w", file, err)
	}
	raw, ok := fields[Key]
	if !ok {
		return "", nil
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", fmt.Errorf("luafixture: %s: %q: %w", file, Key, err)
	}
	if _, ok := definitions()[name]; !ok {
		return "", fmt.Errorf("luafixture: %s: unknown fixture %q (known: %s)", file, name, strings.Join(Names(), ", "))
	}
	return name, nil
}

// For starts the fixture that dir/luatest.json names (see Lookup), for the
// Lua tests of dir; ErrNoFixture when it names none. The caller must Close
// the fixture.
func For(ctx context.Context, dir string) (*Fixture, error) {
	name, err := Lookup(dir)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoFixture, dir)
	}
	return Start(ctx, name, dir)
}

// Start starts the named fixture for the Lua test folder dir (the folder
// whose files the "template" and "source" modules read). ctx bounds the
// start only: the fakes run until Close. The caller must Close the
// fixture.
func Start(ctx context.Context, name, dir string) (*Fixture, error) {
	start, ok := definitions()[name]
	if !ok {
		return nil, fmt.Errorf("luafixture: unknown fixture %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fx := &Fixture{
		Name:         name,
		Dir:          dir,
		Settings:     map[string]string{},
		AllowedHosts: []string{"127.0.0.1"},
		HostModules: map[string]runtime.HostModule{
			"sftp": sftphost.New(sftphost.Options{Logger: slog.New(slog.DiscardHandler)}),
		},
		Modules:    runtime.FSResolver(scripts.FS()),
		ModuleDirs: []string{"."},
	}
	ctl := &control{}
	if err := start(fx, ctl); err != nil {
		fx.Close()
		return nil, fmt.Errorf("luafixture: start %s: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		fx.Close()
		return nil, err
	}
	fx.HostModules["fake"] = ctl.module()
	return fx, nil
}

// Fixture is a started fixture: its fakes and the luatest configuration
// that points a folder's Lua tests at them. The exported fields are meant
// to be read; Config and Run combine them with a caller's configuration.
type Fixture struct {
	// Name is the fixture's name (see Names).
	Name string
	// Dir is the Lua test folder the fixture was started for.
	Dir string
	// Fakes are the started fakes, for Go tests that inspect or seed them.
	Fakes Fakes
	// Started describes the started fakes, in start order.
	Started []Fake
	// Settings point the modules at the fakes; SecretKeys are the secret
	// ones (keys, tokens, passwords).
	Settings   map[string]string
	SecretKeys []string
	// AllowedHosts is 127.0.0.1, where every fake listens.
	AllowedHosts []string
	// RootCAs are the PEM certificates of the TLS fakes' CAs.
	RootCAs []byte
	// HostModules are the host modules the tests require ("sftp", "fake",
	// and "template" or "source" where the folder needs one); an engine
	// running the tests must have them (see NewEngine).
	HostModules map[string]runtime.HostModule
	// Modules resolves the bundled Lua modules from the embedded tree.
	Modules runtime.ModuleResolver
	// ModuleDirs are the folders, relative to Dir, whose Lua modules tests
	// may require after Modules: the folder itself.
	ModuleDirs []string

	closers []func()
}

// Fakes are the fakes a fixture started; a fake the fixture does not use
// is nil.
type Fakes struct {
	VCC     *vccfake.Server
	SFTP    *sftpfake.Server
	VCP     *vcpfake.Server
	Kassa24 *kassa24fake.Server
}

// Fake describes one started fake.
type Fake struct {
	// Name is the fake's package name: vccfake, sftpfake, vcpfake,
	// kassa24fake.
	Name string
	// Addr is where it listens: a base URL, or host:port for SFTP.
	Addr string
	// Note says what else a client needs to know (TLS, host key).
	Note string
}

// String is "name addr (note)".
func (f Fake) String() string {
	s := f.Name + " " + f.Addr
	if f.Note != "" {
		s += " (" + f.Note + ")"
	}
	return s
}

// Close stops the fakes, last started first. It may be called more than
// once.
func (f *Fixture) Close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
	f.closers = nil
}

func (f *Fixture) onClose(fn func()) { f.closers = append(f.closers, fn) }

// NewEngine builds an engine with the fixture's host modules and an
// in-memory kv store, logging to logger (discarded when nil). The caller
// must close it.
func (f *Fixture) NewEngine(logger *slog.Logger) (*runtime.Engine, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return runtime.NewEngine(runtime.Options{Modules: f.HostModules, KV: runtime.NewMemoryKV(), Logger: logger})
}

// Config returns cfg with the fixture's pieces added: its allowed hosts,
// root CAs, secret keys and module folders before cfg's, its settings
// under cfg's (cfg wins on a shared key), and its module resolver after
// cfg.Modules. cfg.Engine is kept as is; it must have HostModules (Run
// builds such an engine when it is nil).
func (f *Fixture) Config(cfg luatest.Config) luatest.Config {
	out := cfg
	out.AllowedHosts = slices.Concat(f.AllowedHosts, cfg.AllowedHosts)
	out.RootCAs = slices.Concat(f.RootCAs, cfg.RootCAs)
	out.SecretKeys = slices.Concat(f.SecretKeys, cfg.SecretKeys)
	out.ModuleDirs = slices.Concat(f.ModuleDirs, cfg.ModuleDirs)
	out.Settings = make(map[string]string, len(f.Settings)+len(cfg.Settings))
	for k, v := range f.Settings {
		out.Settings[k] = v
	}
	for k, v := range cfg.Settings {
		out.Settings[k] = v
	}
	out.Modules = f.Modules
	if cfg.Modules != nil {
		out.Modules = runtime.Chain(cfg.Modules, f.Modules)
	}
	return out
}

// Run runs the Lua tests of the fixture's folder with luatest.Run and the
// configuration Config(cfg) returns, on an engine from NewEngine (with
// cfg.Logger) unless cfg.Engine is set. As with luatest.Run, the error is
// for setup problems; test failures are in the report.
func (f *Fixture) Run(ctx context.Context, cfg luatest.Config) (*luatest.Report, error) {
	cfg = f.Config(cfg)
	if cfg.Engine == nil {
		eng, err := f.NewEngine(cfg.Logger)
		if err != nil {
			return nil, fmt.Errorf("luafixture: %w", err)
		}
		defer eng.Close()
		cfg.Engine = eng
	}
	return luatest.Run(ctx, f.Dir, cfg)
}
