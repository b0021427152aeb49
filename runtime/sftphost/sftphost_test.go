package sftphost_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/vmarket/vmarket/runtime/sftphost"
	"github.com/vmarket/vmarket/scripts/sftpfake"
)

type fixture struct {
	srv     *sftpfake.Server
	privPEM []byte
}

func setup(t *testing.T) fixture {
	t.Helper()
	priv, pub, err := sftpfake.GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sftpfake.New(sftpfake.Config{Users: []sftpfake.User{
		{Name: "vcc", Password: "pw-秘密", AuthorizedKeys: []ssh.PublicKey{pub}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	srv.PutFile("/reconcile/20250314.csv", []byte("orderNo,amount\nA-1,10.00\n"))
	srv.PutFile("/reconcile/20250315.csv", []byte(strings.Repeat("x", 5000)))
	return fixture{srv: srv, privPEM: priv}
}

func codeOf(err error) string {
	var se *sftphost.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

func TestConnect(t *testing.T) {
	f := setup(t)
	other, _ := sftpfake.New(sftpfake.Config{})
	otherKey := other.HostKeyLine()
	otherFP := other.Fingerprint()
	_ = other.Close()

	base := func() sftphost.ConnectConfig {
		return sftphost.ConnectConfig{Host: f.srv.Host(), Port: f.srv.Port(), User: "vcc", Password: "pw-秘密", HostKey: f.srv.HostKeyLine()}
	}
	tests := []struct {
		name    string
		allowed []string
		mod     func(*sftphost.ConnectConfig)
		code    string
		login   bool
	}{
		{"password, pinned key", []string{"127.0.0.1"}, func(*sftphost.ConnectConfig) {}, "", true},
		{"pinned fingerprint", []string{"127.0.0.1:" + fmt.Sprint(f.srv.Port())}, func(c *sftphost.ConnectConfig) { c.HostKey, c.HostKeyFingerprint = "", f.srv.Fingerprint() }, "", true},
		{"known_hosts line", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKey = "[127.0.0.1]:22 " + f.srv.HostKeyLine() }, "", true},
		{"private key", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.Password, c.PrivateKey = "", f.privPEM }, "", true},
		{"host not allowed", []string{"example.com"}, func(*sftphost.ConnectConfig) {}, sftphost.CodeNotAllowed, false},
		{"port not allowed", []string{"127.0.0.1:1"}, func(*sftphost.ConnectConfig) {}, sftphost.CodeNotAllowed, false},
		{"no pin", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKey = "" }, sftphost.CodeInvalidArgument, false},
		{"md5 fingerprint", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKey, c.HostKeyFingerprint = "", "ab:cd" }, sftphost.CodeInvalidArgument, false},
		{"other host key", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKey = otherKey }, sftphost.CodeHostKey, false},
		{"other fingerprint", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKey, c.HostKeyFingerprint = "", otherFP }, sftphost.CodeHostKey, false},
		{"key ok, fingerprint wrong", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.HostKeyFingerprint = otherFP }, sftphost.CodeHostKey, false},
		{"wrong password", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.Password = "nope" }, sftphost.CodeAuth, false},
		{"no credentials", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.Password = "" }, sftphost.CodeInvalidArgument, false},
		{"bad private key", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.PrivateKey = []byte("junk") }, sftphost.CodeInvalidArgument, false},
		{"no user", []string{"127.0.0.1"}, func(c *sftphost.ConnectConfig) { c.User = "" }, sftphost.CodeInvalidArgument, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.srv.Count("login")
			m := sftphost.New(sftphost.Options{AllowedHosts: tc.allowed})
			cfg := base()
			tc.mod(&cfg)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, err := m.Connect(ctx, cfg)
			if codeOf(err) != tc.code || (tc.code != "") != (err != nil) {
				t.Fatalf("err %v (code %q), want code %q", err, codeOf(err), tc.code)
			}
			if c != nil {
				defer c.Close()
				if _, err := c.List(ctx, "/"); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.srv.Count("login") > before; got != tc.login {
				t.Fatalf("login happened: %v", got)
			}
		})
	}
}

