package signature_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// TestCanonicalMatchesPython checks the canonical text and signed message
// against what the Python signer built for the same request.
func TestCanonicalMatchesPython(t *testing.T) {
	for _, v := range loadVectors(t) {
		t.Run(v.Method+" "+v.Target, func(t *testing.T) {
			path, query, _ := strings.Cut(v.Target, "?")
			r := &signature.Request{Method: v.Method, Path: path, RawQuery: query, UserAgent: v.UserAgent,
				Address: v.Address, PublicKey: v.PublicKey, Signature: v.Signature, Time: v.Time, Body: []byte(v.Body)}
			if got := string(r.Canonical()); got != v.Canonical {
				t.Errorf("canonical text\n%q\nwant\n%q", got, v.Canonical)
			}
			if got := r.Message(); hex.EncodeToString(got[:]) != v.Message {
				t.Errorf("message %x, want %s", got, v.Message)
			}
		})
	}
}

// tamper is one single-field change to a signed request and the check
// that must reject it.
type tamper struct {
	name   string
	change func(r *raw, v vector, s *testServer)
	check  string // the "check" detail
	msg    string // in the message
}

func tampers(t *testing.T, other *wallet.Wallet) []tamper {
	setHeader := func(name, value string) func(*raw, vector, *testServer) {
		return func(r *raw, _ vector, _ *testServer) { r.headers[name] = value }
	}
	dropHeader := func(name string) func(*raw, vector, *testServer) {
		return func(r *raw, _ vector, _ *testServer) { delete(r.headers, name) }
	}
	flipSig := func(i int, mask byte) func(*raw, vector, *testServer) {
		return func(r *raw, v vector, _ *testServer) {
			sig, err := base64.StdEncoding.DecodeString(v.Signature)
			if err != nil {
				t.Fatal(err)
			}
			sig[i] ^= mask
			r.headers["signature"] = base64.StdEncoding.EncodeToString(sig)
		}
	}
	return []tamper{
		{"method", func(r *raw, v vector, _ *testServer) {
			r.method = map[string]string{"GET": "POST", "POST": "GET"}[v.Method]
		}, signature.CheckSignature, "bad signature"},
		{"method case", func(r *raw, v vector, _ *testServer) { r.method = strings.ToLower(v.Method) },
			signature.CheckSignature, "bad signature"},
		{"path", func(r *raw, v vector, _ *testServer) {
			path, query, ok := strings.Cut(v.Target, "?")
			r.target = path + "x"
			if ok {
				r.target += "?" + query
			}
		}, signature.CheckSignature, "bad signature"},
		{"path prefix before /api/v1", func(r *raw, v vector, _ *testServer) {
			// The prefix is not signed (the client cuts it), so this is
			// accepted: the replay check must catch the reuse.
			r.target = "/other" + v.Target
		}, signature.CheckReplay, "replayed"},
		{"query", func(r *raw, v vector, _ *testServer) {
			if strings.Contains(v.Target, "?") {
				r.target = v.Target + "&current=9"
			} else {
				r.target = v.Target + "?current=9"
			}
		}, signature.CheckSignature, "bad signature"},
		{"query order", func(r *raw, v vector, _ *testServer) {
			path, query, ok := strings.Cut(v.Target, "?")
			parts := strings.Split(query, "&")
			if !ok || len(parts) < 2 {
				r.target = path + "?"
				if !ok {
					r.target += "a=1"
				}
				return
			}
			parts[0], parts[1] = parts[1], parts[0]
			if parts[0] == parts[1] {
				parts[0] += "x"
			}
			r.target = path + "?" + strings.Join(parts, "&")
		}, signature.CheckSignature, "bad signature"},
		{"user agent", setHeader("User-Agent", "market command line v1.1"), signature.CheckSignature, "bad signature"},
		{"user agent missing", dropHeader("User-Agent"), signature.CheckSignature, "bad signature"},
		{"address", func(r *raw, v vector, _ *testServer) {
			r.headers["address"] = other.Keys.Address(v.network(t))
		}, signature.CheckAddress, "address mismatch"},
		{"address other network", func(r *raw, v vector, _ *testServer) {
			pub, _ := wallet.ParsePublicKey(v.PublicKey)
			n := wallet.Testnet
			if v.network(t) == wallet.Testnet {
				n = wallet.Mainnet
			}
			r.headers["address"] = pub.Address(n)
		}, signature.CheckAddress, "wrong network?"},
		{"body", func(r *raw, v vector, _ *testServer) {
			if v.Body == "" || v.Body == "{}" {
				r.body = `{"x": 1}`
				return
			}
			r.body = strings.Replace(v.Body, `": `, `":  `, 1)
		}, signature.CheckSignature, "bad signature"},
		{"time", func(r *raw, v vector, _ *testServer) {
			r.headers["x-sdk-time"] = strconv.FormatInt(v.unix(t)+1, 10)
		}, signature.CheckSignature, "bad signature"},
		{"time leading zero", func(r *raw, v vector, _ *testServer) { r.headers["x-sdk-time"] = "0" + v.Time },
			signature.CheckSignature, "bad signature"},
		{"time stale", func(r *raw, v vector, _ *testServer) {
			r.headers["x-sdk-time"] = strconv.FormatInt(v.unix(t)-301, 10)
		}, signature.CheckTime, "stale"},
		{"time future", func(r *raw, v vector, _ *testServer) {
			r.headers["x-sdk-time"] = strconv.FormatInt(v.unix(t)+301, 10)
		}, signature.CheckTime, "stale"},
		{"time not a number", setHeader("x-sdk-time", "1767225600.5"), signature.CheckTime, "x-sdk-time"},
		{"public key", setHeader("public-key", other.PublicKey().String()), signature.CheckAddress, "address mismatch"},
		{"public key garbage", setHeader("public-key", "0OIl"), signature.CheckPublicKey, "public-key"},
		{"public key small order", setHeader("public-key", "11111111111111111111111111111111"), signature.CheckPublicKey, "public-key"},
		{"signature R", flipSig(0, 0x01), signature.CheckSignature, "bad signature"},
		{"signature S", flipSig(40, 0x20), signature.CheckSignature, "bad signature"},
		{"signature sign bit", flipSig(63, 0x80), signature.CheckSignature, "bad signature"},
		{"signature not base64", setHeader("signature", "!!"), signature.CheckSignature, "bad signature"},
		{"signature short", func(r *raw, v vector, _ *testServer) {
			sig, _ := base64.StdEncoding.DecodeString(v.Signature)
			r.headers["signature"] = base64.StdEncoding.EncodeToString(sig[:63])
		}, signature.CheckSignature, "bad signature"},
		{"signature from another key", func(r *raw, v vector, _ *testServer) {
			msg, _ := hex.DecodeString(v.Message)
			r.headers["signature"] = base64.StdEncoding.EncodeToString(other.Keys.Sign(msg))
		}, signature.CheckSignature, "bad signature"},
		{"missing x-sdk-time", dropHeader("x-sdk-time"), signature.CheckHeader, `"x-sdk-time"`},
		{"missing address", dropHeader("address"), signature.CheckHeader, `"address"`},
		{"missing public-key", dropHeader("public-key"), signature.CheckHeader, `"public-key"`},
		{"missing signature", dropHeader("signature"), signature.CheckHeader, `"signature"`},
	}
}

