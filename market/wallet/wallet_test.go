package wallet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/vmarket/vmarket/market"
)

// pythonVectors is testdata/vectors.json, made by testdata/gen_vectors.py.
type pythonVectors struct {
	Signatures []struct {
		PrivateKey string `json:"privateKey"`
		PublicKey  string `json:"publicKey"`
		Message    string `json:"message"`
		Random     string `json:"random"`
		Signature  string `json:"signature"`
		Mainnet    string `json:"mainnet"`
		Testnet    string `json:"testnet"`
	} `json:"signatures"`
	Sealed []struct {
		PrivateKey string `json:"privateKey"`
		PublicKey  string `json:"publicKey"`
		Plaintext  string `json:"plaintext"`
		Sealed     string `json:"sealed"`
	} `json:"sealed"`
}

func loadVectors(t testing.TB) pythonVectors {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v pythonVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Signatures) == 0 || len(v.Sealed) == 0 {
		t.Fatal("testdata/vectors.json has no vectors")
	}
	return v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAddressReferenceVector(t *testing.T) {
	pub, err := ParsePublicKey("4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net  Network
		want string
	}{
		{Testnet, "ATuQXbkZV4dCKsoFtXSCH5eKw92dMXQdUYU"},
		{Mainnet, "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS"},
	} {
		if got := pub.Address(tc.net); got != tc.want {
			t.Errorf("%s address = %s, want %s", tc.net, got, tc.want)
		}
		if err := ValidateAddress(tc.want, tc.net); err != nil {
			t.Errorf("ValidateAddress(%s, %s) = %v", tc.want, tc.net, err)
		}
	}
}

