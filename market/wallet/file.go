package wallet

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/vmarket/vmarket/market"
)

// Wallet is a key pair bound to a VSYS network: the identity a user or a
// provider signs requests with.
type Wallet struct {
	Network Network
	Keys    *KeyPair
}

// Generate returns a wallet with a new random key pair on network n.
func Generate(n Network) (*Wallet, error) {
	if !n.Valid() {
		return nil, market.Invalid("network", "unknown network %s", n)
	}
	return &Wallet{Network: n, Keys: GenerateKeyPair()}, nil
}

// Address returns the wallet's address on its network.
func (w *Wallet) Address() string { return w.Keys.Address(w.Network) }

// PublicKey returns the wallet's public key.
func (w *Wallet) PublicKey() PublicKey { return w.Keys.PublicKey() }

// Errors of Load.
var (
	// ErrPassphraseRequired reports an encrypted wallet file loaded
	// without a passphrase.
	ErrPassphraseRequired = errors.New("wallet file is encrypted: a passphrase is required")
	// ErrWrongPassphrase reports a passphrase that does not decrypt the
	// wallet file (or a damaged file).
	ErrWrongPassphrase = errors.New("wrong passphrase or damaged wallet file")
)

// File format constants.
const (
	fileVersion   = 1
	fileMode      = 0o600
	maxFileSize   = 1 << 20
	kdfArgon2id   = "argon2id"
	cipherXChaCha = "xchacha20poly1305"
	saltSize      = 16
)

// argonParams are Argon2id costs, stored in the file so they can change.
type argonParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memoryKiB"`
	Threads   uint8  `json:"threads"`
}

// defaultArgon follows RFC 9106's second recommended option (64 MiB, 3
// passes), with 4 lanes.
func defaultArgon() argonParams { return argonParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4} }

// Limits on the costs a file may ask for, so a crafted file cannot make
// Load allocate without bound.
const (
	maxArgonTime      = 16
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
)

// fileJSON is the wallet file. Exactly one of PrivateKey and Encrypted is
// set; Address and PublicKey are informative and checked on load.
type fileJSON struct {
	Version    int            `json:"version"`
	Network    Network        `json:"network"`
	Address    string         `json:"address"`
	PublicKey  string         `json:"publicKey"`
	PrivateKey string         `json:"privateKey,omitempty"`
	Encrypted  *encryptedJSON `json:"encrypted,omitempty"`
}

