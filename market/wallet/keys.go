// Package wallet holds VSYS wallet identities: Curve25519 key pairs, VSYS
// addresses, XEdDSA signatures compatible with libsignal's curve25519
// calculateSignature (what the V Cloud market client signs with), wallet
// files, and NaCl sealed boxes for order secrets.
package wallet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
	"github.com/mr-tron/base58"

	"github.com/vmarket/vmarket/market"
)

// Sizes of keys and signatures in bytes.
const (
	KeySize       = 32
	SignatureSize = 64
)

// maxKeyText bounds the base58 text of a 32-byte key (44 characters at
// most) so parsing never works on attacker-sized input.
const maxKeyText = 64

// PublicKey is a Curve25519 public key: the Montgomery u coordinate,
// little-endian, as VSYS wallets and the V Cloud client exchange it.
type PublicKey [KeySize]byte

// ParsePublicKey decodes a base58 public key of 32 bytes.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	if err := decodeKey(s, p[:]); err != nil {
		return p, market.Invalid("publicKey", "invalid public key: %s", err.Message)
	}
	return p, nil
}

// String returns the base58 text of p.
func (p PublicKey) String() string { return base58.Encode(p[:]) }

// Edwards converts p to the Ed25519 key that XEdDSA verification uses. It
// fails for a non-canonical u (≥ 2^255−19 or top bit set), a u that is
// not on Curve25519, and small-order points (for which anyone could forge
// signatures). The conversion costs a field inversion; verifiers that see
// one key often keep the result.
func (p PublicKey) Edwards() (EdwardsKey, error) {
	var k EdwardsKey
	u, err := new(field.Element).SetBytes(p[:])
	if err != nil || !bytes.Equal(u.Bytes(), p[:]) {
		return k, market.Invalid("publicKey", "public key is not a canonical Curve25519 value")
	}
	// y = (u − 1) / (u + 1); u = −1 maps to y = 0 (Invert(0) = 0), which
	// the small-order check below rejects.
	one := new(field.Element).One()
	num := new(field.Element).Subtract(u, one)
	den := new(field.Element).Add(u, one)
	y := new(field.Element).Multiply(num, den.Invert(den))
	copy(k[:], y.Bytes())
	point, err := new(edwards25519.Point).SetBytes(k[:])
	if err != nil {
		return k, market.Invalid("publicKey", "public key is not a point on Curve25519")
	}
	if new(edwards25519.Point).MultByCofactor(point).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return k, market.Invalid("publicKey", "public key is a small-order point")
	}
	return k, nil
}

// Verify reports whether sig is a valid XEdDSA signature of message by p.
func (p PublicKey) Verify(message, sig []byte) bool {
	k, err := p.Edwards()
	if err != nil {
		return false
	}
	return k.Verify(message, sig)
}

// EdwardsKey is a Curve25519 public key converted to the compressed
// Edwards y coordinate with the sign bit clear; XEdDSA signatures carry
// the sign bit. Build one with PublicKey.Edwards.
type EdwardsKey [KeySize]byte

// Verify reports whether sig is a valid XEdDSA signature of message: the
// sign bit is moved from sig[63] into the key and the rest is a plain
// Ed25519 verification.
func (k EdwardsKey) Verify(message, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	pub := k
	pub[31] = pub[31]&0x7f | sig[63]&0x80
	var s [SignatureSize]byte
	copy(s[:], sig)
	s[63] &= 0x7f
	return ed25519.Verify(pub[:], message, s[:])
}

// KeyPair is a Curve25519 key pair that signs with XEdDSA.
type KeyPair struct {
	private  [KeySize]byte // clamped
	public   PublicKey
	scalar   *edwards25519.Scalar
	edPublic [KeySize]byte // aB as an Ed25519 point, sign bit as it falls
}

// GenerateKeyPair returns a new key pair from crypto/rand.
func GenerateKeyPair() *KeyPair {
	var seed [KeySize]byte
	rand.Read(seed[:]) // never fails (crypto/rand since Go 1.24)
	kp, err := NewKeyPair(seed[:])
	if err != nil {
		panic("wallet: 32-byte seed rejected: " + err.Error()) // unreachable
	}
	return kp
}

