package opauth_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

const (
	secret1 = "first-secret-0123456789"
	secret2 = "second-secret-0123456789"
)

func keyring(t *testing.T, current string, previous ...string) *opauth.Keyring {
	t.Helper()
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, []byte(p))
	}
	k, err := opauth.NewKeyring([]byte(current), prev...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueVerify(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	k1 := keyring(t, secret1)
	admin, err := k1.Issue("alice", market.RoleAdmin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	support, err := k1.Issue("bob", market.RoleSupport, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	// Rotation: a keyring signing with secret2 still accepts secret1 tokens.
	rotated := keyring(t, secret2, secret1)
	newTok, err := rotated.Issue("carol", market.RoleAdmin, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other := keyring(t, secret2)
	noneTok, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": opauth.Issuer, "role": "admin", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	// A token signed with the right key but without an expiry, with a
	// foreign issuer, or an unknown role.
	forge := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
		tok.Header["kid"] = opauth.KeyID([]byte(secret1))
		s, err := tok.SignedString([]byte(secret1))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noExp := forge(jwt.MapClaims{"iss": opauth.Issuer, "role": "admin", "sub": "x"})
	foreignIss := forge(jwt.MapClaims{"iss": "someone", "role": "admin", "exp": now.Add(time.Hour).Unix()})
	badRole := forge(jwt.MapClaims{"iss": opauth.Issuer, "role": "root", "exp": now.Add(time.Hour).Unix()})
	parts := strings.Split(admin, ".")
	claims, _ := base64.RawURLEncoding.DecodeString(parts[1])
	elevated := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(claims), `"admin"`, `"admin" `, 1))) + "." + parts[2]

	tests := []struct {
		name    string
		k       *opauth.Keyring
		token   string
		at      time.Time
		role    string
		subject string
		msg     string // part of the error; "" when it verifies
	}{
		{"admin", k1, admin, now, market.RoleAdmin, "alice", ""},
		{"support", k1, support, now, market.RoleSupport, "bob", ""},
		{"just before expiry", k1, admin, now.Add(time.Hour - time.Second), market.RoleAdmin, "alice", ""},
		{"expired", k1, admin, now.Add(time.Hour + time.Second), "", "", "expired"},
		{"not yet valid", k1, admin, now.Add(-2 * time.Minute), "", "", "invalid"},
		{"old key after rotation", rotated, admin, now, market.RoleAdmin, "alice", ""},
		{"new key after rotation", rotated, newTok, now, market.RoleAdmin, "carol", ""},
		{"new key on old keyring", k1, newTok, now, "", "", "signature"},
		{"other secret", other, admin, now, "", "", "signature"},
		{"alg none", k1, noneTok, now, "", "", ""},
		{"no expiry", k1, noExp, now, "", "", "invalid"},
		{"foreign issuer", k1, foreignIss, now, "", "", "invalid"},
		{"unknown role", k1, badRole, now, "", "", "role"},
		{"tampered claims", k1, elevated, now, "", "", "signature"},
		{"garbage", k1, "a.b.c", now, "", "", "malformed"},
		{"empty", k1, "", now, "", "", "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.k.Verify(tc.token, tc.at)
			if tc.role != "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.OperatorRole != tc.role || c.OperatorName != tc.subject || c.Address != "" {
					t.Errorf("caller %+v, want role %s subject %s", c, tc.role, tc.subject)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", c)
			}
			if market.KindOf(err) != market.KindUnauthorized {
				t.Errorf("error kind %s, want %s", market.KindOf(err), market.KindUnauthorized)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if c != (market.Caller{}) {
				t.Errorf("a refused token yields caller %+v", c)
			}
		})
	}
}

func TestKeyringRules(t *testing.T) {
	if _, err := opauth.NewKeyring([]byte("short")); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := opauth.NewKeyring([]byte(secret1), []byte("short")); err == nil {
		t.Error("a short previous secret was accepted")
	}
	k := keyring(t, secret1)
	if _, err := k.Issue("x", "root", time.Hour, time.Now()); err == nil {
		t.Error("a token with an unknown role was issued")
	}
	if _, err := k.Issue("x", market.RoleAdmin, 0, time.Now()); err == nil {
		t.Error("a token without lifetime was issued")
	}
	if opauth.KeyID([]byte(secret1)) != opauth.KeyID([]byte(secret1)) || opauth.KeyID([]byte(secret1)) == opauth.KeyID([]byte(secret2)) {
		t.Error("key ids are not a function of the secret")
	}
	s1, err := opauth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := opauth.NewSecret()
	if len(s1) != 64 || s1 == s2 {
		t.Errorf("secrets %q %q", s1, s2)
	}
	if _, err := opauth.NewKeyring([]byte(s1)); err != nil {
		t.Errorf("a generated secret is refused: %v", err)
	}
}
