package opauth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ServiceClaims are the claims of the short-lived token vmarket sends to a
// provider's secret API with a user's call: who the user is and which
// order and service the call is for.
type ServiceClaims struct {
	// Order is the order (user service) id.
	Order string `json:"order"`
	// Service is the service type id.
	Service string `json:"service"`
	jwt.RegisteredClaims
}

// ServiceSigner signs service tokens with an Ed25519 key (EdDSA JWTs), so
// providers verify them with vmarket's public key and hold no secret.
type ServiceSigner struct {
	key ed25519.PrivateKey
}

// NewServiceSigner returns a signer for a 32-byte Ed25519 seed.
func NewServiceSigner(seed []byte) (*ServiceSigner, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("service signing key must be %d bytes", ed25519.SeedSize)
	}
	return &ServiceSigner{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// NewServiceSeed returns a fresh random seed.
func NewServiceSeed() ([]byte, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return seed, nil
}

// PublicKey returns the verification key, base64 (standard, padded).
func (s *ServiceSigner) PublicKey() string {
	return base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey))
}

// Issue signs a token naming the user (sub), the provider (aud), the order
// and the service, valid for ttl.
func (s *ServiceSigner) Issue(user, provider, order, service string, ttl time.Duration, now time.Time) (string, error) {
	claims := ServiceClaims{
		Order: order, Service: service,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: user, Audience: jwt.ClaimStrings{provider},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(s.key)
}

// VerifyService checks a service token with a base64 public key (what a
// provider does) and returns its claims.
func VerifyService(token, publicKey, provider string, now time.Time) (*ServiceClaims, error) {
	pub, err := base64.StdEncoding.DecodeString(publicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("bad public key")
	}
	var claims ServiceClaims
	_, err = jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return ed25519.PublicKey(pub), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer(Issuer),
		jwt.WithAudience(provider), jwt.WithExpirationRequired(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, err
	}
	return &claims, nil
}
