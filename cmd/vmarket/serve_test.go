package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

// reopenConfig is a serve configuration on dataDir with small pools and
// no demo parts.
func reopenConfig(dataDir string) serveConfig {
	return serveConfig{
		addr: "127.0.0.1:0", dataDir: dataDir, network: "mainnet", sigWindow: 300 * time.Second,
		scriptTime: 5 * time.Second, luaMin: 1, luaMax: 2, workers: 1, maxAttempts: 3,
		jobLease: time.Minute, hour: time.Hour, grace: time.Second,
	}
}

// serveLoopback serves a's API on 127.0.0.1 until the returned stop is
// called, and returns the base URL.
func serveLoopback(t *testing.T, a *app) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.api.Serve(ctx, ln, time.Second) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
}

// catalogIDs lists every provider, category and type of a's catalog with
// its id, and the counts.
func catalogIDs(t *testing.T, a *app) []string {
	t.Helper()
	ctx := context.Background()
	page := market.Page{Current: 1, PageSize: market.MaxPageSize}
	var out []string
	ps, np, err := a.catalog.Providers(ctx, market.ProviderFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		out = append(out, "provider "+p.ID)
	}
	cs, nc, err := a.catalog.Categories(ctx, market.CategoryFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "category "+c.Provider+"/"+c.Name+" "+c.ID)
	}
	ts, nt, err := a.catalog.ServiceTypes(ctx, market.Caller{}, market.ServiceTypeFilter{Page: page})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range ts {
		out = append(out, "type "+st.Provider+"/"+st.Category+"/"+st.Name+" "+st.ID)
	}
	return append(out, fmt.Sprintf("counts %d %d %d", np, nc, nt))
}