// TestPythonRequestsThroughMiddleware sends the Python client's signed
// requests, byte for byte, to a real server: each is accepted once, and
// every single-field change is rejected by the check it concerns.
func TestPythonRequestsThroughMiddleware(t *testing.T) {
	servers := map[wallet.Network]*testServer{}
	for _, n := range []wallet.Network{wallet.Mainnet, wallet.Testnet} {
		servers[n] = startServer(t, signature.Config{Network: n}, signature.Required)
	}
	other, err := wallet.Generate(wallet.Mainnet)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range loadVectors(t) {
		t.Run(v.Method+" "+v.Target, func(t *testing.T) {
			s := servers[v.network(t)]
			s.clock.Store(v.unix(t))

			a := s.send(t, v.raw())
			if a.status != http.StatusOK {
				t.Fatalf("genuine request: %d %s", a.status, a.message)
			}
			if a.ok.Address != v.Address || !a.ok.Signed {
				t.Errorf("handler saw address %q signed=%v, want %q", a.ok.Address, a.ok.Signed, v.Address)
			}
			if a.ok.Body != v.Body {
				t.Errorf("handler read body %q, want %q", a.ok.Body, v.Body)
			}
			if a.ok.URI != v.Target {
				t.Errorf("request URI %q, want %q", a.ok.URI, v.Target)
			}

			for _, tc := range tampers(t, other) {
				t.Run(tc.name, func(t *testing.T) {
					r := v.raw()
					tc.change(&r, v, s)
					a := s.send(t, r)
					if a.status != http.StatusUnauthorized || a.check != tc.check || !strings.Contains(a.message, tc.msg) {
						t.Errorf("got %d check=%q %q; want 401 check=%q containing %q", a.status, a.check, a.message, tc.check, tc.msg)
					}
				})
			}

			a = s.send(t, v.raw())
			if a.status != http.StatusUnauthorized || a.check != signature.CheckReplay || !strings.Contains(a.message, "replayed") {
				t.Errorf("replay: got %d %q, want 401 replayed", a.status, a.message)
			}
		})
	}
}

