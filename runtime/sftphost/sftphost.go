// Package sftphost is the runtime's `sftp` host module: read-only SFTP
// access for Lua scripts (github.com/pkg/sftp over golang.org/x/crypto/ssh),
// used by the bundled VCC module to fetch daily reconciliation files.
//
// Connections are safe by construction:
//   - only hosts on the allowlist are dialed;
//   - the server's host key must be pinned (an authorized_keys/known_hosts
//     line or a SHA256 fingerprint); an unknown or changed key is refused;
//   - authentication is by password or private key;
//   - every operation is bound to the run's context: when the run ends or
//     its deadline passes, its connections are closed and pending calls
//     fail with `timeout`;
//   - file reads and listings are capped.
//
// Lua API (see README.md):
//
//	local sftp = require("sftp")
//	local c = sftp.connect{host=..., port=22, user=..., password=... | private_key=...,
//	                       host_key=... | host_key_fingerprint=..., timeout=10}
//	local entries = c:list("/reconcile")   -- {name, size, mtime, is_dir, mode}
//	local data = c:get("/reconcile/20250314.csv" [, max_bytes])
//	c:close()
package sftphost

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Defaults for Options' zero fields.
const (
	DefaultMaxFileBytes   = 8 << 20
	DefaultMaxListEntries = 10000
	DefaultMaxConns       = 4
	DefaultDialTimeout    = 10 * time.Second
)

// Error codes, shared with the runtime's host modules where they overlap.
const (
	CodeInvalidArgument = "invalid_argument" // bad connect options or path
	CodeNotAllowed      = "not_allowed"      // host not allowlisted, connection limit
	CodeHostKey         = "host_key"         // the server's host key is not the pinned one
	CodeAuth            = "auth"             // the server refused the credentials
	CodeTimeout         = "timeout"          // the run's deadline or the connect timeout passed
	CodeTooLarge        = "too_large"        // file or listing over the cap
	CodeNotFound        = "not_found"        // no such file or folder
	CodeTransport       = "transport"        // network, SSH or SFTP failure
	CodeClosed          = "closed"           // the connection was closed
)

// Error is a failure of the sftp module, with a code scripts can test.
type Error struct {
	Code    string
	Message string
	Err     error
}