// NewKeyPair builds a key pair from a 32-byte Curve25519 private key. The
// key is clamped as X25519 does, so exporting it returns the clamped form
// (the same key: both forms have the same public key and signatures).
func NewKeyPair(private []byte) (*KeyPair, error) {
	if len(private) != KeySize {
		return nil, market.Invalid("privateKey", "private key is %d bytes, want %d", len(private), KeySize)
	}
	kp := &KeyPair{}
	copy(kp.private[:], private)
	kp.private[0] &= 248
	kp.private[31] &= 127
	kp.private[31] |= 64
	xpriv, err := ecdh.X25519().NewPrivateKey(kp.private[:])
	if err != nil {
		return nil, market.Invalid("privateKey", "invalid private key: %v", err)
	}
	copy(kp.public[:], xpriv.PublicKey().Bytes())
	kp.scalar, err = edwards25519.NewScalar().SetBytesWithClamping(kp.private[:])
	if err != nil {
		return nil, market.Invalid("privateKey", "invalid private key: %v", err)
	}
	copy(kp.edPublic[:], new(edwards25519.Point).ScalarBaseMult(kp.scalar).Bytes())
	return kp, nil
}

// ParsePrivateKey decodes a base58 private key of 32 bytes into a key pair.
func ParsePrivateKey(s string) (*KeyPair, error) {
	var b [KeySize]byte
	if err := decodeKey(s, b[:]); err != nil {
		return nil, market.Invalid("privateKey", "invalid private key: %s", err.Message)
	}
	return NewKeyPair(b[:])
}

// PublicKey returns the pair's public key.
func (k *KeyPair) PublicKey() PublicKey { return k.public }

// PrivateKeyString returns the base58 text of the (clamped) private key.
// It is the secret: keep it out of logs.
func (k *KeyPair) PrivateKeyString() string { return base58.Encode(k.private[:]) }

// Address returns the pair's VSYS address on network n.
func (k *KeyPair) Address(n Network) string { return k.public.Address(n) }

// Sign returns an XEdDSA signature of message (64 bytes), randomized with
// 64 bytes from crypto/rand as libsignal's calculateSignature is.
func (k *KeyPair) Sign(message []byte) []byte {
	var z [64]byte
	rand.Read(z[:]) // never fails (crypto/rand since Go 1.24)
	return k.sign(message, &z)
}

// noncePrefix separates the nonce hash from Ed25519's own hash uses:
// 0xFE followed by 31 bytes of 0xFF.
var noncePrefix = [32]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// sign is Sign with the random suffix z given, so tests can compare with
// another implementation byte for byte.
func (k *KeyPair) sign(message []byte, z *[64]byte) []byte {
	h := sha512.New()
	h.Write(noncePrefix[:])
	h.Write(k.private[:])
	h.Write(message)
	h.Write(z[:])
	r, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic("wallet: " + err.Error()) // unreachable: the digest is 64 bytes
	}
	sig := make([]byte, 0, SignatureSize)
	sig = append(sig, new(edwards25519.Point).ScalarBaseMult(r).Bytes()...)

	h.Reset()
	h.Write(sig[:32])
	h.Write(k.edPublic[:])
	h.Write(message)
	hram, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		panic("wallet: " + err.Error()) // unreachable: the digest is 64 bytes
	}
	s := edwards25519.NewScalar().MultiplyAdd(hram, k.scalar, r)
	sig = append(sig, s.Bytes()...)
	sig[63] = sig[63]&0x7f | k.edPublic[31]&0x80
	return sig
}

// decodeKey decodes base58 text that must hold exactly len(out) bytes.
func decodeKey(s string, out []byte) *market.Error {
	if s == "" {
		return market.Errorf(market.KindInvalid, "empty")
	}
	if len(s) > maxKeyText {
		return market.Errorf(market.KindInvalid, "%d characters is too long for a %d-byte key", len(s), len(out))
	}
	b, err := base58.Decode(s)
	if err != nil {
		return market.Errorf(market.KindInvalid, "not base58")
	}
	if len(b) != len(out) {
		return market.Errorf(market.KindInvalid, "decodes to %d bytes, want %d", len(b), len(out))
	}
	copy(out, b)
	return nil
}