// wantSecretFile checks that path exists with mode 0600 and returns its
// content.
func wantSecretFile(t *testing.T, path string) []byte {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postProvider creates a provider over HTTP with token and returns the
// status.
func postProvider(t *testing.T, base, token, name string) int {
	t.Helper()
	body := `{"name": "` + name + `", "walletAddress": "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS", "apiHost": "http://127.0.0.1:9"}`
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/service/provider", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestNewAppReopensDataDir builds the app twice on one data directory: the
// JWT secret is generated once (mode 0600) and reused, `vmarket token`
// prints tokens the server accepts, and the bundled templates are not
// applied twice.
func TestNewAppReopensDataDir(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	secretPath := filepath.Join(dir, jwtSecretFile)

	// Before any server ran there is no secret to sign with.
	if _, err := runCLI(t, "", "token", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "--jwt-secret") {
		t.Fatalf("token without a secret: %v", err)
	}

	a1, err := newApp(ctx, reopenConfig(dir), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	secret := wantSecretFile(t, secretPath)
	if len(bytes.TrimSpace(secret)) < opauth.MinSecretLen {
		t.Fatalf("generated secret %q is too short", secret)
	}
	wantSecretFile(t, filepath.Join(dir, serviceKeyFile))
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory mode: %v, %v", st.Mode(), err)
	}

	tok, err := runCLI(t, "", "token", "--data-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	keys, err := opauth.NewKeyring(bytes.TrimSpace(secret))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := keys.Verify(tok, time.Now()); err != nil || c.OperatorRole != market.RoleAdmin {
		t.Fatalf("token %q does not verify as admin with the data directory's secret: %+v, %v", tok, c, err)
	}
	sup, err := runCLI(t, "", "token", "--data-dir", dir, "--role", "support", "--subject", "helpdesk", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := keys.Verify(strings.TrimSpace(sup), time.Now()); err != nil || c.OperatorRole != market.RoleSupport || c.OperatorName != "helpdesk" {
		t.Fatalf("support token: %+v, %v", c, err)
	}

	base, stop := serveLoopback(t, a1)
	if got := postProvider(t, base, tok, "made-before-restart"); got != http.StatusCreated {
		t.Fatalf("write with the printed token: status %d", got)
	}
	if got := postProvider(t, base, strings.TrimSpace(sup), "support-write"); got != http.StatusForbidden {
		t.Errorf("write with a support token: status %d, want 403", got)
	}
	stop()
	before := catalogIDs(t, a1)
	if !strings.Contains(strings.Join(before, "\n"), "provider v-kube-service\n") || !strings.Contains(strings.Join(before, "\n"), "category v-kube-service/") {
		t.Fatalf("catalog after first start: %v", before)
	}
	a1.close()

	a2, err := newApp(ctx, reopenConfig(dir), testLogger(t))
	if err != nil {
		t.Fatalf("second start: %v", err)
	}
	defer a2.close()
	if again := wantSecretFile(t, secretPath); !bytes.Equal(again, secret) {
		t.Errorf("secret changed on restart: %q → %q", secret, again)
	}
	if after := catalogIDs(t, a2); !reflect.DeepEqual(after, before) {
		t.Errorf("restart changed the catalog:\n got %v\nwant %v", after, before)
	}
	// A token printed before the restart still works.
	base, stop = serveLoopback(t, a2)
	defer stop()
	if got := postProvider(t, base, tok, "made-after-restart"); got != http.StatusCreated {
		t.Errorf("write after restart with the old token: status %d", got)
	}
	if got := postProvider(t, base, "", "anonymous"); got != http.StatusUnauthorized {
		t.Errorf("anonymous write: status %d, want 401", got)
	}
}

// TestJWTSecretFlag checks that a given secret is used as is and never
// written to the data directory, and that short ones are refused.
func TestJWTSecretFlag(t *testing.T) {
	dir := t.TempDir()
	cfg := reopenConfig(dir)
	cfg.jwtSecret = "given-secret-0123456789"
	a, err := newApp(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if _, err := os.Stat(filepath.Join(dir, jwtSecretFile)); !os.IsNotExist(err) {
		t.Errorf("a given secret was written to the data directory: %v", err)
	}
	tok, err := runCLI(t, "", "token", "--jwt-secret", cfg.jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	base, stop := serveLoopback(t, a)
	defer stop()
	if got := postProvider(t, base, strings.TrimSpace(tok), "p"); got != http.StatusCreated {
		t.Errorf("write with a token of the given secret: status %d", got)
	}
	other, err := runCLI(t, "", "token", "--jwt-secret", "another-secret-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	if got := postProvider(t, base, strings.TrimSpace(other), "q"); got != http.StatusUnauthorized {
		t.Errorf("write with a token of another secret: status %d, want 401", got)
	}
	if _, err := runCLI(t, "", "token", "--jwt-secret", "short"); err == nil {
		t.Error("token accepted a short secret")
	}
	cfg.jwtSecret = "short"
	if a, err := newApp(context.Background(), cfg, testLogger(t)); err == nil {
		a.close()
		t.Error("serve accepted a short secret")
	}
}

// TestFlagsFromEnvironment checks the documented VMARKET_* variables set
// the flags' defaults.
func TestFlagsFromEnvironment(t *testing.T) {
	tests := []struct {
		path []string
		flag string
		env  string
		def  string
	}{
		{[]string{"serve"}, "addr", "VMARKET_ADDR", ":8080"},
		{[]string{"serve"}, "data-dir", "VMARKET_DATA_DIR", "./vmarket-data"},
		{[]string{"serve"}, "jwt-secret", "VMARKET_JWT_SECRET", ""},
		{[]string{"token"}, "data-dir", "VMARKET_DATA_DIR", "./vmarket-data"},
		{[]string{"token"}, "jwt-secret", "VMARKET_JWT_SECRET", ""},
		{[]string{"template", "push"}, "server", "VMARKET_SERVER", "http://127.0.0.1:8080"},
	}
	lookup := func(t *testing.T, path []string, flag string) *pflag.Flag {
		t.Helper()
		cmd, _, err := newRootCmd().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("%v has no --%s", path, flag)
		}
		return f
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.path, " ")+" --"+tc.flag, func(t *testing.T) {
			t.Setenv(tc.env, "")
			f := lookup(t, tc.path, tc.flag)
			if f.DefValue != tc.def {
				t.Errorf("default %q, want %q", f.DefValue, tc.def)
			}
			if !strings.Contains(f.Usage, tc.env) {
				t.Errorf("help %q does not name %s", f.Usage, tc.env)
			}
			t.Setenv(tc.env, "from-env-0123456789")
			if got := lookup(t, tc.path, tc.flag).DefValue; got != "from-env-0123456789" {
				t.Errorf("with %s set, default %q", tc.env, got)
			}
		})
	}
}
