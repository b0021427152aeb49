// Package opauth issues and checks operator tokens: HS256 JWTs
// (golang-jwt) carrying an operator name and role, signed with a keyring
// so keys can be rotated (new tokens use the current key; tokens signed
// with an older key stay valid until that key is dropped).
package opauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/vmarket/vmarket/market"
)

// Issuer is the iss claim of vmarket operator tokens.
const Issuer = "vmarket"

// MinSecretLen is the shortest accepted signing secret.
const MinSecretLen = 16

// Claims are an operator token's claims.
type Claims struct {
	Role string `json:"role"`
	// UserID names the managed operator user the token was issued to (see
	// IssueUser); empty for tokens printed with the signing secret
	// ("vmarket token"), which no user directory can revoke.
	UserID string `json:"uid,omitempty"`
	jwt.RegisteredClaims
}

// Keyring holds the signing secrets: the current one signs, all verify.
// A key's id is derived from the secret, so the same secret always has
// the same id. Keys can be added (Add, for rotation) and retired while
// tokens are verified: a Keyring is safe for concurrent use.
type Keyring struct {
	set atomic.Pointer[keyset]
}

// keyset is one immutable state of a Keyring.
type keyset struct {
	current string
	keys    map[string][]byte
}

// KeyID is the id of a secret: a short hash, safe to show.
func KeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:6])
}

// NewKeyring returns a keyring signing with current and also accepting
// tokens signed with any of previous.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	ks := &keyset{keys: map[string][]byte{}}
	for i, s := range append([][]byte{current}, previous...) {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("JWT secret %d is shorter than %d bytes", i, MinSecretLen)
		}
		id := KeyID(s)
		ks.keys[id] = slices.Clone(s)
		if i == 0 {
			ks.current = id
		}
	}
	k := &Keyring{}
	k.set.Store(ks)
	return k, nil
}

// Current returns the id of the key that signs new tokens.
func (k *Keyring) Current() string { return k.set.Load().current }

// IDs returns the ids of all keys that verify tokens, sorted.
func (k *Keyring) IDs() []string {
	return slices.Sorted(maps.Keys(k.set.Load().keys))
}

// Has reports whether the key id verifies tokens.
func (k *Keyring) Has(id string) bool {
	_, ok := k.set.Load().keys[id]
	return ok
}

// Add adds a signing secret and returns its id; with makeCurrent it signs
// new tokens from now on, while tokens signed with the other keys stay
// valid until those keys are retired. Adding a key twice is harmless.
func (k *Keyring) Add(secret []byte, makeCurrent bool) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("JWT secret is shorter than %d bytes", MinSecretLen)
	}
	id := KeyID(secret)
	for {
		old := k.set.Load()
		next := &keyset{current: old.current, keys: maps.Clone(old.keys)}
		next.keys[id] = slices.Clone(secret)
		if makeCurrent {
			next.current = id
		}
		if k.set.CompareAndSwap(old, next) {
			return id, nil
		}
	}
}

// Retire removes a key: tokens signed with it fail from now on. The
// current key cannot be retired (rotate first).
func (k *Keyring) Retire(id string) error {
	for {
		old := k.set.Load()
		if _, ok := old.keys[id]; !ok {
			return fmt.Errorf("no signing key %q", id)
		}
		if id == old.current {
			return fmt.Errorf("signing key %q is the current key; rotate to a new key before retiring it", id)
		}
		next := &keyset{current: old.current, keys: maps.Clone(old.keys)}
		delete(next.keys, id)
		if k.set.CompareAndSwap(old, next) {
			return nil
		}
	}
}

// NewSecret returns a fresh random secret, hex-encoded (64 characters).
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Issue signs a token for an operator with a role valid for ttl.
func (k *Keyring) Issue(subject, role string, ttl time.Duration, now time.Time) (string, error) {
	return k.IssueUser(subject, role, "", ttl, now)
}

// IssueUser signs a token for a managed operator user: subject is the
// user's name and userID its id (the uid claim), so a user directory can
// refuse the token once the user is revoked.
func (k *Keyring) IssueUser(subject, role, userID string, ttl time.Duration, now time.Time) (string, error) {
	if role != market.RoleAdmin && role != market.RoleSupport {
		return "", fmt.Errorf("unknown role %q (want %s or %s)", role, market.RoleAdmin, market.RoleSupport)
	}
	if ttl <= 0 {
		return "", errors.New("token lifetime must be positive")
	}
	claims := Claims{
		Role:   role,
		UserID: userID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	ks := k.set.Load()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = ks.current
	return tok.SignedString(ks.keys[ks.current])
}

// Verify checks a token and returns the operator it names as a Caller.
// Failures are KindUnauthorized errors saying what is wrong.
func (k *Keyring) Verify(token string, now time.Time) (market.Caller, error) {
	claims, err := k.Parse(token, now)
	if err != nil {
		return market.Caller{}, err
	}
	return market.Caller{OperatorRole: claims.Role, OperatorName: claims.Subject}, nil
}

// errUnknownKey is the failure of a token whose kid is not in the keyring.
var errUnknownKey = errors.New("unknown signing key")

// Parse checks a token's signature, issuer, expiry and role and returns
// its claims. Failures are KindUnauthorized errors saying what is wrong.
func (k *Keyring) Parse(token string, now time.Time) (*Claims, error) {
	ks := k.set.Load()
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if key, ok := ks.keys[kid]; ok {
			return key, nil
		}
		return nil, errUnknownKey
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		msg := "invalid operator token"
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			msg = "operator token expired"
		case errors.Is(err, errUnknownKey):
			msg = "operator token signature invalid: signed with an unknown or retired key"
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			msg = "operator token signature invalid"
		case errors.Is(err, jwt.ErrTokenMalformed):
			msg = "operator token malformed"
		}
		return nil, &market.Error{Kind: market.KindUnauthorized, Message: msg, Err: err}
	}
	if claims.Role != market.RoleAdmin && claims.Role != market.RoleSupport {
		return nil, market.Errorf(market.KindUnauthorized, "operator token has unknown role %q", claims.Role)
	}
	return &claims, nil
}
