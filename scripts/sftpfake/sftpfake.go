// Package sftpfake is an in-process SFTP server for tests: an SSH server
// (golang.org/x/crypto/ssh) listening on 127.0.0.1 with a freshly generated
// ed25519 host key, password and public-key authentication, and the
// github.com/pkg/sftp request server over a read-only in-memory file tree.
// The VCC daily reconciliation files are served from it in tests.
//
// Every login and file operation is recorded, and failures can be injected
// (failing operations, rejected logins, slow reads).
package sftpfake

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/vmarket/vmarket/scripts/internal/fakekit"
)

// User is an account the server accepts: by password when Password is not
// empty, and by any of AuthorizedKeys.
type User struct {
	Name           string
	Password       string
	AuthorizedKeys []ssh.PublicKey
}

// Config configures a server.
type Config struct {
	Users []User
	// Logger receives debug lines; discarded when nil.
	Logger *slog.Logger
}

// Call is one recorded operation: Op is "login", "login-failed", "list",
// "stat", "get" or "denied" (a write the read-only tree refused).
type Call struct {
	Time time.Time
	User string
	Op   string
	Path string
	// Err is the error answered, empty on success.
	Err string
}

// Server is a running fake SFTP server. Close it when done.
type Server struct {
	ln      net.Listener
	cfg     *ssh.ServerConfig
	hostKey ssh.Signer
	users   map[string]User
	log     *slog.Logger

	// Faults injects failures: FailNext fails the next file operations
	// (the status is ignored), RejectAuthNext refuses the next logins,
	// SetDelay slows every list and read.
	Faults fakekit.Faults
	calls  fakekit.Recorder[Call]

	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	files  map[string]memFile
	dirs   map[string]time.Time
	closed bool
}

type memFile struct {
	data  []byte
	mtime time.Time
}

// New generates a host key and starts a server on 127.0.0.1:0.
func New(cfg Config) (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	s := &Server{
		hostKey: signer,
		users:   map[string]User{},
		log:     cfg.Logger,
		stop:    make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		files:   map[string]memFile{},
		dirs:    map[string]time.Time{"/": time.Now()},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, u := range cfg.Users {
		s.users[u.Name] = u
	}
	s.cfg = &ssh.ServerConfig{
		PasswordCallback:  s.checkPassword,
		PublicKeyCallback: s.checkKey,
	}
	s.cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// Addr is the server's address, 127.0.0.1:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host is the address the server listens on, 127.0.0.1.
func (s *Server) Host() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port is the TCP port the server listens on.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKey.PublicKey() }

// HostKeyLine is the host key in authorized_keys form
// ("ssh-ed25519 AAAA…"), without a trailing newline, for pinning.
func (s *Server) HostKeyLine() string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostKey())))
}

// Fingerprint is the host key's SHA256 fingerprint ("SHA256:…"), as
// ssh-keygen -lf prints it.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.HostKey()) }

// Calls returns every recorded operation, in order.
func (s *Server) Calls() []Call { return s.calls.All() }

// Count counts recorded operations of one kind (all when op is empty).
func (s *Server) Count(op string) int {
	return s.calls.Count(func(c Call) bool { return op == "" || c.Op == op })
}

// PutFile stores a file, creating its parent folders. p is a slash path;
// a relative one is taken from the root.
func (s *Server) PutFile(p string, data []byte) {
	s.PutFileTime(p, data, time.Now())
}

// PutFileTime stores a file with the given modification time.
func (s *Server) PutFileTime(p string, data []byte, mtime time.Time) {
	p = clean(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[p] = memFile{data: slices.Clone(data), mtime: mtime}
	for d := path.Dir(p); ; d = path.Dir(d) {
		if _, ok := s.dirs[d]; !ok {
			s.dirs[d] = mtime
		}
		if d == "/" {
			break
		}
	}
}

// Mkdir creates an empty folder and its parents.
func (s *Server) Mkdir(p string) {
	p = clean(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	for d := p; ; d = path.Dir(d) {
		if _, ok := s.dirs[d]; !ok {
			s.dirs[d] = time.Now()
		}
		if d == "/" {
			break
		}
	}
}

// Remove deletes a file; it reports whether there was one.
func (s *Server) Remove(p string) bool {
	p = clean(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.files[p]
	delete(s.files, p)
	return ok
}

// Close stops listening, drops every connection and waits for the server's
// goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// GenerateClientKey makes an ed25519 key pair for a test client: the
// private key in OpenSSH PEM form and the public key to authorize.
func GenerateClientKey() (privatePEM []byte, public ssh.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate client key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, fmt.Errorf("marshal client key: %w", err)
	}
	public, err = ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("client public key: %w", err)
	}
	return pem.EncodeToMemory(block), public, nil
}

func clean(p string) string { return path.Clean("/" + p) }

func (s *Server) record(user, op, p string, err error) {
	c := Call{Time: time.Now(), User: user, Op: op, Path: p}
	if err != nil {
		c.Err = err.Error()
	}
	s.calls.Add(c)
	s.log.Debug("sftpfake", "user", user, "op", op, "path", p, "err", c.Err)
}

var errAuth = errors.New("authentication refused")

func (s *Server) checkPassword(meta ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
	u, ok := s.users[meta.User()]
	if !ok || u.Password == "" || u.Password != string(pw) || s.Faults.TakeAuthFailure() {
		s.record(meta.User(), "login-failed", "", errAuth)
		return nil, errAuth
	}
	s.record(meta.User(), "login", "", nil)
	return &ssh.Permissions{}, nil
}

func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	u, ok := s.users[meta.User()]
	if ok {
		for _, k := range u.AuthorizedKeys {
			if bytes.Equal(k.Marshal(), key.Marshal()) {
				// The callback may run for a key query before the signature is
				// checked; the login is recorded once the signature is verified
				// (see serveConn).
				if s.Faults.TakeAuthFailure() {
					break
				}
				return &ssh.Permissions{Extensions: map[string]string{"pubkey": ssh.FingerprintSHA256(key)}}, nil
			}
		}
	}
	s.record(meta.User(), "login-failed", "", errAuth)
	return nil, errAuth
}

