package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/wallet"
)

// writeTemplate writes a one-type template with an @file script into dir.
func writeTemplate(t *testing.T, dir, provider, wallet string) string {
	t.Helper()
	tmpl := `{
  "provider": {"name": "` + provider + `", "walletAddress": "` + wallet + `", "apiHost": "{{publicURL}}"},
  "categories": [{"name": "Tools", "serviceTypes": [{
    "name": "Echo", "refundable": false,
    "serviceOptions": {"size": ["s", "m"]},
    "durationToPrice": [{"price": 0.5, "charingOptions": {"size": "s"}, "duration": {"1": 1}}],
    "serviceAPI": {"start": "@start.lua", "stop": "return {}"}
  }]}]
}`
	if err := os.WriteFile(filepath.Join(dir, "template.json"), []byte(tmpl), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "start.lua"), []byte("local input = ...\nreturn {secret = 'x+y%20z ' .. input.order.id}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTemplatePush uploads a template signed by a provider wallet, checks
// the wallet became the provider's signAddress, that another wallet may not
// change it, that an operator token may, and that scripts arrive exactly.
func TestTemplatePush(t *testing.T) {
	base, a := startApp(t, nil)
	dir := t.TempDir()
	owner, _ := wallet.Generate(wallet.Mainnet)
	other, _ := wallet.Generate(wallet.Mainnet)
	ownerFile, otherFile := filepath.Join(dir, "owner.json"), filepath.Join(dir, "other.json")
	for f, w := range map[string]*wallet.Wallet{ownerFile: owner, otherFile: other} {
		if err := w.Save(f, wallet.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	tdir := writeTemplate(t, t.TempDir(), "acme", owner.Address())

	out, err := runCLI(t, "", "template", "check", tdir)
	if err != nil || !strings.Contains(out, `provider "acme"`) {
		t.Fatalf("check: %v %s", err, out)
	}
	if out, err := runCLI(t, "", "template", "push", tdir, "--server", base, "--wallet", ownerFile); err != nil || !strings.Contains(out, "1 created") && !strings.Contains(out, "3 created") {
		t.Fatalf("push: %v %s", err, out)
	}
	p, err := a.catalog.Provider(context.Background(), "acme")
	if err != nil || p.SignAddress != owner.Address() || p.APIHost != base {
		t.Fatalf("provider %+v %v", p, err)
	}
	if _, err := runCLI(t, "", "template", "push", tdir, "--server", base, "--wallet", otherFile); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("push by a stranger: %v", err)
	}
	secret, err := operatorSecret("", a.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := opauth.NewKeyring(secret)
	tok, _ := keys.Issue("t", market.RoleAdmin, time.Minute, time.Now())
	if out, err := runCLI(t, "", "template", "push", tdir, "--server", base, "--token", tok, "--wallet", filepath.Join(dir, "none.json")); err == nil {
		t.Fatalf("push with a missing named wallet should fail: %s", out)
	}
	if out, err := runCLI(t, "", "template", "push", tdir, "--server", base, "--token", tok); err != nil || !strings.Contains(out, "updated") {
		t.Fatalf("push by operator: %v %s", err, out)
	}
	// The owner reads its scripts back as sent; the public does not.
	c, _ := client.New(base, client.Options{Wallet: owner})
	cat, _ := a.db.CategoryByName(context.Background(), "acme", "Tools")
	body, _, err := c.Do(context.Background(), "GET", "/api/v1/service/type/"+cat.Name2ID["Echo"], nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st market.ServiceType
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.ServiceAPI.Start.Encoded, "x%2By%2520z") {
		t.Fatalf("start script as stored: %q", st.ServiceAPI.Start.Encoded)
	}
}