// TestWindowEdges accepts a request exactly at either edge of the window.
func TestWindowEdges(t *testing.T) {
	v := loadVectors(t)[0]
	for _, skew := range []int64{-300, 300} {
		s := startServer(t, signature.Config{Network: v.network(t)}, signature.Required)
		s.clock.Store(v.unix(t) + skew)
		if a := s.send(t, v.raw()); a.status != http.StatusOK {
			t.Errorf("server clock %+d s from x-sdk-time: %d %s", skew, a.status, a.message)
		}
	}
}

// TestReplayExpires lets a seen signature expire with the window: it is
// then refused as stale, and the cache holds no more than its bound.
func TestReplayCacheBound(t *testing.T) {
	w, _ := wallet.Generate(wallet.Mainnet)
	s := startServer(t, signature.Config{Network: wallet.Mainnet, ReplayCacheSize: 2}, signature.Required)
	now := s.clock.Load()
	sendSigned := func(at int64) answer {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/api/v1/order/id/1", nil)
		signature.Sign(req, nil, w, time.Unix(at, 0))
		r := raw{method: req.Method, target: req.URL.RequestURI(), headers: map[string]string{}}
		for k := range req.Header {
			r.headers[k] = req.Header.Get(k)
		}
		return s.send(t, r)
	}
	for i := 0; i < 2; i++ {
		if a := sendSigned(now); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.message)
		}
	}
	if a := sendSigned(now); a.status != http.StatusServiceUnavailable {
		t.Fatalf("third live signature in a cache of 2: %d %s, want 503", a.status, a.message)
	}
	// After the window the old entries expire and make room.
	s.clock.Store(now + 301)
	if a := sendSigned(now + 301); a.status != http.StatusOK {
		t.Fatalf("after expiry: %d %s", a.status, a.message)
	}
}

