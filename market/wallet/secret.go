package wallet

import (
	"crypto/rand"
	"encoding/base64"
	"strings"

	"golang.org/x/crypto/nacl/box"

	"github.com/vmarket/vmarket/market"
)

// SealSecret encrypts plaintext to a base58 Curve25519 public key (an
// order's public key, the same key type as wallet keys) with a NaCl
// anonymous sealed box (X25519 + XSalsa20-Poly1305) and returns it as
// standard base64. Only the holder of the matching private key can open it.
func SealSecret(plaintext []byte, recipientPublicKey string) (string, error) {
	pub, err := ParsePublicKey(recipientPublicKey)
	if err != nil {
		return "", err
	}
	// Off-curve and small-order keys would make the shared key guessable.
	if _, err := pub.Edwards(); err != nil {
		return "", err
	}
	sealed, err := box.SealAnonymous(nil, plaintext, (*[KeySize]byte)(&pub), rand.Reader)
	if err != nil {
		return "", market.Internal(err, "sealing secret")
	}
	return base64.StdEncoding.EncodeToString(sealed), nil
}

// OpenSecret decrypts a base64 sealed box made by SealSecret (or any NaCl
// crypto_box_seal) for kp's public key.
func OpenSecret(sealed string, kp *KeyPair) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sealed))
	if err != nil {
		return nil, market.Invalid("secret", "sealed secret is not base64: %v", err)
	}
	msg, ok := box.OpenAnonymous(nil, raw, (*[KeySize]byte)(&kp.public), &kp.private)
	if !ok {
		return nil, market.Invalid("secret", "sealed secret does not open with this wallet's key (wrong key or damaged)")
	}
	if msg == nil {
		msg = []byte{}
	}
	return msg, nil
}
