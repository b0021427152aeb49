package wallet

import (
	"fmt"
	"strings"

	"github.com/vmarket/vmarket/market"
)

// Network is a VSYS chain: its value is the chain id byte that addresses
// on that chain carry ('M' for mainnet, 'T' for testnet).
type Network byte

// The VSYS networks vmarket knows.
const (
	Mainnet Network = 'M'
	Testnet Network = 'T'
)

// ParseNetwork parses "mainnet" or "testnet" (case-insensitive, surrounding
// space ignored). The chain id letters "M" and "T" are accepted too.
func ParseNetwork(s string) (Network, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mainnet", "m":
		return Mainnet, nil
	case "testnet", "t":
		return Testnet, nil
	}
	return 0, market.Invalid("network", "unknown network %q: want mainnet or testnet", s)
}

// Valid reports whether n is Mainnet or Testnet.
func (n Network) Valid() bool { return n == Mainnet || n == Testnet }

// ChainID returns the chain id byte addresses on n carry.
func (n Network) ChainID() byte { return byte(n) }

// String returns "mainnet" or "testnet", or a description of an unknown
// chain id.
func (n Network) String() string {
	switch n {
	case Mainnet:
		return "mainnet"
	case Testnet:
		return "testnet"
	}
	return fmt.Sprintf("network(%q)", rune(n))
}

// MarshalText encodes n as "mainnet" or "testnet".
func (n Network) MarshalText() ([]byte, error) {
	if !n.Valid() {
		return nil, market.Invalid("network", "unknown network %s", n)
	}
	return []byte(n.String()), nil
}

// UnmarshalText decodes "mainnet" or "testnet".
func (n *Network) UnmarshalText(text []byte) error {
	v, err := ParseNetwork(string(text))
	if err != nil {
		return err
	}
	*n = v
	return nil
}
