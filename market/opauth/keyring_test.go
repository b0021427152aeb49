package opauth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

// TestKeyringRotation rotates to a new key: old tokens keep working until
// their key is retired; the current key cannot be retired.
func TestKeyringRotation(t *testing.T) {
	now := time.Now()
	old := []byte("first-secret-0123456789")
	k, err := opauth.NewKeyring(old)
	if err != nil {
		t.Fatal(err)
	}
	oldTok, err := k.Issue("op", market.RoleAdmin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	newID, err := k.Add([]byte("second-secret-0123456789"), true)
	if err != nil {
		t.Fatal(err)
	}
	if k.Current() != newID || len(k.IDs()) != 2 {
		t.Fatalf("current %s ids %v", k.Current(), k.IDs())
	}
	newTok, err := k.IssueUser("bob", market.RoleSupport, "user-1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := k.Verify(tok, now); err != nil {
			t.Fatalf("before retirement: %v", err)
		}
	}
	c, err := k.Parse(newTok, now)
	if err != nil || c.UserID != "user-1" || c.Subject != "bob" || c.Role != market.RoleSupport {
		t.Fatalf("claims %+v %v", c, err)
	}
	if err := k.Retire(newID); err == nil {
		t.Fatal("retired the current key")
	}
	if err := k.Retire(opauth.KeyID(old)); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(oldTok, now); err == nil || !strings.Contains(err.Error(), "retired") || market.KindOf(err) != market.KindUnauthorized {
		t.Fatalf("token of a retired key: %v", err)
	}
	if _, err := k.Verify(newTok, now); err != nil {
		t.Fatalf("token of the current key: %v", err)
	}
	if _, err := k.Add([]byte("short"), false); err == nil {
		t.Fatal("short secret accepted")
	}
}