// Error implements error as "sftp: code: message".
func (e *Error) Error() string { return "sftp: " + e.Code + ": " + e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(code string, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// Options configure the module. The zero value allows no host.
type Options struct {
	// AllowedHosts lists the hosts that may be dialed: "host" (any port) or
	// "host:port". Names are compared case-insensitively, as written (no
	// resolution).
	AllowedHosts []string
	// Allowed, when set, is asked too (either may allow): the runtime's
	// per-run allowlist plugs in here.
	Allowed func(ctx context.Context, host string, port int) bool
	// MaxFileBytes caps get (default DefaultMaxFileBytes).
	MaxFileBytes int64
	// MaxListEntries caps list (default DefaultMaxListEntries).
	MaxListEntries int
	// MaxConns caps the connections one run may have open (default
	// DefaultMaxConns).
	MaxConns int
	// DialTimeout bounds dialing and the SSH handshake, within the run's
	// deadline (default DefaultDialTimeout).
	DialTimeout time.Duration
	// Logger receives connection events; slog.Default() when nil.
	Logger *slog.Logger
}

// Module is the sftp host module. It holds only configuration and is safe
// for concurrent use by many runs.
type Module struct {
	opts Options
}

// New returns a module with the given options.
func New(opts Options) *Module {
	opts.MaxFileBytes = cmp.Or(opts.MaxFileBytes, DefaultMaxFileBytes)
	opts.MaxListEntries = cmp.Or(opts.MaxListEntries, DefaultMaxListEntries)
	opts.MaxConns = cmp.Or(opts.MaxConns, DefaultMaxConns)
	opts.DialTimeout = cmp.Or(opts.DialTimeout, DefaultDialTimeout)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Module{opts: opts}
}

// Name is the module's require name.
func (m *Module) Name() string { return "sftp" }

// ConnectConfig says where and how to connect.
type ConnectConfig struct {
	Host string
	// Port defaults to 22.
	Port int
	User string
	// Password, or PrivateKey (PEM, OpenSSH or PKCS#8/PKCS#1) with an
	// optional Passphrase. At least one is required; both may be given.
	Password   string
	PrivateKey []byte
	Passphrase []byte
	// HostKey is the pinned public host key in authorized_keys
	// ("ssh-ed25519 AAAA… [comment]") or known_hosts ("host ssh-ed25519
	// AAAA…") form; HostKeyFingerprint its SHA256 fingerprint
	// ("SHA256:…"). One is required; when both are given both must match.
	HostKey            string
	HostKeyFingerprint string
	// Timeout bounds dialing and the handshake (default Options.DialTimeout).
	Timeout time.Duration
	// OpTimeout, when > 0, bounds each list or get within the run's
	// deadline. An operation that times out closes the connection.
	OpTimeout time.Duration
}

// Entry is one listed directory entry.
type Entry struct {
	Name    string
	Size    int64
	Mode    fs.FileMode
	ModTime time.Time
	IsDir   bool
}

// Conn is an open SFTP session. Its methods may be called from one
// goroutine at a time.
type Conn struct {
	m      *Module
	ssh    *ssh.Client
	sftp   *sftp.Client
	stop   func() bool
	closed chan struct{}
	once   sync.Once
	addr   string
	opTO   time.Duration
	// onClose, when set, runs once after the connection is closed.
	onClose func()
}

func (m *Module) allowed(ctx context.Context, host string, port int, extra func(string, int) bool) bool {
	if m.opts.Allowed != nil && m.opts.Allowed(ctx, host, port) {
		return true
	}
	if extra != nil && extra(host, port) {
		return true
	}
	return hostListAllows(m.opts.AllowedHosts, host, port)
}

// hostListAllows matches host:port against "host" (any port) and
// "host:port" entries, case-insensitively, IPv6 literals with or without
// brackets.
func hostListAllows(entries []string, host string, port int) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if h, p, err := net.SplitHostPort(e); err == nil {
			if net.JoinHostPort(h, p) == hp {
				return true
			}
			continue
		}
		if strings.Trim(e, "[]") == host {
			return true
		}
	}
	return false
}

var errHostKey = errors.New("host key mismatch")

// hostKeyCallback accepts exactly the pinned key and/or fingerprint.
func hostKeyCallback(cfg ConnectConfig) (ssh.HostKeyCallback, error) {
	var pinned ssh.PublicKey
	if line := strings.TrimSpace(cfg.HostKey); line != "" {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			_, _, k, _, _, err = ssh.ParseKnownHosts([]byte(line))
			if err != nil {
				return nil, errorf(CodeInvalidArgument, err, "host_key is not an authorized_keys or known_hosts line")
			}
		}
		pinned = k
	}
	fp := strings.TrimSpace(cfg.HostKeyFingerprint)
	if fp != "" && !strings.HasPrefix(fp, "SHA256:") {
		return nil, errorf(CodeInvalidArgument, nil, "host_key_fingerprint must be a SHA256 fingerprint (\"SHA256:...\")")
	}
	if pinned == nil && fp == "" {
		return nil, errorf(CodeInvalidArgument, nil, "a pinned host_key or host_key_fingerprint is required")
	}
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		if pinned != nil && !bytes.Equal(pinned.Marshal(), key.Marshal()) {
			return fmt.Errorf("%w: server presented %s", errHostKey, ssh.FingerprintSHA256(key))
		}
		if fp != "" && ssh.FingerprintSHA256(key) != fp {
			return fmt.Errorf("%w: server presented %s", errHostKey, ssh.FingerprintSHA256(key))
		}
		return nil
	}, nil
}

