package signature_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// signedRequests returns n signed copies of one order request, each with
// its own signature (XEdDSA signatures are randomized).
func signedRequests(tb testing.TB, n int, w *wallet.Wallet, now time.Time) []*signature.Request {
	tb.Helper()
	base := signature.Request{
		Method:    http.MethodPost,
		Path:      "/api/v1/order/add",
		UserAgent: signature.UserAgent,
		Address:   w.Address(),
		PublicKey: w.PublicKey().String(),
		Time:      strconv.FormatInt(now.Unix(), 10),
		Body: []byte(`{"serviceID": "0ac3d8e1-d803-4af3-8cd2-f87939131b37", "serviceOptions": ` +
			`{"region": "\u4e2d\u56fd-\u9999\u6e2f", "cpu": "2", "memory": "4Gi"}, "duration": 720, ` +
			`"amount": 12.5, "expiredDate": "2026-02-01"}`),
	}
	msg := base.Message()
	out := make([]*signature.Request, n)
	for i := range out {
		r := base
		r.Signature = base64.StdEncoding.EncodeToString(w.Keys.Sign(msg[:]))
		out[i] = &r
	}
	return out
}

func newBenchVerifier(b *testing.B, now time.Time, cacheSize int) *signature.Verifier {
	v, err := signature.NewVerifier(signature.Config{
		Network:         wallet.Mainnet,
		Now:             func() time.Time { return now },
		ReplayCacheSize: cacheSize,
		Logger:          slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// bareEd25519 returns a key and pool of message/signature pairs for the
// baseline, crypto/ed25519.Verify on 32-byte messages.
func bareEd25519(n int) (ed25519.PublicKey, [][]byte, [][]byte) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msgs, sigs := make([][]byte, n), make([][]byte, n)
	for i := range msgs {
		msgs[i] = make([]byte, 32)
		rand.Read(msgs[i])
		sigs[i] = ed25519.Sign(priv, msgs[i])
	}
	return pub, msgs, sigs
}

// BenchmarkVerify compares the full Verifier path (headers, time window,
// cached key and address, canonical text and hashes, XEdDSA, replay cache;
// a new signature every call) with a bare crypto/ed25519.Verify.
func BenchmarkVerify(b *testing.B) {
	w, _ := wallet.Generate(wallet.Mainnet)
	now := time.Unix(1767225600, 0)
	b.Run("ed25519.Verify", func(b *testing.B) {
		pub, msgs, sigs := bareEd25519(1024)
		b.ResetTimer()
		for i := range b.N {
			if !ed25519.Verify(pub, msgs[i%1024], sigs[i%1024]) {
				b.Fatal("baseline signature rejected")
			}
		}
	})
	b.Run("Verifier.Verify", func(b *testing.B) {
		reqs := signedRequests(b, b.N, w, now)
		v := newBenchVerifier(b, now, b.N+1)
		b.ResetTimer()
		for i := range b.N {
			if err := v.Verify(reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkVerifyRatio interleaves the two so both see the same machine
// state, and reports Verifier time over bare ed25519 time as "ratio".
func BenchmarkVerifyRatio(b *testing.B) {
	w, _ := wallet.Generate(wallet.Mainnet)
	now := time.Unix(1767225600, 0)
	reqs := signedRequests(b, b.N, w, now)
	v := newBenchVerifier(b, now, b.N+1)
	pub, msgs, sigs := bareEd25519(1024)
	var full, bare time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := v.Verify(reqs[i]); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if !ed25519.Verify(pub, msgs[i%1024], sigs[i%1024]) {
			b.Fatal("baseline signature rejected")
		}
		full += t1.Sub(t0)
		bare += time.Since(t1)
	}
	b.ReportMetric(float64(full.Nanoseconds())/float64(b.N), "verifier-ns/op")
	b.ReportMetric(float64(bare.Nanoseconds())/float64(b.N), "ed25519-ns/op")
	b.ReportMetric(float64(full)/float64(bare), "ratio")
}

func FuzzVerify(f *testing.F) {
	vs := loadVectors(f)
	for _, v := range vs {
		f.Add(v.Method, v.Target, v.UserAgent, v.Address, v.PublicKey, v.Signature, v.Time, []byte(v.Body))
	}
	f.Add("GET", "/api/v1/x?a=1&&b", "", "A", "1", "====", "-1", []byte(nil))
	verifier, err := signature.NewVerifier(signature.Config{
		Network: wallet.Mainnet,
		Now:     func() time.Time { return time.Unix(1767225600, 0) },
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, target, ua, addr, pub, sig, tm string, body []byte) {
		path, query, _ := strings.Cut(target, "?")
		r := &signature.Request{Method: method, Path: path, RawQuery: query, UserAgent: ua,
			Address: addr, PublicKey: pub, Signature: sig, Time: tm, Body: body}
		if !bytes.Equal(r.Canonical(), r.Canonical()) {
			t.Fatal("canonical text is not deterministic")
		}
		err := verifier.Verify(r)
		if err == nil {
			return
		}
		var me *market.Error
		if !errors.As(err, &me) || (me.Kind != market.KindUnauthorized && me.Kind != market.KindBusy) || me.Message == "" {
			t.Fatalf("Verify error %#v is not an unauthorized market error", err)
		}
	})
}

// FuzzRequestFromHTTP feeds arbitrary request-targets and headers through
// the middleware's request parsing.
func FuzzRequestFromHTTP(f *testing.F) {
	f.Add("/api/v1/order?statuses%5B%5D=A&statuses%5B%5D=B", "1767225600", "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS")
	f.Add("http://host:1/api/v1/x?y", "", "")
	f.Add("*", "x", "y")
	f.Add("https://", "", "")
	f.Fuzz(func(t *testing.T, target, tm, addr string) {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		req := &http.Request{Method: http.MethodGet, URL: u, RequestURI: target, Header: http.Header{},
			Body: io.NopCloser(strings.NewReader(""))}
		req.Header.Set(signature.HeaderTime, tm)
		req.Header.Set(signature.HeaderAddress, addr)
		r := signature.RequestFromHTTP(req, nil)
		if !strings.HasPrefix(target, "/") {
			return
		}
		got := r.Path
		if strings.Contains(target, "?") {
			got += "?" + r.RawQuery
		}
		if got != target {
			t.Fatalf("origin-form target %q parsed as path %q query %q", target, r.Path, r.RawQuery)
		}
	})
}
