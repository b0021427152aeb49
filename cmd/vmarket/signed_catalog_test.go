package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/wallet"
)

// TestSignedCatalogWrites checks who may write what with wallet signatures:
// any signed request may create a provider and becomes its signAddress;
// later writes to it need that address (403 otherwise) or an operator.
func TestSignedCatalogWrites(t *testing.T) {
	base, a := startApp(t, nil)
	ctx := context.Background()
	owner, _ := wallet.Generate(wallet.Mainnet)
	stranger, _ := wallet.Generate(wallet.Mainnet)
	payee, _ := wallet.Generate(wallet.Mainnet)
	oc, _ := client.New(base, client.Options{Wallet: owner})
	sc, _ := client.New(base, client.Options{Wallet: stranger})
	anon, _ := client.New(base, client.Options{})
	secret, _ := operatorSecret("", a.dataDir, false)
	keys, _ := opauth.NewKeyring(secret)
	admin, _ := keys.Issue("ops", market.RoleAdmin, time.Hour, time.Now())
	support, _ := keys.Issue("desk", market.RoleSupport, time.Hour, time.Now())
	ac, _ := client.New(base, client.Options{Token: admin})
	supc, _ := client.New(base, client.Options{Token: support})

	status := func(err error) int {
		var ae *client.APIError
		if errors.As(err, &ae) {
			return ae.Status
		}
		if err != nil {
			t.Fatalf("transport error: %v", err)
		}
		return http.StatusOK
	}

	provider := map[string]any{"name": "signed-co", "walletAddress": payee.Address(), "apiHost": "https://signed.example"}
	if _, _, err := anon.Do(ctx, "POST", "/api/v1/service/provider", nil, provider); status(err) != http.StatusUnauthorized {
		t.Fatalf("anonymous create: %v", err)
	}
	bad := map[string]any{"name": "bad-co", "walletAddress": "not-an-address", "apiHost": "https://x.example"}
	if _, _, err := oc.Do(ctx, "POST", "/api/v1/service/provider", nil, bad); status(err) != http.StatusBadRequest {
		t.Fatalf("bad wallet address: %v", err)
	}
	body, _, err := oc.Do(ctx, "POST", "/api/v1/service/provider", nil, provider)
	if err != nil {
		t.Fatal(err)
	}
	var p market.Provider
	json.Unmarshal(body, &p)
	if p.SignAddress != owner.Address() || p.WalletAddress != payee.Address() {
		t.Fatalf("provider %+v", p)
	}

	category := map[string]any{"provider": "signed-co", "name": "Cat", "serviceOptions": map[string]any{"size": []string{"s"}}}
	if _, _, err := sc.Do(ctx, "POST", "/api/v1/service/category", nil, category); status(err) != http.StatusForbidden {
		t.Fatalf("stranger writes category: %v", err)
	}
	if _, _, err := supc.Do(ctx, "POST", "/api/v1/service/category", nil, category); status(err) != http.StatusForbidden {
		t.Fatalf("support token writes category: %v", err)
	}
	body, _, err = oc.Do(ctx, "POST", "/api/v1/service/category", nil, category)
	if err != nil {
		t.Fatal(err)
	}
	var cat market.Category
	json.Unmarshal(body, &cat)
	typ := map[string]any{"provider": "signed-co", "categoryID": cat.ID, "name": "T", "refundable": false,
		"serviceOptions":  map[string]any{"size": []string{"s"}},
		"durationToPrice": []any{map[string]any{"price": 1, "chargingOptions": map[string]string{"size": "s"}, "duration": map[string]any{"1": 1}}}}
	if _, _, err := sc.Do(ctx, "POST", "/api/v1/service/type", nil, typ); status(err) != http.StatusForbidden {
		t.Fatalf("stranger writes type: %v", err)
	}
	if _, _, err := ac.Do(ctx, "POST", "/api/v1/service/type", nil, typ); err != nil {
		t.Fatalf("operator writes type: %v", err)
	}
	tmpl := map[string]any{"provider": provider, "categories": []any{}}
	if _, _, err := sc.Do(ctx, "POST", "/api/v1/template/add", nil, tmpl); status(err) != http.StatusForbidden {
		t.Fatalf("stranger uploads template: %v", err)
	}
	if _, _, err := oc.Do(ctx, "POST", "/api/v1/template/add", nil, tmpl); err != nil {
		t.Fatalf("owner uploads template: %v", err)
	}
	// A tampered signature is a 401 naming the check.
	tampered, _ := client.New(base, client.Options{Wallet: owner, Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if _, _, err := tampered.Do(ctx, "POST", "/api/v1/service/category", nil, category); status(err) != http.StatusUnauthorized {
		t.Fatalf("stale signature: %v", err)
	}
}
