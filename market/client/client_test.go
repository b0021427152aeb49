package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// TestEncodeBodyLikePython compares with json.dumps output of Python 3.11
// for the same data (written down from /usr/bin/python3).
func TestEncodeBodyLikePython(t *testing.T) {
	type options struct {
		Region string `json:"region"`
		CPU    string `json:"cpu"`
	}
	type order struct {
		ServiceID      string  `json:"serviceID"`
		ServiceOptions options `json:"serviceOptions"`
		Duration       int     `json:"duration"`
	}
	for _, tc := range []struct {
		name string
		in   any
		want string
	}{
		{"order", order{"0ac3", options{"中国-香港", "2 核"}, 720},
			`{"serviceID": "0ac3", "serviceOptions": {"region": "\u4e2d\u56fd-\u9999\u6e2f", "cpu": "2 \u6838"}, "duration": 720}`},
		{"nesting", map[string]any{"a": []any{1, 2, map[string]any{"b": nil, "c": true, "d": false}}, "e": []any{}, "f": map[string]any{}},
			`{"a": [1, 2, {"b": null, "c": true, "d": false}], "e": [], "f": {}}`},
		{"escapes", map[string]string{"s": "q\"b\\ / <a href=\"x\">&amp;</a> \n\r\t\b\f\x01\x1f\x7f é \u2028\u2029 😀 \ufeff"},
			`{"s": "q\"b\\ / <a href=\"x\">&amp;</a> \n\r\t\b\f\u0001\u001f\u007f \u00e9 \u2028\u2029 \ud83d\ude00 \ufeff"}`},
		{"list", []any{"x", -3, 1.5}, `["x", -3, 1.5]`},
		{"string", "just a string é", `"just a string \u00e9"`},
		{"separators inside strings", map[string]string{"k": "a,b:c"}, `{"k": "a,b:c"}`},
		{"raw message compacted", json.RawMessage(`{ "x" :[1 ,2] }`), `{"x": [1, 2]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := client.EncodeBody(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("EncodeBody\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Error("output is not valid JSON")
			}
		})
	}
	if _, err := client.EncodeBody(map[string]any{"f": func() {}}); err == nil {
		t.Error("EncodeBody of a func did not fail")
	}
}

// seen is what the test server's handler reports.
type seen struct {
	Address       string `json:"address"`
	Signed        bool   `json:"signed"`
	AddressHeader string `json:"addressHeader"`
	Authorization string `json:"authorization"`
	URI           string `json:"uri"`
	Body          string `json:"body"`
	ContentType   string `json:"contentType"`
}

// startServer runs a real echo server on 127.0.0.1 with the signature
// middleware in Optional mode and the VCP error envelope.
func startServer(t *testing.T, network wallet.Network) string {
	t.Helper()
	v, err := signature.NewVerifier(signature.Config{Network: network, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = func(err error, c echo.Context) {
		me := market.AsError(err)
		status := map[market.Kind]int{market.KindUnauthorized: 401, market.KindInvalid: 400, market.KindNotFound: 404}[me.Kind]
		if status == 0 {
			status = 500
		}
		details := map[string]any{}
		for k, v := range me.Details {
			details[k] = v
		}
		msg := me.Message
		if me.Field != "" {
			details["field"] = me.Field
			msg = me.Field + ": " + msg
		}
		c.JSON(status, map[string]any{"statusCode": status, "code": me.Kind, "error": http.StatusText(status), "message": msg, "details": details})
	}
	e.Use(v.Middleware(signature.Optional))
	e.Any("/api/v1/echo", func(c echo.Context) error {
		body, _ := io.ReadAll(c.Request().Body)
		addr, ok := signature.AddressFrom(c)
		return c.JSON(http.StatusOK, seen{Address: addr, Signed: ok, AddressHeader: c.Request().Header.Get("address"),
			Authorization: c.Request().Header.Get("Authorization"), URI: c.Request().RequestURI, Body: string(body),
			ContentType: c.Request().Header.Get("Content-Type")})
	})
	e.POST("/api/v1/invalid", func(c echo.Context) error {
		return market.Invalid("durationToPrice[0].price", "must be positive").WithDetail("got", -1)
	})
	e.GET("/api/v1/text", func(c echo.Context) error { return c.String(http.StatusBadGateway, "upstream down") })
	e.GET("/api/v1/block", func(c echo.Context) error {
		<-c.Request().Context().Done()
		return c.Request().Context().Err()
	})
	e.GET("/api/v1/big", func(c echo.Context) error {
		return c.String(http.StatusOK, strings.Repeat("x", 1000))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func decodeSeen(t *testing.T, data []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("answer %s: %v", data, err)
	}
	return s
}

func TestDoSigned(t *testing.T) {
	base := startServer(t, wallet.Testnet)
	w, _ := wallet.Generate(wallet.Testnet)
	c, err := client.New(base+"/", client.Options{Wallet: w})
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"serviceID": "s-1", "serviceOptions": map[string]string{"region": "中国"}, "duration": 24, "amount": 0.5}
	want, _ := client.EncodeBody(body)
	for _, tc := range []struct {
		name, method, path string
		query              url.Values
		body               any
		wantURI, wantBody  string
	}{
		{"post json", http.MethodPost, "/api/v1/echo", nil, body, "/api/v1/echo", string(want)},
		{"get list query", http.MethodGet, "/api/v1/echo", url.Values{"statuses[]": {"OrderPaid", "OrderFiled"}, "serviceActivated": {"True"}}, nil,
			"/api/v1/echo?serviceActivated=True&statuses%5B%5D=OrderPaid&statuses%5B%5D=OrderFiled", ""},
		{"path with query", http.MethodGet, "/api/v1/echo?current=1", url.Values{"pageSize": {"10"}}, nil,
			"/api/v1/echo?current=1&pageSize=10", ""},
		{"raw bytes", http.MethodPost, "/api/v1/echo", nil, []byte(`{"a":1}`), "/api/v1/echo", `{"a":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, status, err := c.Do(ctx(t), tc.method, tc.path, tc.query, tc.body)
			if err != nil || status != http.StatusOK {
				t.Fatalf("Do = %d, %v", status, err)
			}
			s := decodeSeen(t, data)
			if !s.Signed || s.Address != w.Address() {
				t.Errorf("server authenticated %q (signed=%v), want %s", s.Address, s.Signed, w.Address())
			}
			if s.URI != tc.wantURI || s.Body != tc.wantBody {
				t.Errorf("server saw %s %q, want %s %q", s.URI, s.Body, tc.wantURI, tc.wantBody)
			}
			if (tc.body != nil) != (s.ContentType == "application/json") {
				t.Errorf("Content-Type %q", s.ContentType)
			}
		})
	}
}

