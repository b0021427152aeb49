package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// runCLI executes the command line args and returns stdout and the error.
func runCLI(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w.json")
	t.Setenv(envPassphrase, "")

	out, err := runCLI(t, "", "keygen", "--out", path, "--network", "testnet")
	if err != nil {
		t.Fatal(err)
	}
	w, err := wallet.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, w.Address()) || !strings.Contains(out, w.PublicKey().String()) || w.Network != wallet.Testnet {
		t.Errorf("keygen printed %q for wallet %s", out, w.Address())
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("wallet file mode %v", st.Mode().Perm())
	}
	if _, err := runCLI(t, "", "keygen", "--out", path); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("keygen over an existing file: %v", err)
	}
	if _, err := runCLI(t, "", "keygen", "--out", path, "--force"); err != nil {
		t.Errorf("keygen --force: %v", err)
	}
	if _, err := runCLI(t, "", "keygen", "--out", filepath.Join(dir, "x.json"), "--network", "devnet"); err == nil {
		t.Error("keygen accepted network devnet")
	}

	// Encrypted, the passphrase from a named environment variable.
	enc := filepath.Join(dir, "enc.json")
	t.Setenv("TEST_PASS", "s3cret phrase")
	if _, err := runCLI(t, "", "keygen", "--out", enc, "--passphrase-env", "TEST_PASS"); err != nil {
		t.Fatal(err)
	}
	if _, err := wallet.Load(enc, nil); err == nil {
		t.Error("encrypted wallet loads without passphrase")
	}
	if _, err := wallet.Load(enc, []byte("s3cret phrase")); err != nil {
		t.Errorf("encrypted wallet with its passphrase: %v", err)
	}
	if _, err := runCLI(t, "", "keygen", "--out", filepath.Join(dir, "y.json"), "--passphrase-env", "UNSET_VAR_FOR_TEST"); err == nil {
		t.Error("keygen accepted an unset --passphrase-env variable")
	}
}

// startSignedServer runs echo on 127.0.0.1 with the signature middleware
// (Optional) and a handler that answers what it saw.
func startSignedServer(t *testing.T) string {
	t.Helper()
	v, err := signature.NewVerifier(signature.Config{Network: wallet.Mainnet, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		me := market.AsError(err)
		status := http.StatusBadRequest
		if me.Kind == market.KindUnauthorized {
			status = http.StatusUnauthorized
		}
		c.JSON(status, map[string]any{"statusCode": status, "code": me.Kind, "message": me.Message, "details": me.Details})
	}
	e.Use(v.Middleware(signature.Optional))
	e.Any("/api/v1/echo", func(c echo.Context) error {
		addr, _ := signature.AddressFrom(c)
		body, _ := io.ReadAll(c.Request().Body)
		return c.JSON(http.StatusOK, map[string]string{"address": addr, "uri": c.Request().RequestURI, "body": string(body),
			"auth": c.Request().Header.Get("Authorization"), "addressHeader": c.Request().Header.Get("address")})
	})
	e.POST("/api/v1/fail", func(c echo.Context) error {
		return market.Errorf(market.KindInvalid, "nope").WithDetail("reason", "test")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func TestCall(t *testing.T) {
	base := startSignedServer(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "w.json")
	t.Setenv(envPassphrase, "")
	t.Setenv("VMARKET_TOKEN", "")
	if _, err := runCLI(t, "", "keygen", "--out", path); err != nil {
		t.Fatal(err)
	}
	w, _ := wallet.Load(path, nil)
	answer := func(out string) map[string]string {
		t.Helper()
		var m map[string]string
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("call printed %q: %v", out, err)
		}
		return m
	}

	out, err := runCLI(t, "", "call", "post", "/api/v1/echo", "--server", base, "--wallet", path,
		"--data", `{"serviceID": "x", "amount": 1.5}`, "-q", "statuses[]=A", "-q", "statuses[]=B")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\n  \"") {
		t.Errorf("answer not indented: %q", out)
	}
	m := answer(out)
	if m["address"] != w.Address() || m["body"] != `{"serviceID": "x", "amount": 1.5}` ||
		m["uri"] != "/api/v1/echo?statuses%5B%5D=A&statuses%5B%5D=B" {
		t.Errorf("signed call: %v", m)
	}

	out, err = runCLI(t, `{"from": "stdin"}`, "call", "PUT", "/api/v1/echo", "--server", base, "--wallet", path, "--data", "@-")
	if err != nil || answer(out)["body"] != `{"from": "stdin"}` {
		t.Errorf("--data @-: %q %v", out, err)
	}

	out, err = runCLI(t, "", "call", "GET", "/api/v1/echo", "--server", base, "--wallet", path, "--unsigned", "--token", "tok")
	if m := answer(out); err != nil || m["address"] != "" || m["addressHeader"] != w.Address() || m["auth"] != "Bearer tok" {
		t.Errorf("unsigned call with token: %v %v", m, err)
	}
	out, err = runCLI(t, "", "call", "GET", "/api/v1/echo", "--server", base, "--wallet", filepath.Join(dir, "none.json"), "--unsigned")
	if m := answer(out); err != nil || m["addressHeader"] != "" {
		t.Errorf("unsigned call without wallet: %v %v", m, err)
	}

	if _, err := runCLI(t, "", "call", "GET", "/api/v1/echo", "--server", base, "--wallet", filepath.Join(dir, "none.json")); err == nil ||
		!strings.Contains(err.Error(), "vmarket keygen") {
		t.Errorf("signed call without wallet: %v", err)
	}
	if _, err := runCLI(t, "", "call", "POST", "/api/v1/fail", "--server", base, "--wallet", path); err == nil ||
		!strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), `"reason":"test"`) {
		t.Errorf("error answer: %v", err)
	}
	if _, err := runCLI(t, "", "call", "POST", "/api/v1/echo", "--server", base, "--wallet", path, "--data", "{bad"); err == nil {
		t.Error("invalid --data accepted")
	}
	if _, err := runCLI(t, "", "call", "GET", "/api/v1/echo", "--server", base, "--wallet", path, "-q", "novalue"); err == nil {
		t.Error("--query without = accepted")
	}
}