func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() {
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				_ = c.Close()
			}()
			s.serveConn(c)
		})
	}
}

func (s *Server) serveConn(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // handshake only
	sc, chans, reqs, err := ssh.NewServerConn(c, s.cfg)
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	defer sc.Close()
	user := sc.User()
	if sc.Permissions != nil && sc.Permissions.Extensions["pubkey"] != "" {
		s.record(user, "login", "", nil)
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels")
			continue
		}
		ch, creqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.serveSession(user, ch, creqs) })
	}
}

func (s *Server) serveSession(user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		ok := req.Type == "subsystem" && len(req.Payload) > 4 && string(req.Payload[4:]) == "sftp"
		_ = req.Reply(ok, nil)
		if !ok {
			continue
		}
		go ssh.DiscardRequests(reqs)
		h := &handler{s: s, user: user}
		rs := sftp.NewRequestServer(ch, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h})
		_ = rs.Serve()
		_ = rs.Close()
		return
	}
}

// handler serves the in-memory tree read-only for one session.
type handler struct {
	s    *Server
	user string
}

func (h *handler) wait() {
	h.s.Faults.Wait(context.Background(), h.s.stop)
}

func (h *handler) injected() error {
	if _, bad := h.s.Faults.TakeFailure(); bad {
		return sftp.ErrSSHFxFailure
	}
	return nil
}

// Fileread implements sftp.FileReader.
func (h *handler) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	p := clean(r.Filepath)
	if err := h.injected(); err != nil {
		h.s.record(h.user, "get", p, err)
		return nil, err
	}
	h.wait()
	h.s.mu.Lock()
	f, ok := h.s.files[p]
	h.s.mu.Unlock()
	if !ok {
		h.s.record(h.user, "get", p, os.ErrNotExist)
		return nil, os.ErrNotExist
	}
	h.s.record(h.user, "get", p, nil)
	return bytes.NewReader(f.data), nil
}

// Filewrite implements sftp.FileWriter: the tree is read-only.
func (h *handler) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	h.s.record(h.user, "denied", clean(r.Filepath), sftp.ErrSSHFxPermissionDenied)
	return nil, sftp.ErrSSHFxPermissionDenied
}

// Filecmd implements sftp.FileCmder: the tree is read-only.
func (h *handler) Filecmd(r *sftp.Request) error {
	h.s.record(h.user, "denied", clean(r.Filepath), sftp.ErrSSHFxPermissionDenied)
	return sftp.ErrSSHFxPermissionDenied
}

// Filelist implements sftp.FileLister for List and Stat.
func (h *handler) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := clean(r.Filepath)
	op := strings.ToLower(r.Method)
	if err := h.injected(); err != nil {
		h.s.record(h.user, op, p, err)
		return nil, err
	}
	switch r.Method {
	case "List":
		h.wait()
		infos, err := h.s.list(p)
		h.s.record(h.user, op, p, err)
		return listerAt(infos), err
	case "Stat", "Lstat":
		fi, err := h.s.stat(p)
		h.s.record(h.user, "stat", p, err)
		if err != nil {
			return nil, err
		}
		return listerAt{fi}, nil
	default:
		h.s.record(h.user, op, p, sftp.ErrSSHFxOpUnsupported)
		return nil, sftp.ErrSSHFxOpUnsupported
	}
}

func (s *Server) stat(p string) (os.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[p]; ok {
		return fileInfo{name: path.Base(p), size: int64(len(f.data)), mtime: f.mtime}, nil
	}
	if t, ok := s.dirs[p]; ok {
		return fileInfo{name: path.Base(p), mtime: t, dir: true}, nil
	}
	return nil, os.ErrNotExist
}

func (s *Server) list(dir string) ([]os.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dirs[dir]; !ok {
		if _, isFile := s.files[dir]; isFile {
			return nil, sftp.ErrSSHFxFailure
		}
		return nil, os.ErrNotExist
	}
	var out []os.FileInfo
	for p, f := range s.files {
		if path.Dir(p) == dir {
			out = append(out, fileInfo{name: path.Base(p), size: int64(len(f.data)), mtime: f.mtime})
		}
	}
	for p, t := range s.dirs {
		if p != "/" && path.Dir(p) == dir {
			out = append(out, fileInfo{name: path.Base(p), mtime: t, dir: true})
		}
	}
	slices.SortFunc(out, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

type listerAt []os.FileInfo

// ListAt implements sftp.ListerAt.
func (l listerAt) ListAt(dst []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[offset:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
}

func (f fileInfo) Name() string       { return f.name }
func (f fileInfo) Size() int64        { return f.size }
func (f fileInfo) ModTime() time.Time { return f.mtime }
func (f fileInfo) IsDir() bool        { return f.dir }
func (f fileInfo) Sys() any           { return nil }
func (f fileInfo) Mode() os.FileMode {
	if f.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}

// String describes the server for logs.
func (s *Server) String() string {
	return "sftpfake@" + net.JoinHostPort(s.Host(), strconv.Itoa(s.Port()))
}