// TestPythonVectors checks keys, addresses and signatures made by libsignal's
// curve25519 (python3-axolotl-curve25519) and pycryptodome.
func TestPythonVectors(t *testing.T) {
	for i, v := range loadVectors(t).Signatures {
		kp, err := ParsePrivateKey(v.PrivateKey)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if got := kp.PublicKey().String(); got != v.PublicKey {
			t.Errorf("vector %d: public key %s, want %s", i, got, v.PublicKey)
		}
		if got := kp.PrivateKeyString(); got != v.PrivateKey {
			t.Errorf("vector %d: private key exported as %s, want %s", i, got, v.PrivateKey)
		}
		if got := kp.Address(Mainnet); got != v.Mainnet {
			t.Errorf("vector %d: mainnet address %s, want %s", i, got, v.Mainnet)
		}
		if got := kp.Address(Testnet); got != v.Testnet {
			t.Errorf("vector %d: testnet address %s, want %s", i, got, v.Testnet)
		}
		msg := mustHex(t, v.Message)
		sig, err := base64.StdEncoding.DecodeString(v.Signature)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := ParsePublicKey(v.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if !pub.Verify(msg, sig) {
			t.Errorf("vector %d: libsignal signature does not verify", i)
		}
		// Same private key, message and random suffix: the same bytes.
		var z [64]byte
		copy(z[:], mustHex(t, v.Random))
		if got := kp.sign(msg, &z); !bytes.Equal(got, sig) {
			t.Errorf("vector %d: Go signature\n %x\nlibsignal signature\n %x", i, got, sig)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"digest", bytes.Repeat([]byte{0xab}, 32)},
		{"text", []byte("POST /api/v1/order/add")},
		{"long", bytes.Repeat([]byte("x"), 10000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kp := GenerateKeyPair()
			sig := kp.Sign(tc.msg)
			if len(sig) != SignatureSize {
				t.Fatalf("signature is %d bytes", len(sig))
			}
			if !kp.PublicKey().Verify(tc.msg, sig) {
				t.Fatal("signature does not verify")
			}
			if again := kp.Sign(tc.msg); bytes.Equal(again, sig) {
				t.Error("two signatures of one message are equal: the nonce is not randomized")
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	kp := GenerateKeyPair()
	other := GenerateKeyPair()
	msg := []byte("the signed message")
	sig := kp.Sign(msg)

	flip := func(b []byte, i int, mask byte) []byte {
		c := bytes.Clone(b)
		c[i] ^= mask
		return c
	}
	// S + L: same scalar mod L, a non-canonical encoding to refuse.
	nonCanonicalS := func() []byte {
		l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
		le := func(b []byte) *big.Int {
			r := make([]byte, len(b))
			for i := range b {
				r[len(b)-1-i] = b[i]
			}
			return new(big.Int).SetBytes(r)
		}
		s := bytes.Clone(sig[32:])
		s[31] &= 0x7f
		n := new(big.Int).Add(le(s), l)
		out := make([]byte, 32)
		nb := n.Bytes()
		for i := range nb {
			out[i] = nb[len(nb)-1-i]
		}
		if out[31]&0x80 != 0 {
			return nil
		}
		res := append(bytes.Clone(sig[:32]), out...)
		res[63] |= sig[63] & 0x80
		return res
	}()

	for _, tc := range []struct {
		name string
		pub  PublicKey
		msg  []byte
		sig  []byte
	}{
		{"message", kp.PublicKey(), flip(msg, 0, 1), sig},
		{"message extended", kp.PublicKey(), append(bytes.Clone(msg), 0), sig},
		{"key", other.PublicKey(), msg, sig},
		{"signature R", kp.PublicKey(), msg, flip(sig, 3, 0x10)},
		{"signature S", kp.PublicKey(), msg, flip(sig, 40, 0x01)},
		{"sign bit", kp.PublicKey(), msg, flip(sig, 63, 0x80)},
		{"S not reduced", kp.PublicKey(), msg, nonCanonicalS},
		{"short signature", kp.PublicKey(), msg, sig[:63]},
		{"long signature", kp.PublicKey(), msg, append(bytes.Clone(sig), 0)},
		{"no signature", kp.PublicKey(), msg, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sig == nil && tc.name == "S not reduced" {
				t.Skip("S + L overflows 255 bits for this signature")
			}
			if tc.pub.Verify(tc.msg, tc.sig) {
				t.Error("tampered signature verifies")
			}
		})
	}
	if !kp.PublicKey().Verify(msg, sig) {
		t.Fatal("the untampered signature does not verify")
	}
}

func TestEdwardsConversion(t *testing.T) {
	kp := GenerateKeyPair()
	ed, err := kp.PublicKey().Edwards()
	if err != nil {
		t.Fatal(err)
	}
	want := kp.edPublic
	want[31] &= 0x7f
	if ed != want {
		t.Errorf("Edwards(u) = %x, want aB with sign cleared %x", ed, want)
	}
}

func TestEdwardsRejects(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	le := func(n *big.Int) PublicKey {
		var k PublicKey
		b := n.Bytes()
		for i := range b {
			k[i] = b[len(b)-1-i]
		}
		return k
	}
	dec := func(s string) *big.Int {
		n, _ := new(big.Int).SetString(s, 10)
		return n
	}
	valid := GenerateKeyPair().PublicKey()
	topBit := valid
	topBit[31] |= 0x80
	for _, tc := range []struct {
		name string
		key  PublicKey
		want string
	}{
		{"u = p", le(p), "canonical"},
		{"u = p + 1", le(new(big.Int).Add(p, big.NewInt(1))), "canonical"},
		{"top bit set", topBit, "canonical"},
		{"u = 2 on the twist", le(big.NewInt(2)), "not a point"},
		{"u = 0 order 2", le(big.NewInt(0)), "small-order"},
		{"u = 1 order 4", le(big.NewInt(1)), "small-order"},
		{"u = p - 1", le(new(big.Int).Sub(p, big.NewInt(1))), "small-order"},
		{"order 8", le(dec("325606250916557431795983626356110631294008115727848805560023387167927233504")), "small-order"},
		{"order 8 other", le(dec("39382357235489614581723060781553021112529911719440698176882885853963445705823")), "small-order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.key.Edwards()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Edwards() error = %v, want it to mention %q", err, tc.want)
			}
			if market.KindOf(err) != market.KindInvalid {
				t.Errorf("kind %s, want %s", market.KindOf(err), market.KindInvalid)
			}
			if tc.key.Verify([]byte("m"), make([]byte, 64)) {
				t.Error("Verify accepted a zero signature for a rejected key")
			}
		})
	}
}

func TestValidateAddress(t *testing.T) {
	pub, _ := ParsePublicKey("4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4")
	mainnet := pub.Address(Mainnet)
	raw, _ := base58.Decode(mainnet)
	withVersion := func(v byte) string {
		r := bytes.Clone(raw)
		r[0] = v
		sum := hashChain(r[:22])
		copy(r[22:], sum[:4])
		return base58.Encode(r)
	}
	withChain := func(c byte) string {
		r := bytes.Clone(raw)
		r[1] = c
		sum := hashChain(r[:22])
		copy(r[22:], sum[:4])
		return base58.Encode(r)
	}
	badSum := bytes.Clone(raw)
	badSum[25] ^= 1

	for _, tc := range []struct {
		name, addr string
		net        Network
		want       string // "" for valid
	}{
		{"mainnet", mainnet, Mainnet, ""},
		{"testnet", pub.Address(Testnet), Testnet, ""},
		{"wrong network", mainnet, Testnet, "want testnet"},
		{"other network", pub.Address(Testnet), Mainnet, "want mainnet"},
		{"checksum", base58.Encode(badSum), Mainnet, "checksum"},
		{"version", withVersion(0x06), Mainnet, "version byte is 0x06"},
		{"unknown chain", withChain('X'), Mainnet, "chain id 'X'"},
		{"not base58", "0OIl" + mainnet[4:], Mainnet, "not base58"},
		{"short", base58.Encode(raw[:25]), Mainnet, "25 bytes"},
		{"empty", "", Mainnet, "empty"},
		{"huge", strings.Repeat("A", 1000), Mainnet, "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateAddress(tc.addr, tc.net)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ValidateAddress = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateAddress = %v, want it to mention %q", err, tc.want)
			}
			var me *market.Error
			if !errors.As(err, &me) || me.Kind != market.KindInvalid || me.Field != "address" {
				t.Errorf("error %#v, want KindInvalid on field address", err)
			}
		})
	}
}

