package operator_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
)

func TestOperatorUsers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	bob, err := f.svc.CreateUser(ctx, admin, "bob", market.RoleSupport, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.svc.Verify(bob.Token, now)
	if err != nil || c.OperatorRole != market.RoleSupport || c.OperatorName != "bob" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	// Support users read but never write.
	if _, err := f.svc.CreateUser(ctx, c, "eve", market.RoleAdmin, 0); kindOf(err) != market.KindForbidden {
		t.Fatalf("support created a user: %v", err)
	}
	if _, err := f.svc.ListUsers(ctx, c); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, role string
		ttl              time.Duration
		kind             market.Kind
	}{
		{"duplicate", "bob", market.RoleAdmin, 0, market.KindConflict},
		{"bad role", "carol", "root", 0, market.KindInvalid},
		{"bad name", "carol smith", market.RoleAdmin, 0, market.KindInvalid},
		{"ttl too long", "carol", market.RoleAdmin, 400 * 24 * time.Hour, market.KindInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.svc.CreateUser(ctx, admin, tc.user, tc.role, tc.ttl); kindOf(err) != tc.kind {
				t.Fatalf("kind %q want %q: %v", kindOf(err), tc.kind, err)
			}
		})
	}
	second, err := f.svc.IssueToken(ctx, admin, "bob", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeUser(ctx, admin, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{bob.Token, second.Token} {
		if _, err := f.svc.Verify(tok, now); kindOf(err) != market.KindUnauthorized {
			t.Fatalf("revoked user's token: %v", err)
		}
	}
	// A new user of the same name does not revive the old tokens.
	if _, err := f.svc.CreateUser(ctx, admin, "bob", market.RoleSupport, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(bob.Token, now); kindOf(err) != market.KindUnauthorized {
		t.Fatalf("old token of a re-created user: %v", err)
	}
	users, err := f.svc.ListUsers(ctx, admin)
	if err != nil || len(users) != 2 {
		t.Fatalf("users %+v %v", users, err)
	}
	// Tokens of the signing secret ("vmarket token") still work.
	boot, _ := f.keys.Issue("root", market.RoleAdmin, time.Hour, now)
	if _, err := f.svc.Verify(boot, now); err != nil {
		t.Fatal(err)
	}
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	base := opauth.KeyID([]byte(testJWTSecret))
	old, err := f.svc.CreateUser(ctx, admin, "ops", market.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RetireKey(ctx, admin, base); kindOf(err) != market.KindConflict {
		t.Fatalf("retired the current key: %v", err)
	}
	if _, err := f.svc.RotateKey(ctx, support); kindOf(err) != market.KindForbidden {
		t.Fatalf("support rotated: %v", err)
	}
	k, err := f.svc.RotateKey(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := f.svc.IssueToken(ctx, admin, "ops", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old.Token, fresh.Token} {
		if _, err := f.svc.Verify(tok, now); err != nil {
			t.Fatalf("before retirement: %v", err)
		}
	}
	keys, err := f.svc.Keys(ctx, support)
	if err != nil || len(keys) != 2 || keys[0].ID != k.ID || !keys[0].Current || !keys[0].Stored {
		t.Fatalf("keys %+v %v", keys, err)
	}
	if err := f.svc.RetireKey(ctx, admin, base); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Verify(old.Token, now); kindOf(err) != market.KindUnauthorized {
		t.Fatalf("token of the retired key: %v", err)
	}
	if _, err := f.svc.Verify(fresh.Token, now); err != nil {
		t.Fatal(err)
	}
	// A restart loads the rotated key (current) and keeps the retirement.
	keys2, _ := opauth.NewKeyring([]byte(testJWTSecret))
	again, err := operator.New(ctx, operator.Config{Store: f.db.Operator(), Engine: f.engine, Keys: keys2,
		SealKey: bytes.Repeat([]byte{7}, operator.SealKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close(ctx)
	if keys2.Current() != k.ID || keys2.Has(base) {
		t.Fatalf("after restart: current %s ids %v", keys2.Current(), keys2.IDs())
	}
	if _, err := again.Verify(fresh.Token, now); err != nil {
		t.Fatal(err)
	}
}
