package signature_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// vector is one request of testdata/vectors.json, signed by
// testdata/pysigner.py with libsignal's curve25519.
type vector struct {
	Network   string `json:"network"`
	Method    string `json:"method"`
	Target    string `json:"target"`
	Body      string `json:"body"`
	Time      string `json:"time"`
	UserAgent string `json:"userAgent"`
	Address   string `json:"address"`
	PublicKey string `json:"publicKey"`
	Signature string `json:"signature"`
	Canonical string `json:"canonical"`
	Message   string `json:"message"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Requests []vector `json:"requests"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Requests) == 0 {
		t.Fatal("no request vectors")
	}
	return f.Requests
}

func (v vector) network(t testing.TB) wallet.Network {
	n, err := wallet.ParseNetwork(v.Network)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (v vector) unix(t testing.TB) int64 {
	var n int64
	if err := json.Unmarshal([]byte(v.Time), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// testServer is a real echo server on 127.0.0.1 with the middleware and a
// handler that reports what it got.
type testServer struct {
	url   string
	clock *atomic.Int64 // unix seconds
	v     *signature.Verifier
}

// handled is the test handler's answer.
type handled struct {
	Address string `json:"address"`
	Signed  bool   `json:"signed"`
	Body    string `json:"body"`
	URI     string `json:"uri"`
}

func startServer(t testing.TB, cfg signature.Config, mode signature.Mode) *testServer {
	t.Helper()
	clock := new(atomic.Int64)
	clock.Store(time.Now().Unix())
	cfg.Now = func() time.Time { return time.Unix(clock.Load(), 0) }
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v, err := signature.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = renderError
	e.Use(v.Middleware(mode))
	e.Any("/*", func(c echo.Context) error {
		addr, ok := signature.AddressFrom(c)
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, handled{Address: addr, Signed: ok, Body: string(body), URI: c.Request().RequestURI})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &testServer{url: "http://" + ln.Addr().String(), clock: clock, v: v}
}

// renderError stands in for the server's central error handler.
func renderError(err error, c echo.Context) {
	status := http.StatusInternalServerError
	var he *echo.HTTPError
	me := market.AsError(err)
	switch {
	case errors.As(err, &he) && !errors.As(err, new(*market.Error)):
		status = he.Code
	case me.Kind == market.KindUnauthorized:
		status = http.StatusUnauthorized
	case me.Kind == market.KindTooLarge:
		status = http.StatusRequestEntityTooLarge
	case me.Kind == market.KindBusy:
		status = http.StatusServiceUnavailable
	case me.Kind == market.KindInvalid:
		status = http.StatusBadRequest
	}
	c.JSON(status, map[string]any{"statusCode": status, "code": me.Kind, "message": me.Message, "details": me.Details})
}

// answer is what the server said.
type answer struct {
	status  int
	message string
	check   string
	ok      handled
}

// raw is a request as put on the wire.
type raw struct {
	method  string
	target  string
	body    string
	headers map[string]string // sent with these exact (lower-case) names
}

func (v vector) raw() raw {
	return raw{method: v.Method, target: v.Target, body: v.Body, headers: map[string]string{
		"x-sdk-time": v.Time,
		"User-Agent": v.UserAgent,
		"address":    v.Address,
		"public-key": v.PublicKey,
		"signature":  v.Signature,
	}}
}

var client = &http.Client{Timeout: 10 * time.Second}

func (s *testServer) send(t testing.TB, r raw) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader = http.NoBody
	if r.body != "" {
		body = bytes.NewReader([]byte(r.body))
	}
	req, err := http.NewRequestWithContext(ctx, r.method, s.url+r.target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.headers {
		req.Header[k] = []string{v} // as given: the Python client sends lower case
	}
	if _, ok := r.headers["User-Agent"]; !ok {
		req.Header["User-Agent"] = []string{""} // no Go default
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	a := answer{status: resp.StatusCode}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &a.ok); err != nil {
			t.Fatalf("answer %s: %v", data, err)
		}
		return a
	}
	var env struct {
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatalf("error answer %s: %v", data, err)
	}
	a.message = env.Message
	a.check, _ = env.Details["check"].(string)
	return a
}
