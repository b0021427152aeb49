package signature

import (
	"container/heap"
	"encoding/base64"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/wallet"
)

// Defaults of Config.
const (
	DefaultWindow          = 300 * time.Second
	DefaultReplayCacheSize = 1 << 17
	DefaultKeyCacheSize    = 4096
	DefaultMaxBodyBytes    = 1 << 20
)

// Header text limits: longer values are rejected before any decoding.
const (
	maxTimeText = 18 // unix seconds, digits only
	// sigText is the length of a signature header: padded standard
	// base64 of 64 bytes.
	sigText = (wallet.SignatureSize + 2) / 3 * 4
)

// Config configures a Verifier. The zero value of every field but Network
// selects its default.
type Config struct {
	// Network is the chain addresses must be on. Required.
	Network wallet.Network
	// Window is how far x-sdk-time may be from the server clock, either
	// way (default 300 s). A signature is remembered for replay checks
	// until its time leaves the window.
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ReplayCacheSize bounds the signatures remembered at once (default
	// 131072). When it is full of live entries, new signed requests are
	// refused with KindBusy rather than let a replay through.
	ReplayCacheSize int
	// KeyCacheSize bounds the public keys kept converted to Edwards form
	// with their addresses (default 4096).
	KeyCacheSize int
	// MaxBodyBytes caps the body Middleware reads to verify (default 1 MiB).
	MaxBodyBytes int64
	// Logger receives warnings (default slog.Default()).
	Logger *slog.Logger
}

// Verifier checks signed requests. It is safe for concurrent use.
type Verifier struct {
	network wallet.Network
	window  int64 // seconds
	now     func() time.Time
	maxBody int64
	log     *slog.Logger
	keys    keyCache
	replays replayCache
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config) (*Verifier, error) {
	if !cfg.Network.Valid() {
		return nil, market.Invalid("network", "signature verifier needs mainnet or testnet, got %s", cfg.Network)
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Window < time.Second {
		return nil, market.Invalid("window", "signature time window %s is shorter than a second", cfg.Window)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReplayCacheSize <= 0 {
		cfg.ReplayCacheSize = DefaultReplayCacheSize
	}
	if cfg.KeyCacheSize <= 0 {
		cfg.KeyCacheSize = DefaultKeyCacheSize
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Verifier{
		network: cfg.Network,
		window:  int64(cfg.Window / time.Second),
		now:     cfg.Now,
		maxBody: cfg.MaxBodyBytes,
		log:     cfg.Logger,
		keys:    keyCache{max: cfg.KeyCacheSize, m: make(map[string]keyEntry)},
		replays: replayCache{max: cfg.ReplayCacheSize, seen: make(map[[wallet.SignatureSize]byte]struct{})},
	}, nil
}

// Network returns the network the verifier checks addresses on.
func (v *Verifier) Network() wallet.Network { return v.network }

// Check names, in the "check" detail of verification errors.
const (
	CheckHeader    = "header"
	CheckTime      = "time"
	CheckPublicKey = "publicKey"
	CheckAddress   = "address"
	CheckSignature = "signature"
	CheckReplay    = "replay"
)

func unauthorized(check, format string, args ...any) *market.Error {
	return market.Errorf(market.KindUnauthorized, format, args...).WithDetail("check", check)
}

// Verify checks r in this order: every signature header present, x-sdk-time
// within the window, the public key deriving the address header on the
// verifier's network, the signature, and that the signature was not seen
// before. A failure is a *market.Error of KindUnauthorized whose message
// names the check (and whose "check" detail is one of the Check*
// constants); a full replay cache is KindBusy.
func (v *Verifier) Verify(r *Request) error {
	for _, h := range [...]struct{ name, value string }{
		{HeaderTime, r.Time},
		{HeaderAddress, r.Address},
		{HeaderPublicKey, r.PublicKey},
		{HeaderSignature, r.Signature},
	} {
		if h.value == "" {
			return unauthorized(CheckHeader, "missing signature header %q", h.name).WithDetail("header", h.name)
		}
	}

	sent, ok := parseUnix(r.Time)
	if !ok {
		return unauthorized(CheckTime, "invalid x-sdk-time header: want unix seconds")
	}
	now := v.now().Unix()
	if skew := now - sent; skew > v.window || skew < -v.window {
		return unauthorized(CheckTime, "stale request time: x-sdk-time is %d s from server time, outside the %d s window",
			skew, v.window).WithDetail("serverTime", now)
	}

	key, err := v.keys.get(r.PublicKey, v.network)
	if err != nil {
		return unauthorized(CheckPublicKey, "invalid public-key header: %s", market.AsError(err).Message)
	}
	if key.address != r.Address {
		return v.addressMismatch(r)
	}

	// Padded base64 of 64 bytes is exactly sigText characters; Decode
	// needs room for DecodedLen of them (66 bytes).
	var buf [sigText / 4 * 3]byte
	if len(r.Signature) != sigText {
		return unauthorized(CheckSignature, "bad signature: not base64 of %d bytes", wallet.SignatureSize)
	}
	if n, err := base64.StdEncoding.Decode(buf[:], []byte(r.Signature)); err != nil || n != wallet.SignatureSize {
		return unauthorized(CheckSignature, "bad signature: not base64 of %d bytes", wallet.SignatureSize)
	}
	sig := [wallet.SignatureSize]byte(buf[:wallet.SignatureSize])
	msg := r.Message()
	if !key.edwards.Verify(msg[:], sig[:]) {
		return unauthorized(CheckSignature, "bad signature: it does not match the request and public key")
	}

	switch v.replays.add(sig, sent+v.window, now) {
	case replaySeen:
		return unauthorized(CheckReplay, "replayed signature: this signed request was already accepted")
	case replayFull:
		v.log.Warn("signature replay cache full; refusing signed requests until entries expire",
			"size", v.replays.max, "window_s", v.window)
		return market.Errorf(market.KindBusy, "too many signed requests in the last %d s; retry later", v.window)
	}
	return nil
}

// addressMismatch builds the address error, hinting at a wrong network.
func (v *Verifier) addressMismatch(r *Request) error {
	e := unauthorized(CheckAddress, "address mismatch: the address header is not the %s address of the public key", v.network)
	if pub, err := wallet.ParsePublicKey(r.PublicKey); err == nil {
		for _, n := range [...]wallet.Network{wallet.Mainnet, wallet.Testnet} {
			if n != v.network && pub.Address(n) == r.Address {
				e.Message += " (it is the " + n.String() + " address: wrong network?)"
			}
		}
	}
	return e
}

// parseUnix parses unix seconds written as plain digits, as the client
// writes them (str(int(time.time()))).
func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > maxTimeText {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// keyEntry is a public key ready for verification.
type keyEntry struct {
	edwards wallet.EdwardsKey
	address string // on the verifier's network
}

// keyCache maps public-key header text to converted keys. It holds at most
// max entries; when full, an arbitrary entry makes room.
type keyCache struct {
	mu  sync.RWMutex
	max int
	m   map[string]keyEntry
}

func (c *keyCache) get(text string, n wallet.Network) (keyEntry, error) {
	c.mu.RLock()
	e, ok := c.m[text]
	c.mu.RUnlock()
	if ok {
		return e, nil
	}
	pub, err := wallet.ParsePublicKey(text)
	if err != nil {
		return e, err
	}
	ed, err := pub.Edwards()
	if err != nil {
		return e, err
	}
	e = keyEntry{edwards: ed, address: pub.Address(n)}
	c.mu.Lock()
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[text] = e
	c.mu.Unlock()
	return e, nil
}

// Outcomes of replayCache.add.
const (
	replayNew = iota
	replaySeen
	replayFull
)

// replayCache remembers accepted signatures until they expire (their
// x-sdk-time leaves the window), with at most max entries. A min-heap on
// expiry lets each add drop what has expired.
type replayCache struct {
	mu      sync.Mutex
	max     int
	seen    map[[wallet.SignatureSize]byte]struct{}
	expires expiryHeap
}

// add records sig, valid until unix second expiry, as seen at unix second
// now.
func (c *replayCache) add(sig [wallet.SignatureSize]byte, expiry, now int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.expires) > 0 && c.expires[0].expiry < now {
		delete(c.seen, heap.Pop(&c.expires).(replayEntry).sig)
	}
	if _, ok := c.seen[sig]; ok {
		return replaySeen
	}
	if len(c.seen) >= c.max {
		return replayFull
	}
	c.seen[sig] = struct{}{}
	heap.Push(&c.expires, replayEntry{expiry: expiry, sig: sig})
	return replayNew
}

// replayEntry is one remembered signature.
type replayEntry struct {
	expiry int64
	sig    [wallet.SignatureSize]byte
}

// expiryHeap is a min-heap of entries by expiry (container/heap).
type expiryHeap []replayEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expiry < h[j].expiry }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(replayEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