func TestDoUnsignedAndToken(t *testing.T) {
	base := startServer(t, wallet.Mainnet)
	w, _ := wallet.Generate(wallet.Mainnet)
	c, _ := client.New(base, client.Options{Wallet: w, Unsigned: true, Token: "op.jwt.token"})
	data, _, err := c.Do(ctx(t), http.MethodGet, "/api/v1/echo", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := decodeSeen(t, data)
	if s.Signed || s.AddressHeader != w.Address() || s.Authorization != "Bearer op.jwt.token" {
		t.Errorf("unsigned request: %+v", s)
	}

	anon, _ := client.New(base, client.Options{})
	data, _, err = anon.Do(ctx(t), http.MethodGet, "/api/v1/echo", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := decodeSeen(t, data); s.Signed || s.AddressHeader != "" || s.Authorization != "" {
		t.Errorf("anonymous request: %+v", s)
	}
}

func TestDoErrors(t *testing.T) {
	base := startServer(t, wallet.Mainnet)
	// A testnet wallet against a mainnet server: signature check fails.
	w, _ := wallet.Generate(wallet.Testnet)
	c, _ := client.New(base, client.Options{Wallet: w})

	_, status, err := c.Do(ctx(t), http.MethodGet, "/api/v1/echo", nil, nil)
	var ae *client.APIError
	if !errors.As(err, &ae) || status != 401 || ae.Status != 401 || ae.Code != "UNAUTHORIZED" ||
		!strings.Contains(ae.Message, "address mismatch") || ae.Details["check"] != "address" {
		t.Errorf("wrong-network wallet: %d %#v", status, err)
	}

	anon, _ := client.New(base, client.Options{})
	_, _, err = anon.Do(ctx(t), http.MethodPost, "/api/v1/invalid", nil, map[string]int{"x": 1})
	if !errors.As(err, &ae) || ae.Status != 400 || ae.Code != "VALIDATION_ERROR" || ae.Field != "durationToPrice[0].price" ||
		ae.Message != "durationToPrice[0].price: must be positive" || ae.Details["got"] != float64(-1) {
		t.Errorf("validation error: %#v", err)
	}
	if !strings.Contains(err.Error(), "400 VALIDATION_ERROR") {
		t.Errorf("Error() = %q", err)
	}

	_, _, err = anon.Do(ctx(t), http.MethodGet, "/api/v1/text", nil, nil)
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Message != "Bad Gateway: upstream down" {
		t.Errorf("text error: %#v", err)
	}

	if _, _, err := anon.Do(ctx(t), http.MethodGet, "api/v1/echo", nil, nil); err == nil {
		t.Error("a relative path was accepted")
	}
	if _, err := client.New("ftp://x", client.Options{}); err == nil {
		t.Error("an ftp base URL was accepted")
	}

	small, _ := client.New(base, client.Options{MaxResponseBytes: 999})
	if _, _, err := small.Do(ctx(t), http.MethodGet, "/api/v1/big", nil, nil); err == nil || !strings.Contains(err.Error(), "larger than 999") {
		t.Errorf("oversized answer: %v", err)
	}
}

// TestDoBounded checks that a server that never answers does not hold the
// caller: the context's end and the client's timeout both end the call.
func TestDoBounded(t *testing.T) {
	base := startServer(t, wallet.Mainnet)
	c, _ := client.New(base, client.Options{})
	cctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Do(cctx, http.MethodGet, "/api/v1/block", nil, nil)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}

	short, _ := client.New(base, client.Options{Timeout: 50 * time.Millisecond})
	if _, _, err := short.Do(ctx(t), http.MethodGet, "/api/v1/block", nil, nil); err == nil {
		t.Error("a never-answering server did not time out")
	}
}
