package sftpfake_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/vmarket/vmarket/scripts/sftpfake"
)

func start(t *testing.T, users ...sftpfake.User) *sftpfake.Server {
	t.Helper()
	s, err := sftpfake.New(sftpfake.Config{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func dial(s *sftpfake.Server, user string, auth ssh.AuthMethod) (*sftp.Client, error) {
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{auth},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey()),
		Timeout:         10 * time.Second,
	}
	conn, err := ssh.Dial("tcp", s.Addr(), cfg)
	if err != nil {
		return nil, err
	}
	c, err := sftp.NewClient(conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func TestAuth(t *testing.T) {
	priv, pub, err := sftpfake.GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	otherPriv, _, _ := sftpfake.GenerateClientKey()
	otherSigner, _ := ssh.ParsePrivateKey(otherPriv)

	tests := []struct {
		name string
		user string
		auth ssh.AuthMethod
		ok   bool
	}{
		{"password", "vcc", ssh.Password("秘密-pw"), true},
		{"wrong password", "vcc", ssh.Password("nope"), false},
		{"unknown user", "root", ssh.Password("秘密-pw"), false},
		{"key", "keyuser", ssh.PublicKeys(signer), true},
		{"other key", "keyuser", ssh.PublicKeys(otherSigner), false},
		{"password for key-only user", "keyuser", ssh.Password(""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, sftpfake.User{Name: "vcc", Password: "秘密-pw"}, sftpfake.User{Name: "keyuser", AuthorizedKeys: []ssh.PublicKey{pub}})
			c, err := dial(s, tc.user, tc.auth)
			if (err == nil) != tc.ok {
				t.Fatalf("dial: %v, want ok=%v", err, tc.ok)
			}
			if c != nil {
				c.Close()
			}
			wantOp := "login-failed"
			if tc.ok {
				wantOp = "login"
			}
			if s.Count(wantOp) == 0 {
				t.Fatalf("no %s recorded: %+v", wantOp, s.Calls())
			}
		})
	}
}

func TestHostKey(t *testing.T) {
	s := start(t)
	if got := ssh.FingerprintSHA256(s.HostKey()); got != s.Fingerprint() {
		t.Fatalf("fingerprint %s vs %s", got, s.Fingerprint())
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKeyLine()))
	if err != nil || !bytes.Equal(k.Marshal(), s.HostKey().Marshal()) {
		t.Fatalf("host key line %q: %v", s.HostKeyLine(), err)
	}
	if s.Host() != "127.0.0.1" || s.Port() == 0 {
		t.Fatalf("addr %s", s.Addr())
	}
}

func TestTree(t *testing.T) {
	s := start(t, sftpfake.User{Name: "u", Password: "p"})
	content := []byte("orderNo,withdrawNo\n订单-1,W1\n")
	s.PutFile("/reconcile/20250314.csv", content)
	s.PutFile("reconcile/20250315.csv", []byte("x"))
	s.Mkdir("/empty/dir")
	c, err := dial(s, "u", ssh.Password("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	entries, err := c.ReadDir("/reconcile")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name() != "20250314.csv" || entries[0].Size() != int64(len(content)) || entries[0].IsDir() {
		t.Fatalf("entries %v", entries)
	}
	root, err := c.ReadDir("/")
	if err != nil || len(root) != 2 || !root[0].IsDir() {
		t.Fatalf("root %v %v", root, err)
	}
	f, err := c.Open("/reconcile/20250314.csv")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read %q %v", got, err)
	}
	if _, err := c.Stat("/reconcile/nope.csv"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat missing: %v", err)
	}
	if _, err := c.Open("/reconcile/nope.csv"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := c.ReadDir("/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("list missing: %v", err)
	}
	if _, err := c.Create("/reconcile/new.csv"); err == nil {
		t.Fatal("write accepted")
	}
	if err := c.Remove("/reconcile/20250314.csv"); err == nil {
		t.Fatal("remove accepted")
	}
	if s.Count("get") != 2 || s.Count("denied") < 2 {
		t.Fatalf("calls %+v", s.Calls())
	}
}

func TestFaults(t *testing.T) {
	s := start(t, sftpfake.User{Name: "u", Password: "p"})
	s.PutFile("/a.txt", []byte("a"))
	s.Faults.RejectAuthNext(1)
	if _, err := dial(s, "u", ssh.Password("p")); err == nil {
		t.Fatal("forced auth failure not applied")
	}
	c, err := dial(s, "u", ssh.Password("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s.Faults.FailNext(1, 0)
	if _, err := c.ReadDir("/"); err == nil {
		t.Fatal("forced failure not applied")
	}
	if _, err := c.ReadDir("/"); err != nil {
		t.Fatalf("after failure: %v", err)
	}
}

func TestCloseDropsClients(t *testing.T) {
	s := start(t, sftpfake.User{Name: "u", Password: "p"})
	s.PutFile("/a.txt", []byte("a"))
	c, err := dial(s, "u", ssh.Password("p"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A slow read is cut short by Close.
	s.Faults.SetDelay(time.Hour)
	done := make(chan error, 1)
	go func() { _, err := c.ReadDir("/"); done <- err }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("list succeeded on a closed server")
	}
}
