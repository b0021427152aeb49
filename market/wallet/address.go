package wallet

import (
	"crypto/subtle"

	"github.com/mr-tron/base58"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/sha3"

	"github.com/vmarket/vmarket/market"
)

// Address layout: version ‖ chain id ‖ 20-byte key hash ‖ 4-byte checksum.
const (
	addressVersion  = 0x05
	addressSize     = 26
	addressHashSize = 20
	// maxAddressText bounds the base58 text of a 26-byte address (36
	// characters at most).
	maxAddressText = 48
)

// hashChain is VSYS's secure hash: Keccak-256 (legacy padding) of
// Blake2b-256.
func hashChain(b []byte) [32]byte {
	inner := blake2b.Sum256(b)
	k := sha3.NewLegacyKeccak256()
	k.Write(inner[:])
	var out [32]byte
	k.Sum(out[:0])
	return out
}

// Address returns p's VSYS address on network n: base58 of 0x05, the chain
// id, the first 20 bytes of hashChain(p) and a 4-byte checksum.
func (p PublicKey) Address(n Network) string {
	var raw [addressSize]byte
	raw[0] = addressVersion
	raw[1] = n.ChainID()
	h := hashChain(p[:])
	copy(raw[2:], h[:addressHashSize])
	sum := hashChain(raw[:2+addressHashSize])
	copy(raw[2+addressHashSize:], sum[:4])
	return base58.Encode(raw[:])
}

// AddressNetwork checks addr's encoding, length, version byte and checksum
// and returns the network its chain id names. The error, a *market.Error
// of KindInvalid on field "address", says which check failed.
func AddressNetwork(addr string) (Network, error) {
	bad := func(format string, args ...any) (Network, error) {
		return 0, market.Invalid("address", format, args...)
	}
	if addr == "" {
		return bad("address is empty")
	}
	if len(addr) > maxAddressText {
		return bad("address is %d characters, too long", len(addr))
	}
	raw, err := base58.Decode(addr)
	if err != nil {
		return bad("address is not base58")
	}
	if len(raw) != addressSize {
		return bad("address decodes to %d bytes, want %d", len(raw), addressSize)
	}
	if raw[0] != addressVersion {
		return bad("address version byte is 0x%02x, want 0x%02x", raw[0], addressVersion)
	}
	sum := hashChain(raw[:2+addressHashSize])
	if subtle.ConstantTimeCompare(sum[:4], raw[2+addressHashSize:]) != 1 {
		return bad("address checksum does not match")
	}
	n := Network(raw[1])
	if !n.Valid() {
		return bad("address chain id %q is neither mainnet (M) nor testnet (T)", rune(raw[1]))
	}
	return n, nil
}

// ValidateAddress checks that addr is a well-formed VSYS address on
// network n. The error, a *market.Error of KindInvalid on field
// "address", says which check failed: encoding, length, version byte,
// checksum or chain id.
func ValidateAddress(addr string, n Network) error {
	got, err := AddressNetwork(addr)
	if err != nil {
		return err
	}
	if got != n {
		return market.Invalid("address", "address is on %s (chain id %q), want %s (chain id %q)",
			got, rune(got.ChainID()), n, rune(n.ChainID()))
	}
	return nil
}