func authMethods(cfg ConnectConfig) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if len(cfg.PrivateKey) > 0 {
		var signer ssh.Signer
		var err error
		if len(cfg.Passphrase) > 0 {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(cfg.PrivateKey, cfg.Passphrase)
		} else {
			signer, err = ssh.ParsePrivateKey(cfg.PrivateKey)
		}
		if err != nil {
			return nil, errorf(CodeInvalidArgument, err, "private_key: %v", err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if cfg.Password != "" {
		methods = append(methods, ssh.Password(cfg.Password))
	}
	if len(methods) == 0 {
		return nil, errorf(CodeInvalidArgument, nil, "a password or private_key is required")
	}
	return methods, nil
}

// ctxErr turns a context's end into a timeout error.
func ctxErr(ctx context.Context, what string) *Error {
	return errorf(CodeTimeout, ctx.Err(), "%s: timed out (operation timeout, run deadline or run end)", what)
}

// Connect dials an allowlisted host, checks its pinned host key,
// authenticates and starts an SFTP session. The connection is closed when
// ctx ends.
func (m *Module) Connect(ctx context.Context, cfg ConnectConfig) (*Conn, error) {
	return m.connect(ctx, cfg, nil, nil)
}

// connect is Connect with a per-run allowlist check and a hook run once
// the connection closes.
func (m *Module) connect(ctx context.Context, cfg ConnectConfig, allowed func(string, int) bool, onClose func()) (*Conn, error) {
	cfg.Port = cmp.Or(cfg.Port, 22)
	if cfg.Host == "" || cfg.User == "" {
		return nil, errorf(CodeInvalidArgument, nil, "host and user are required")
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, errorf(CodeInvalidArgument, nil, "port %d out of range", cfg.Port)
	}
	if !m.allowed(ctx, cfg.Host, cfg.Port, allowed) {
		return nil, errorf(CodeNotAllowed, nil, "host %s is not allowed", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	}
	hkc, err := hostKeyCallback(cfg)
	if err != nil {
		return nil, err
	}
	auth, err := authMethods(cfg)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	dctx, cancel := context.WithTimeout(ctx, cmp.Or(cfg.Timeout, m.opts.DialTimeout))
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		if dctx.Err() != nil {
			return nil, errorf(CodeTimeout, err, "connect %s: timed out", addr)
		}
		return nil, errorf(CodeTransport, err, "connect %s: %v", addr, err)
	}
	// Bound the handshake by the dial context: closing the socket aborts it.
	stopHS := context.AfterFunc(dctx, func() { _ = nc.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:            cfg.User,
		Auth:            auth,
		HostKeyCallback: hkc,
	})
	if !stopHS() {
		// The dial context ended during the handshake.
		if err == nil {
			_ = sc.Close()
		}
		return nil, errorf(CodeTimeout, dctx.Err(), "ssh handshake with %s: timed out", addr)
	}
	if err != nil {
		_ = nc.Close()
		switch {
		case errors.Is(err, errHostKey):
			m.opts.Logger.Warn("sftp host key mismatch", "addr", addr, "err", err)
			return nil, errorf(CodeHostKey, err, "%s: host key does not match the pinned key (%v)", addr, err)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, errorf(CodeAuth, err, "%s: authentication as %q refused", addr, cfg.User)
		default:
			return nil, errorf(CodeTransport, err, "ssh handshake with %s: %v", addr, err)
		}
	}
	client := ssh.NewClient(sc, chans, reqs)
	sc2, err := sftp.NewClient(client)
	if err != nil {
		_ = client.Close()
		return nil, errorf(CodeTransport, err, "start sftp on %s: %v", addr, err)
	}
	c := &Conn{m: m, ssh: client, sftp: sc2, closed: make(chan struct{}), addr: addr, opTO: cfg.OpTimeout, onClose: onClose}
	c.stop = context.AfterFunc(ctx, func() { _ = c.close() })
	m.opts.Logger.Debug("sftp connected", "addr", addr, "user", cfg.User)
	return c, nil
}

func (c *Conn) close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		// The SSH connection first: closing the SFTP client waits for its
		// reader, which only ends once the transport is gone.
		err = c.ssh.Close()
		_ = c.sftp.Close()
		if c.onClose != nil {
			c.onClose()
		}
	})
	return err
}