func connect(t *testing.T, f fixture, opts sftphost.Options) (*sftphost.Conn, context.Context) {
	t.Helper()
	opts.AllowedHosts = []string{"127.0.0.1"}
	m := sftphost.New(opts)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	c, err := m.Connect(ctx, sftphost.ConnectConfig{Host: f.srv.Host(), Port: f.srv.Port(), User: "vcc", Password: "pw-秘密", HostKeyFingerprint: f.srv.Fingerprint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, ctx
}

func TestListGet(t *testing.T) {
	f := setup(t)
	c, ctx := connect(t, f, sftphost.Options{MaxFileBytes: 4096})
	entries, err := c.List(ctx, "/reconcile")
	if err != nil || len(entries) != 2 || entries[0].Name != "20250314.csv" || entries[0].Size != 25 || entries[0].IsDir {
		t.Fatalf("list %+v %v", entries, err)
	}
	data, err := c.Get(ctx, "/reconcile/20250314.csv", 0)
	if err != nil || string(data) != "orderNo,amount\nA-1,10.00\n" {
		t.Fatalf("get %q %v", data, err)
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"missing file", func() error { _, err := c.Get(ctx, "/reconcile/nope.csv", 0); return err }, sftphost.CodeNotFound},
		{"missing dir", func() error { _, err := c.List(ctx, "/nope"); return err }, sftphost.CodeNotFound},
		{"over module cap", func() error { _, err := c.Get(ctx, "/reconcile/20250315.csv", 0); return err }, sftphost.CodeTooLarge},
		{"over call cap", func() error { _, err := c.Get(ctx, "/reconcile/20250314.csv", 10); return err }, sftphost.CodeTooLarge},
		{"folder", func() error { _, err := c.Get(ctx, "/reconcile", 0); return err }, sftphost.CodeInvalidArgument},
		{"empty path", func() error { _, err := c.List(ctx, ""); return err }, sftphost.CodeInvalidArgument},
	}
	for _, tc := range tests {
		if err := tc.call(); codeOf(err) != tc.code {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
}

func TestListCap(t *testing.T) {
	f := setup(t)
	c, ctx := connect(t, f, sftphost.Options{MaxListEntries: 1})
	if _, err := c.List(ctx, "/reconcile"); codeOf(err) != sftphost.CodeTooLarge {
		t.Fatalf("%v", err)
	}
}

func TestRunDeadline(t *testing.T) {
	f := setup(t)
	m := sftphost.New(sftphost.Options{AllowedHosts: []string{"127.0.0.1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	c, err := m.Connect(ctx, sftphost.ConnectConfig{Host: f.srv.Host(), Port: f.srv.Port(), User: "vcc", Password: "pw-秘密", HostKey: f.srv.HostKeyLine()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.srv.Faults.SetDelay(time.Hour)
	if _, err := c.Get(ctx, "/reconcile/20250314.csv", 0); codeOf(err) != sftphost.CodeTimeout {
		t.Fatalf("slow get: %v", err)
	}
	// The run ended: the connection is closed for good.
	if _, err := c.List(context.Background(), "/"); codeOf(err) != sftphost.CodeClosed {
		t.Fatalf("after deadline: %v", err)
	}
}

func TestConnectCanceled(t *testing.T) {
	f := setup(t)
	m := sftphost.New(sftphost.Options{AllowedHosts: []string{"127.0.0.1"}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := m.Connect(ctx, sftphost.ConnectConfig{Host: f.srv.Host(), Port: f.srv.Port(), User: "vcc", Password: "pw-秘密", HostKey: f.srv.HostKeyLine()})
	if codeOf(err) != sftphost.CodeTimeout {
		t.Fatalf("%v", err)
	}
}

func TestOpTimeout(t *testing.T) {
	f := setup(t)
	m := sftphost.New(sftphost.Options{AllowedHosts: []string{"127.0.0.1"}})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	c, err := m.Connect(ctx, sftphost.ConnectConfig{Host: f.srv.Host(), Port: f.srv.Port(), User: "vcc", Password: "pw-秘密",
		HostKey: f.srv.HostKeyLine(), OpTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.List(ctx, "/reconcile"); err != nil {
		t.Fatalf("fast list: %v", err)
	}
	f.srv.Faults.SetDelay(time.Hour)
	if _, err := c.Get(ctx, "/reconcile/20250314.csv", 0); codeOf(err) != sftphost.CodeTimeout {
		t.Fatalf("slow get: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the run's context ended instead")
	}
}