func TestParseNetwork(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Network
		ok   bool
	}{
		{"mainnet", Mainnet, true},
		{" Testnet ", Testnet, true},
		{"M", Mainnet, true},
		{"t", Testnet, true},
		{"devnet", 0, false},
		{"", 0, false},
	} {
		got, err := ParseNetwork(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseNetwork(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	if Mainnet.String() != "mainnet" || Testnet.String() != "testnet" {
		t.Errorf("String() = %s, %s", Mainnet, Testnet)
	}
}

func TestKeyParsing(t *testing.T) {
	kp := GenerateKeyPair()
	back, err := ParsePrivateKey(kp.PrivateKeyString())
	if err != nil {
		t.Fatal(err)
	}
	if back.PublicKey() != kp.PublicKey() {
		t.Error("private key round trip changed the public key")
	}
	pub, err := ParsePublicKey(kp.PublicKey().String())
	if err != nil || pub != kp.PublicKey() {
		t.Errorf("public key round trip: %v, %v", pub, err)
	}

	// An unclamped private key is the same key as its clamped form.
	raw, _ := base58.Decode(kp.PrivateKeyString())
	raw[0] |= 7
	raw[31] |= 0x80
	unclamped, err := NewKeyPair(raw)
	if err != nil {
		t.Fatal(err)
	}
	if unclamped.PublicKey() != kp.PublicKey() || unclamped.PrivateKeyString() != kp.PrivateKeyString() {
		t.Error("clamping changed the key")
	}

	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"not base58", "0000", "not base58"},
		{"short", base58.Encode(make([]byte, 31)), "31 bytes"},
		{"long", base58.Encode(bytes.Repeat([]byte{1}, 33)), "33 bytes"},
		{"huge", strings.Repeat("z", 500), "too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePublicKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePublicKey(%q) = %v, want %q", tc.in, err, tc.want)
			}
			if _, err := ParsePrivateKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePrivateKey(%q) = %v, want %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestSealedSecretPythonVectors(t *testing.T) {
	for i, v := range loadVectors(t).Sealed {
		kp, err := ParsePrivateKey(v.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenSecret(v.Sealed, kp)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if want := mustHex(t, v.Plaintext); !bytes.Equal(got, want) {
			t.Errorf("vector %d: opened %q, want %q", i, got, want)
		}
	}
}

func TestSealedSecret(t *testing.T) {
	kp := GenerateKeyPair()
	sealed, err := SealSecret([]byte("ssh root@10.0.0.1 pw=hunter2"), kp.PublicKey().String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecret(sealed, kp)
	if err != nil || string(got) != "ssh root@10.0.0.1 pw=hunter2" {
		t.Fatalf("OpenSecret = %q, %v", got, err)
	}
	if _, err := OpenSecret(sealed, GenerateKeyPair()); err == nil {
		t.Error("another key opened the secret")
	}
	raw, _ := base64.StdEncoding.DecodeString(sealed)
	raw[len(raw)-1] ^= 1
	if _, err := OpenSecret(base64.StdEncoding.EncodeToString(raw), kp); err == nil {
		t.Error("a damaged secret opened")
	}
	if _, err := OpenSecret("not base64!", kp); err == nil {
		t.Error("bad base64 accepted")
	}
	var zero PublicKey
	if _, err := SealSecret([]byte("x"), zero.String()); err == nil {
		t.Error("sealed to the small-order key u = 0")
	}
	if _, err := SealSecret([]byte("x"), "bogus0"); err == nil {
		t.Error("sealed to a malformed key")
	}
}

func cheapKDF() *argonParams { return &argonParams{Time: 1, MemoryKiB: 64, Threads: 1} }

func TestWalletFileClear(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wallet.json")
	w, err := Generate(Testnet)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Save(path, SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	back, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Network != Testnet || back.Address() != w.Address() || back.Keys.PrivateKeyString() != w.Keys.PrivateKeyString() {
		t.Errorf("loaded %s %s, want %s %s", back.Network, back.Address(), w.Network, w.Address())
	}

	// No overwrite without force; the file is unchanged.
	before, _ := os.ReadFile(path)
	w2, _ := Generate(Mainnet)
	if err := w2.Save(path, SaveOptions{}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Save over an existing file = %v, want fs.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused Save changed the file")
	}
	if err := w2.Save(path, SaveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	back, err = Load(path, nil)
	if err != nil || back.Address() != w2.Address() || back.Network != Mainnet {
		t.Fatalf("after forced save: %v, %v", back, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("forced save mode %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a forced save, want 1 (no temp files left)", len(entries))
	}
}

func TestWalletFileEncrypted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wallet.json")
	w, _ := Generate(Mainnet)
	pass := []byte("correct horse battery staple")
	if err := w.Save(path, SaveOptions{Passphrase: pass, kdf: cheapKDF()}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte(w.Keys.PrivateKeyString())) {
		t.Fatal("encrypted wallet file holds the private key in clear")
	}
	if _, err := Load(path, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Errorf("Load without passphrase = %v, want ErrPassphraseRequired", err)
	}
	if _, err := Load(path, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Load with wrong passphrase = %v, want ErrWrongPassphrase", err)
	}
	back, err := Load(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	if back.Keys.PrivateKeyString() != w.Keys.PrivateKeyString() {
		t.Error("decrypted a different key")
	}

	// The clear fields are bound to the ciphertext.
	var fj map[string]any
	json.Unmarshal(data, &fj)
	fj["network"] = "testnet"
	fj["address"] = w.Keys.Address(Testnet)
	swapped, _ := json.Marshal(fj)
	if _, err := Parse(swapped, pass); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("Parse with network changed = %v, want ErrWrongPassphrase", err)
	}

	// Costs from the file are bounded.
	enc := fj["encrypted"].(map[string]any)
	enc["memoryKiB"] = float64(maxArgonMemoryKiB + 1)
	fj["network"] = "mainnet"
	fj["address"] = w.Address()
	costly, _ := json.Marshal(fj)
	if _, err := Parse(costly, pass); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("Parse with huge memory cost = %v", err)
	}
}

func TestParseWalletRejects(t *testing.T) {
	w, _ := Generate(Mainnet)
	other, _ := Generate(Mainnet)
	good, _ := w.marshal(SaveOptions{})
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not json", []byte("{"), "not a wallet file"},
		{"version", edit(func(m map[string]any) { m["version"] = 2 }), "version 2"},
		{"network", edit(func(m map[string]any) { m["network"] = "devnet" }), "unknown network"},
		{"no network", edit(func(m map[string]any) { delete(m, "network") }), "no network"},
		{"no key", edit(func(m map[string]any) { delete(m, "privateKey") }), "no private key"},
		{"wrong address", edit(func(m map[string]any) { m["address"] = other.Address() }), "inconsistent"},
		{"wrong public key", edit(func(m map[string]any) { m["publicKey"] = other.PublicKey().String() }), "inconsistent"},
		{"bad private key", edit(func(m map[string]any) { m["privateKey"] = "xyz" }), "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.data, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add("4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4")
	f.Add("")
	f.Add("111111111111111111111111111111111")
	f.Fuzz(func(t *testing.T, s string) {
		pub, err := ParsePublicKey(s)
		if err != nil {
			return
		}
		if _, err := pub.Edwards(); err == nil {
			pub.Verify([]byte(s), make([]byte, 64))
		}
		if got := pub.Address(Mainnet); ValidateAddress(got, Mainnet) != nil {
			t.Errorf("derived address %s does not validate", got)
		}
	})
}

func FuzzAddressNetwork(f *testing.F) {
	f.Add("AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS")
	f.Add("ATuQXbkZV4dCKsoFtXSCH5eKw92dMXQdUYU")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := AddressNetwork(s)
		if err == nil && !n.Valid() {
			t.Errorf("AddressNetwork(%q) = %v without error", s, n)
		}
	})
}

func FuzzVerify(f *testing.F) {
	kp := GenerateKeyPair()
	pub := kp.PublicKey()
	f.Add(pub[:], []byte("m"), kp.Sign([]byte("m")))
	f.Fuzz(func(t *testing.T, key, msg, sig []byte) {
		var pub PublicKey
		copy(pub[:], key)
		pub.Verify(msg, sig)
	})
}

func FuzzParse(f *testing.F) {
	w, _ := Generate(Testnet)
	good, _ := w.marshal(SaveOptions{})
	f.Add(good)
	f.Add([]byte(`{"version":1,"network":"mainnet","encrypted":{"kdf":"argon2id","time":1,"memoryKiB":8,"threads":1}}`))
	// No passphrase: a fuzzed file must not choose Argon2 costs to run.
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data, nil)
	})
}

func BenchmarkSign(b *testing.B) {
	kp := GenerateKeyPair()
	msg := make([]byte, 32)
	for b.Loop() {
		kp.Sign(msg)
	}
}

func BenchmarkVerify(b *testing.B) {
	kp := GenerateKeyPair()
	msg := make([]byte, 32)
	sig := kp.Sign(msg)
	pub := kp.PublicKey()
	for b.Loop() {
		pub.Verify(msg, sig)
	}
}