// encryptedJSON is a private key sealed with a passphrase: Argon2id derives
// a 32-byte key, XChaCha20-Poly1305 seals the 32 private key bytes with
// the file's version, network and public key as associated data.
type encryptedJSON struct {
	KDF string `json:"kdf"`
	argonParams
	Salt       []byte `json:"salt"`
	Cipher     string `json:"cipher"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// SaveOptions tune Wallet.Save.
type SaveOptions struct {
	// Passphrase, when not empty, encrypts the private key in the file.
	Passphrase []byte
	// Force replaces an existing file; without it Save fails with an
	// error wrapping fs.ErrExist.
	Force bool

	kdf *argonParams // tests use cheaper costs
}

// Save writes w to path as JSON with file mode 0600, the private key
// encrypted when opts.Passphrase is set. It refuses to replace an existing
// file unless opts.Force; a forced save replaces the file atomically.
func (w *Wallet) Save(path string, opts SaveOptions) error {
	data, err := w.marshal(opts)
	if err != nil {
		return err
	}
	if opts.Force {
		return replaceFile(path, data)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("wallet file %s already exists (force to overwrite): %w", path, fs.ErrExist)
		}
		return fmt.Errorf("creating wallet file: %w", err)
	}
	if err := writeAndClose(f, data); err != nil {
		os.Remove(path)
		return fmt.Errorf("writing wallet file: %w", err)
	}
	return nil
}

// replaceFile writes data to a temporary file beside path and renames it
// over path.
func replaceFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".vmarket-wallet-*.tmp")
	if err != nil {
		return fmt.Errorf("creating wallet file: %w", err)
	}
	tmp := f.Name()
	if err := writeAndClose(f, data); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing wallet file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replacing wallet file: %w", err)
	}
	return nil
}

func writeAndClose(f *os.File, data []byte) error {
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// marshal builds the file's JSON text.
func (w *Wallet) marshal(opts SaveOptions) ([]byte, error) {
	if w == nil || w.Keys == nil {
		return nil, market.Invalid("wallet", "no key pair")
	}
	if !w.Network.Valid() {
		return nil, market.Invalid("network", "unknown network %s", w.Network)
	}
	fj := fileJSON{
		Version:   fileVersion,
		Network:   w.Network,
		Address:   w.Address(),
		PublicKey: w.PublicKey().String(),
	}
	if len(opts.Passphrase) == 0 {
		fj.PrivateKey = w.Keys.PrivateKeyString()
	} else {
		params := defaultArgon()
		if opts.kdf != nil {
			params = *opts.kdf
		}
		enc := &encryptedJSON{KDF: kdfArgon2id, argonParams: params, Cipher: cipherXChaCha,
			Salt: make([]byte, saltSize), Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
		rand.Read(enc.Salt)  // never fails (crypto/rand since Go 1.24)
		rand.Read(enc.Nonce) // never fails (crypto/rand since Go 1.24)
		aead, err := chacha20poly1305.NewX(deriveKey(opts.Passphrase, enc))
		if err != nil {
			return nil, market.Internal(err, "wallet cipher")
		}
		enc.Ciphertext = aead.Seal(nil, enc.Nonce, w.Keys.private[:], fj.associatedData())
		fj.Encrypted = enc
	}
	data, err := json.MarshalIndent(fj, "", "  ")
	if err != nil {
		return nil, market.Internal(err, "encoding wallet file")
	}
	return append(data, '\n'), nil
}

// associatedData binds the clear fields of the file to the ciphertext.
func (fj *fileJSON) associatedData() []byte {
	return fmt.Appendf(nil, "vmarket-wallet/%d\x00%s\x00%s", fj.Version, fj.Network, fj.PublicKey)
}

func deriveKey(passphrase []byte, enc *encryptedJSON) []byte {
	return argon2.IDKey(passphrase, enc.Salt, enc.Time, enc.MemoryKiB, enc.Threads, chacha20poly1305.KeySize)
}

// Load reads a wallet file written by Save. An encrypted file needs its
// passphrase: without one Load returns ErrPassphraseRequired, with a wrong
// one ErrWrongPassphrase. A passphrase given for a clear file is ignored.
func Load(path string, passphrase []byte) (*Wallet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening wallet file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading wallet file: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("wallet file %s is larger than %d bytes", path, maxFileSize)
	}
	w, err := Parse(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("wallet file %s: %w", path, err)
	}
	return w, nil
}

// Parse decodes the content of a wallet file; see Load.
func Parse(data []byte, passphrase []byte) (*Wallet, error) {
	var fj fileJSON
	if err := json.Unmarshal(data, &fj); err != nil {
		return nil, fmt.Errorf("not a wallet file: %w", err)
	}
	if fj.Version != fileVersion {
		return nil, fmt.Errorf("unsupported wallet file version %d (want %d)", fj.Version, fileVersion)
	}
	if !fj.Network.Valid() {
		return nil, errors.New("wallet file names no network")
	}
	var kp *KeyPair
	switch {
	case fj.PrivateKey != "" && fj.Encrypted != nil:
		return nil, errors.New("wallet file has both a clear and an encrypted private key")
	case fj.PrivateKey != "":
		var err error
		if kp, err = ParsePrivateKey(fj.PrivateKey); err != nil {
			return nil, err
		}
	case fj.Encrypted != nil:
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		private, err := fj.decrypt(passphrase)
		if err != nil {
			return nil, err
		}
		if kp, err = NewKeyPair(private); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("wallet file has no private key")
	}
	w := &Wallet{Network: fj.Network, Keys: kp}
	if fj.PublicKey != w.PublicKey().String() || fj.Address != w.Address() {
		return nil, errors.New("wallet file is inconsistent: its public key or address does not belong to its private key")
	}
	return w, nil
}

// decrypt opens the encrypted private key.
func (fj *fileJSON) decrypt(passphrase []byte) ([]byte, error) {
	enc := fj.Encrypted
	switch {
	case enc.KDF != kdfArgon2id:
		return nil, fmt.Errorf("unsupported key derivation %q (want %s)", enc.KDF, kdfArgon2id)
	case enc.Cipher != cipherXChaCha:
		return nil, fmt.Errorf("unsupported cipher %q (want %s)", enc.Cipher, cipherXChaCha)
	case enc.Time < 1 || enc.Time > maxArgonTime || enc.Threads < 1 ||
		enc.MemoryKiB < 8*uint32(enc.Threads) || enc.MemoryKiB > maxArgonMemoryKiB:
		return nil, fmt.Errorf("argon2id costs out of range (time %d, memory %d KiB, threads %d)",
			enc.Time, enc.MemoryKiB, enc.Threads)
	case len(enc.Salt) < saltSize:
		return nil, fmt.Errorf("salt is %d bytes, want at least %d", len(enc.Salt), saltSize)
	case len(enc.Nonce) != chacha20poly1305.NonceSizeX:
		return nil, fmt.Errorf("nonce is %d bytes, want %d", len(enc.Nonce), chacha20poly1305.NonceSizeX)
	}
	aead, err := chacha20poly1305.NewX(deriveKey(passphrase, enc))
	if err != nil {
		return nil, fmt.Errorf("wallet cipher: %w", err)
	}
	private, err := aead.Open(nil, enc.Nonce, enc.Ciphertext, fj.associatedData())
	if err != nil || len(private) != KeySize {
		return nil, ErrWrongPassphrase
	}
	return private, nil
}
