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
	jwt.RegisteredClaims
}

// Keyring holds the signing secrets: the current one signs, all verify.
// A key's id is derived from the secret, so the same secret always has
// the same id.
type Keyring struct {
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
	k := &Keyring{keys: map[string][]byte{}}
	for i, s := range append([][]byte{current}, previous...) {
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("JWT secret %d is shorter than %d bytes", i, MinSecretLen)
		}
		id := KeyID(s)
		k.keys[id] = s
		if i == 0 {
			k.current = id
		}
	}
	return k, nil
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
	if role != market.RoleAdmin && role != market.RoleSupport {
		return "", fmt.Errorf("unknown role %q (want %s or %s)", role, market.RoleAdmin, market.RoleSupport)
	}
	if ttl <= 0 {
		return "", errors.New("token lifetime must be positive")
	}
	claims := Claims{
		Role: role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   subject,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	tok.Header["kid"] = k.current
	return tok.SignedString(k.keys[k.current])
}

// Verify checks a token and returns the operator it names as a Caller.
// Failures are KindUnauthorized errors saying what is wrong.
func (k *Keyring) Verify(token string, now time.Time) (market.Caller, error) {
	var claims Claims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if key, ok := k.keys[kid]; ok {
			return key, nil
		}
		return nil, errors.New("unknown signing key")
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
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			msg = "operator token signature invalid"
		case errors.Is(err, jwt.ErrTokenMalformed):
			msg = "operator token malformed"
		}
		return market.Caller{}, &market.Error{Kind: market.KindUnauthorized, Message: msg, Err: err}
	}
	if claims.Role != market.RoleAdmin && claims.Role != market.RoleSupport {
		return market.Caller{}, market.Errorf(market.KindUnauthorized, "operator token has unknown role %q", claims.Role)
	}
	return market.Caller{OperatorRole: claims.Role, OperatorName: claims.Subject}, nil
}
