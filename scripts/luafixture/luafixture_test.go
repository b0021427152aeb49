package luafixture_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/runtime/luatest"
	"github.com/vmarket/vmarket/scripts/luafixture"
)

func TestLookup(t *testing.T) {
	tests := []struct {
		name    string
		file    string // luatest.json; "" for none
		want    string
		wantErr string
	}{
		{name: "no luatest.json"},
		{name: "no fixture key", file: `{"allowed_hosts": ["127.0.0.1"]}`},
		{name: "known fixture", file: `{"fixture": "vcp", "timeout": "2s"}`, want: "vcp"},
		{name: "unknown fixture", file: `{"fixture": "nope"}`, wantErr: `unknown fixture "nope"`},
		{name: "empty name", file: `{"fixture": ""}`, wantErr: `unknown fixture ""`},
		{name: "bad JSON", file: `{"fixture": `, wantErr: "luatest.json"},
		{name: "not a string", file: `{"fixture": 3}`, wantErr: `"fixture"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.file != "" {
				if err := os.WriteFile(filepath.Join(dir, luatest.ConfigFile), []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := luafixture.Lookup(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Lookup = %q, %v; want error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Lookup = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestForWithoutFixture(t *testing.T) {
	if fx, err := luafixture.For(t.Context(), t.TempDir()); !errors.Is(err, luafixture.ErrNoFixture) {
		t.Fatalf("For(empty folder) = %v, %v; want ErrNoFixture", fx, err)
	}
}

func TestStartCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if fx, err := luafixture.Start(ctx, "vcp", t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start(canceled) = %v, %v", fx, err)
	}
	if _, err := luafixture.Start(t.Context(), "nope", t.TempDir()); err == nil {
		t.Fatal("Start(unknown fixture) succeeded")
	}
}

// TestBundledFolders checks which fixture each bundled Lua test folder
// names, and what each fixture starts and configures.
func TestBundledFolders(t *testing.T) {
	tests := []struct {
		dir, fixture string
		fakes        []string
		modules      []string // host modules besides sftp and fake
		tls          bool
	}{
		{dir: "../vcc", fixture: "vcc", fakes: []string{"vccfake", "sftpfake"}, tls: true},
		{dir: "../vcp", fixture: "vcp", fakes: []string{"vcpfake"}},
		{dir: "../kassa24", fixture: "kassa24", fakes: []string{"kassa24fake"}},
		{dir: "../../templates/vcc-gas-topup", fixture: "vcc-gas-topup", fakes: []string{"vccfake"}, modules: []string{"template"}, tls: true},
		{dir: "../../templates/vcp-site-monitor", fixture: "vcp-site-monitor", fakes: []string{"vcpfake"}, modules: []string{"template"}},
		{dir: "../../market/paysource", fixture: "kassa24-paysource", fakes: []string{"kassa24fake"}, modules: []string{"source"}},
	}
	var named []string
	for _, tc := range tests {
		named = append(named, tc.fixture)
		t.Run(tc.fixture, func(t *testing.T) {
			fx, err := luafixture.For(t.Context(), tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer fx.Close()
			var fakes []string
			for _, f := range fx.Started {
				fakes = append(fakes, f.Name)
				if !strings.Contains(f.Addr, "127.0.0.1:") {
					t.Errorf("%s listens on %s, not loopback", f.Name, f.Addr)
				}
			}
			if fx.Name != tc.fixture || fx.Dir != tc.dir || !slices.Equal(fakes, tc.fakes) {
				t.Fatalf("fixture %s for %s started %v; want %s with %v", fx.Name, fx.Dir, fakes, tc.fixture, tc.fakes)
			}
			var mods []string
			for name := range fx.HostModules {
				if name != "sftp" && name != "fake" {
					mods = append(mods, name)
				}
			}
			if _, ok := fx.HostModules["fake"]; !ok || !slices.Equal(mods, tc.modules) {
				t.Errorf("host modules %v (fake present: %v), want sftp, fake and %v", mods, ok, tc.modules)
			}
			if !slices.Equal(fx.AllowedHosts, []string{"127.0.0.1"}) || (len(fx.RootCAs) > 0) != tc.tls {
				t.Errorf("allowed hosts %v, %d bytes of root CAs", fx.AllowedHosts, len(fx.RootCAs))
			}
			for key, v := range fx.Settings {
				if strings.HasSuffix(key, ".base_url") {
					if u, err := url.Parse(v); err != nil || u.Hostname() != "127.0.0.1" {
						t.Errorf("%s = %q is not a loopback URL", key, v)
					}
				}
			}
			for _, key := range fx.SecretKeys {
				if fx.Settings[key] == "" {
					t.Errorf("secret key %s has no setting", key)
				}
			}
			if len(fx.SecretKeys) == 0 {
				t.Error("no secret keys")
			}
			fx.Close()
			fx.Close() // idempotent
		})
	}
	slices.Sort(named)
	if got := luafixture.Names(); !slices.Equal(got, named) {
		t.Errorf("Names() = %v; the bundled folders name %v", got, named)
	}
}

func TestConfigMerge(t *testing.T) {
	fx, err := luafixture.Start(t.Context(), "vcp", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fx.Close()
	caller := runtime.MapResolver(map[string]string{"extra": "return {}"})
	cfg := fx.Config(luatest.Config{
		AllowedHosts: []string{"example.com"},
		Settings:     map[string]string{"vcp.backoff": "0.5", "other": "x"},
		SecretKeys:   []string{"other"},
		ModuleDirs:   []string{"lib"},
		Modules:      caller,
		KVScope:      "mine",
	})
	if !slices.Equal(cfg.AllowedHosts, []string{"127.0.0.1", "example.com"}) ||
		!slices.Equal(cfg.SecretKeys, []string{"vcp.api_key", "other"}) ||
		!slices.Equal(cfg.ModuleDirs, []string{".", "lib"}) || cfg.KVScope != "mine" {
		t.Fatalf("merged lists: %+v", cfg)
	}
	if cfg.Settings["vcp.backoff"] != "0.5" || cfg.Settings["other"] != "x" || cfg.Settings["vcp.base_url"] != fx.Settings["vcp.base_url"] {
		t.Fatalf("merged settings: %v", cfg.Settings)
	}
	if fx.Settings["vcp.backoff"] != "0.01" {
		t.Fatalf("Config changed the fixture's settings: %v", fx.Settings)
	}
	for _, name := range []string{"extra", "vcp"} {
		if _, _, ok, err := cfg.Modules.Resolve(t.Context(), name); !ok || err != nil {
			t.Errorf("module %s does not resolve: %v", name, err)
		}
	}
}
