package operator

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// SealKeySize is the size of the key that seals secrets at rest.
const SealKeySize = chacha20poly1305.KeySize

// Sealer encrypts secrets at rest with XChaCha20-Poly1305. The additional
// data binds a ciphertext to its slot (scope and key of a setting), so a
// sealed value copied to another slot does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext for the slot named by ad: a random nonce
// followed by the ciphertext.
func (s *Sealer) Seal(plaintext []byte, ad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(ad)), nil
}

// Open decrypts what Seal produced for the same ad.
func (s *Sealer) Open(sealed []byte, ad string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("open: sealed value too short")
	}
	out, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("open: %w (was the data directory's seal key replaced?)", err)
	}
	return out, nil
}

// LoadSealKey reads the hex key in path, creating it (mode 0600) with a
// fresh random key when it does not exist.
func LoadSealKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != SealKeySize {
			return nil, fmt.Errorf("%s: want %d hex-encoded bytes", path, SealKeySize)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read seal key: %w", err)
	}
	key := make([]byte, SealKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		// Created meanwhile by another process: use theirs.
		return LoadSealKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write seal key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write seal key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write seal key: %w", err)
	}
	return key, nil
}