// Close ends the session. Closing twice is harmless.
func (c *Conn) Close() error {
	c.stop()
	return c.close()
}

// opContext bounds one operation by the connection's OpTimeout; when it
// passes, the connection is closed, which aborts the blocked call.
func (c *Conn) opContext(ctx context.Context) (context.Context, func()) {
	if c.opTO <= 0 {
		return ctx, func() {}
	}
	octx, cancel := context.WithTimeout(ctx, c.opTO)
	stop := context.AfterFunc(octx, func() { _ = c.close() })
	return octx, func() {
		stop()
		cancel()
	}
}

// opErr classifies an operation failure.
func (c *Conn) opErr(ctx context.Context, op, p string, err error) *Error {
	if ctx.Err() != nil {
		return ctxErr(ctx, op+" "+p)
	}
	select {
	case <-c.closed:
		return errorf(CodeClosed, err, "%s %s: connection closed", op, p)
	default:
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(CodeNotFound, err, "%s %s: no such file or folder", op, p)
	}
	if errors.Is(err, fs.ErrPermission) {
		return errorf(CodeNotAllowed, err, "%s %s: permission denied", op, p)
	}
	return errorf(CodeTransport, err, "%s %s: %v", op, p, err)
}

func checkPath(p string) error {
	if p == "" || strings.ContainsRune(p, 0) {
		return errorf(CodeInvalidArgument, nil, "path must be a non-empty string without NUL")
	}
	return nil
}

// List returns the entries of a folder, sorted by name.
func (c *Conn) List(ctx context.Context, dir string) ([]Entry, error) {
	if err := checkPath(dir); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctxErr(ctx, "list "+dir)
	}
	ctx, done := c.opContext(ctx)
	defer done()
	infos, err := c.sftp.ReadDir(dir)
	if err != nil {
		return nil, c.opErr(ctx, "list", dir, err)
	}
	if len(infos) > c.m.opts.MaxListEntries {
		return nil, errorf(CodeTooLarge, nil, "list %s: %d entries, over the cap of %d", dir, len(infos), c.m.opts.MaxListEntries)
	}
	out := make([]Entry, 0, len(infos))
	for _, fi := range infos {
		out = append(out, Entry{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime(), IsDir: fi.IsDir()})
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Get reads a whole file of at most maxBytes (capped by
// Options.MaxFileBytes; 0 means the cap).
func (c *Conn) Get(ctx context.Context, p string, maxBytes int64) ([]byte, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	limit := c.m.opts.MaxFileBytes
	if maxBytes > 0 && maxBytes < limit {
		limit = maxBytes
	}
	if ctx.Err() != nil {
		return nil, ctxErr(ctx, "get "+p)
	}
	ctx, done := c.opContext(ctx)
	defer done()
	fi, err := c.sftp.Stat(p)
	if err != nil {
		return nil, c.opErr(ctx, "get", p, err)
	}
	if fi.IsDir() {
		return nil, errorf(CodeInvalidArgument, nil, "get %s: is a folder", p)
	}
	if fi.Size() > limit {
		return nil, errorf(CodeTooLarge, nil, "get %s: %d bytes, over the cap of %d", p, fi.Size(), limit)
	}
	f, err := c.sftp.Open(p)
	if err != nil {
		return nil, c.opErr(ctx, "get", p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, c.opErr(ctx, "get", p, err)
	}
	if int64(len(data)) > limit {
		return nil, errorf(CodeTooLarge, nil, "get %s: over the cap of %d bytes", p, limit)
	}
	return data, nil
}