// TestGoSignerThroughMiddleware signs with the Go client side (Sign) the
// requests the Python client would send and has the server accept them.
func TestGoSignerThroughMiddleware(t *testing.T) {
	w, _ := wallet.Generate(wallet.Testnet)
	s := startServer(t, signature.Config{Network: wallet.Testnet}, signature.Required)
	for _, tc := range []struct{ method, target, body string }{
		{http.MethodGet, "/api/v1/order/id/42", ""},
		{http.MethodGet, "/api/v1/order?statuses%5B%5D=OrderPaid&statuses%5B%5D=OrderFiled&serviceActivated=True", ""},
		{http.MethodPost, "/api/v1/order/add", `{"serviceID": "x", "serviceOptions": {"region": "\u4e2d"}, "duration": 24, "amount": 1.5}`},
		{http.MethodPost, "/prefix/api/v1/order/userRefund/7", `{}`},
	} {
		var body []byte
		if tc.body != "" {
			body = []byte(tc.body)
		}
		req, err := http.NewRequest(tc.method, s.url+tc.target, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		signature.Sign(req, body, w, time.Unix(s.clock.Load(), 0))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var h handled
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || h.Address != w.Address() || h.URI != tc.target || h.Body != tc.body {
			t.Errorf("%s %s: %d %+v", tc.method, tc.target, resp.StatusCode, h)
		}
	}
}

func TestOptionalMode(t *testing.T) {
	s := startServer(t, signature.Config{Network: wallet.Mainnet}, signature.Optional)
	v := loadVectors(t)[0]
	s.clock.Store(v.unix(t))

	// The client's unsigned GET /order: identity headers, no signature.
	a := s.send(t, raw{method: http.MethodGet, target: "/api/v1/order?current=1", headers: map[string]string{
		"x-sdk-time": v.Time, "User-Agent": signature.UserAgent, "address": v.Address,
	}})
	if a.status != http.StatusOK || a.ok.Signed || a.ok.Address != "" {
		t.Errorf("unsigned request in Optional mode: %d %+v", a.status, a.ok)
	}
	// A present but bad signature is still refused.
	r := v.raw()
	r.headers["signature"] = "AAAA"
	if a := s.send(t, r); a.status != http.StatusUnauthorized {
		t.Errorf("bad signature in Optional mode: %d", a.status)
	}
	// Half the signature headers is refused too.
	r = v.raw()
	delete(r.headers, "signature")
	if a := s.send(t, r); a.status != http.StatusUnauthorized || !strings.Contains(a.message, `"signature"`) {
		t.Errorf("public-key without signature in Optional mode: %d %s", a.status, a.message)
	}
	if a := s.send(t, v.raw()); a.status != http.StatusOK || !a.ok.Signed || a.ok.Address != v.Address {
		t.Errorf("signed request in Optional mode: %d %+v", a.status, a.ok)
	}

	req := startServer(t, signature.Config{Network: wallet.Mainnet}, signature.Required)
	if a := req.send(t, raw{method: http.MethodGet, target: "/api/v1/order", headers: map[string]string{}}); a.status != http.StatusUnauthorized ||
		!strings.Contains(a.message, "missing signature header") {
		t.Errorf("unsigned request in Required mode: %d %s", a.status, a.message)
	}
}

func TestDuplicateHeaderRefused(t *testing.T) {
	v := loadVectors(t)[0]
	s := startServer(t, signature.Config{Network: v.network(t)}, signature.Required)
	s.clock.Store(v.unix(t))
	req, _ := http.NewRequest(v.Method, s.url+v.Target, strings.NewReader(v.Body))
	for k, val := range v.raw().headers {
		req.Header[k] = []string{val}
	}
	req.Header.Add("Address", "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("two address headers: %d, want 401", resp.StatusCode)
	}
}

func TestBodyLimit(t *testing.T) {
	w, _ := wallet.Generate(wallet.Mainnet)
	s := startServer(t, signature.Config{Network: wallet.Mainnet, MaxBodyBytes: 64}, signature.Required)
	for _, tc := range []struct {
		size int
		want int
	}{{64, http.StatusOK}, {65, http.StatusRequestEntityTooLarge}} {
		body := []byte(`"` + strings.Repeat("a", tc.size-2) + `"`)
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/order/add", bytes.NewReader(body))
		signature.Sign(req, body, w, time.Unix(s.clock.Load(), 0))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%d-byte body: %d, want %d", tc.size, resp.StatusCode, tc.want)
		}
	}
}

// TestPythonSignerLive runs testdata/pysigner.py to sign a fresh request
// with libsignal's curve25519 when Debian's python3 has the modules; the
// committed vectors cover the same ground when it does not.
func TestPythonSignerLive(t *testing.T) {
	const python = "/usr/bin/python3"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, python, "-c", "import axolotl_curve25519, base58, Cryptodome").Run(); err != nil {
		t.Skipf("%s with axolotl_curve25519, base58 and Cryptodome not available: %v", python, err)
	}
	s := startServer(t, signature.Config{Network: wallet.Testnet}, signature.Required)
	spec, _ := json.Marshal(map[string]any{
		"network": "testnet", "method": "POST", "host": "http://127.0.0.1:1", "api": "/api/v1/order/add",
		"params": map[string]any{"statuses[]": []string{"A", "B"}, "flag": true},
		"body":   map[string]any{"serviceID": "s-1", "serviceOptions": map[string]string{"region": "中国"}, "duration": 24, "amount": 0.5},
		"time":   s.clock.Load(),
	})
	cmd := exec.CommandContext(ctx, python, "testdata/pysigner.py", "--live")
	cmd.Stdin = bytes.NewReader(spec)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("pysigner: %v", err)
	}
	var v vector
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("pysigner output %s: %v", out, err)
	}
	if a := s.send(t, v.raw()); a.status != http.StatusOK || a.ok.Address != v.Address {
		t.Fatalf("live Python request %s %s: %d %s", v.Method, v.Target, a.status, a.message)
	}
}
