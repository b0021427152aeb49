package runtime

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Defaults of the http module.
const (
	defaultHTTPTimeout = 10 * time.Second
	maxRedirects       = 5
)

// errNotAllowed marks a request or redirect to a host outside the run's
// allow-list.
var errNotAllowed = errors.New("host not allowed")

// openHTTP builds the http module:
//
//	local http = require("http")
//	local resp = http.request{method = "POST", url = "https://api.example.com/v1/x",
//		headers = {Authorization = "Bearer " .. token}, body = {id = 7}, timeout = 5}
//	if resp.status == 200 then local data = json.decode(resp.body) end
//	local r2 = http.get("https://api.example.com/v1/ping")
func openHTTP(L *lua.LState) *lua.LTable {
	return setFuncs(L, L.NewTable(), map[string]lua.LGFunction{
		"request": httpRequest,
		"get":     httpGet,
		"post":    httpPost,
	})
}

// allowList is the parsed RunOptions.AllowedHosts.
type allowList struct {
	anyPort map[string]bool
	exact   map[string]bool
}

func newAllowList(entries []string) *allowList {
	a := &allowList{anyPort: map[string]bool{}, exact: map[string]bool{}}
	for _, e := range entries {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" {
			continue
		}
		if h, p, err := net.SplitHostPort(e); err == nil {
			a.exact[net.JoinHostPort(h, p)] = true
			continue
		}
		a.anyPort[strings.Trim(e, "[]")] = true
	}
	return a
}

// allows reports whether host:port may be reached.
func (a *allowList) allows(host, port string) bool {
	host = strings.ToLower(strings.Trim(host, "[]"))
	return a.anyPort[host] || a.exact[net.JoinHostPort(host, port)]
}

func (a *allowList) allowsURL(u *url.URL) bool {
	if u.Scheme != "http" && u.Scheme != "https" {
		return false
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return a.allows(u.Hostname(), port)
}

// allowList returns the run's parsed AllowedHosts.
func (r *run) allowList() *allowList {
	if r.allow == nil {
		r.allow = newAllowList(r.opts.AllowedHosts)
	}
	return r.allow
}

// httpClient returns the run's HTTP client, built on first use.
func (r *run) httpClient() (*http.Client, error) {
	if r.client != nil {
		return r.client, nil
	}
	allow := r.allowList()
	rt := r.eng.opts.Transport
	if rt == nil {
		tr, err := newGuardedTransport(allow, r.opts.RootCAs)
		if err != nil {
			return nil, err
		}
		r.transport = tr
		rt = tr
	}
	r.client = &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if !allow.allowsURL(req.URL) {
				return fmt.Errorf("redirect to %s: %w", req.URL.Host, errNotAllowed)
			}
			return nil
		},
	}
	return r.client, nil
}

// newGuardedTransport builds a transport that dials only allowed
// host:port pairs, checks the resolved addresses again at dial time (never
// link-local, multicast or unspecified addresses unless allowed literally),
// ignores proxy settings, and trusts rootPEM in addition to system roots.
func newGuardedTransport(allow *allowList, rootPEM []byte) (*http.Transport, error) {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(rootPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(rootPEM) {
			return nil, fmt.Errorf("root CAs: no certificate in PEM")
		}
		tlsConf.RootCAs = pool
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if !allow.allows(host, port) {
			return nil, fmt.Errorf("dial %s: %w", addr, errNotAllowed)
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			return nil, err
		}
		literal := net.ParseIP(strings.Trim(host, "[]")) != nil
		var lastErr error = fmt.Errorf("dial %s: no address", addr)
		for _, ip := range ips {
			if !literal && (ip.IP.IsLinkLocalUnicast() || ip.IP.IsLinkLocalMulticast() ||
				ip.IP.IsMulticast() || ip.IP.IsUnspecified()) {
				lastErr = fmt.Errorf("dial %s: resolved address %s: %w", addr, ip.IP, errNotAllowed)
				continue
			}
			conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.IP.String(), port))
			if err == nil {
				return conn, nil
			}
			lastErr = err
		}
		return nil, lastErr
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            dial,
		TLSClientConfig:        tlsConf,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		IdleConnTimeout:        30 * time.Second,
	}, nil
}

type httpReq struct {
	method  string
	url     string
	headers map[string]string
	body    string
	hasBody bool
	json    bool
	timeout time.Duration
}

func httpRequest(L *lua.LState) int {
	r := hostRun(L)
	opt := L.CheckTable(1)
	req := httpReq{method: "GET", timeout: defaultHTTPTimeout}
	if m, ok := opt.RawGetString("method").(lua.LString); ok {
		req.method = strings.ToUpper(string(m))
	}
	u, ok := opt.RawGetString("url").(lua.LString)
	if !ok {
		r.vs.raise(L, "http", "invalid_argument", "request: url must be a string")
	}
	req.url = string(u)
	if t, ok := opt.RawGetString("timeout").(lua.LNumber); ok && t > 0 {
		req.timeout = time.Duration(float64(t) * float64(time.Second))
	}
	httpHeaders(L, r, opt.RawGetString("headers"), &req)
	httpBody(L, r, opt.RawGetString("body"), &req)
	return doHTTP(L, r, &req)
}

func httpGet(L *lua.LState) int {
	r := hostRun(L)
	req := httpReq{method: "GET", url: L.CheckString(1), timeout: defaultHTTPTimeout}
	httpHeaders(L, r, L.Get(2), &req)
	return doHTTP(L, r, &req)
}

func httpPost(L *lua.LState) int {
	r := hostRun(L)
	req := httpReq{method: "POST", url: L.CheckString(1), timeout: defaultHTTPTimeout}
	httpBody(L, r, L.Get(2), &req)
	httpHeaders(L, r, L.Get(3), &req)
	return doHTTP(L, r, &req)
}

func httpHeaders(L *lua.LState, r *run, v lua.LValue, req *httpReq) {
	switch h := v.(type) {
	case *lua.LNilType:
	case *lua.LTable:
		req.headers = map[string]string{}
		h.ForEach(func(k, val lua.LValue) {
			ks, ok1 := k.(lua.LString)
			if !ok1 || !canConcat(val) {
				r.vs.raise(L, "http", "invalid_argument", "headers must map strings to strings")
			}
			req.headers[string(ks)] = lua.LVAsString(val)
		})
	default:
		r.vs.raise(L, "http", "invalid_argument", "headers must be a table")
	}
}

func httpBody(L *lua.LState, r *run, v lua.LValue, req *httpReq) {
	switch b := v.(type) {
	case *lua.LNilType:
	case lua.LString:
		req.body, req.hasBody = string(b), true
	case *lua.LTable:
		enc := jsonEncoder{vs: r.vs, max: int(r.limits.MaxStringBytes)}
		if err := enc.value(b, 0); err != nil {
			r.vs.raise(L, "http", "invalid_argument", "body: "+err.Error())
		}
		req.body, req.hasBody, req.json = enc.buf.String(), true, true
	default:
		r.vs.raise(L, "http", "invalid_argument", "body must be a string or a table")
	}
}

func doHTTP(L *lua.LState, r *run, hr *httpReq) int {
	r.httpCount++
	if r.httpCount > r.limits.HTTPRequests {
		r.tripAndRaise(L, LimitHTTPRequests, fmt.Sprintf("more than %d requests", r.limits.HTTPRequests))
	}
	u, err := url.Parse(hr.url)
	if err != nil || (u.Host == "" && (u.Scheme == "http" || u.Scheme == "https")) {
		r.vs.raise(L, "http", "invalid_argument", "bad url "+strconv.Quote(hr.url))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		r.vs.raise(L, "http", "not_allowed", "only http and https URLs are allowed")
	}
	if !r.allowList().allowsURL(u) {
		r.vs.raise(L, "http", "not_allowed", fmt.Sprintf("%s://%s is not allowed for this script", u.Scheme, u.Host))
	}
	client, err := r.httpClient()
	if err != nil {
		r.vs.raise(L, "http", "invalid_argument", err.Error())
	}
	ctx, cancel := context.WithTimeout(r.blocking(), hr.timeout)
	defer cancel()
	var body io.Reader
	if hr.hasBody {
		body = strings.NewReader(hr.body)
	}
	req, err := http.NewRequestWithContext(ctx, hr.method, u.String(), body)
	if err != nil {
		r.vs.raise(L, "http", "invalid_argument", err.Error())
	}
	for k, v := range hr.headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if hr.json && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		raiseHTTPError(L, r, err)
	}
	defer resp.Body.Close()
	limit := r.limits.HTTPBodyBytes
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		raiseHTTPError(L, r, err)
	}
	if int64(len(data)) > limit {
		r.vs.raise(L, "http", "too_large", fmt.Sprintf("response body over %s", formatBytes(limit)))
	}
	r.reserve(L, int64(len(data)))
	r.log("debug", fmt.Sprintf("http %s %s -> %d (%s)", hr.method, u.Redacted(), resp.StatusCode, time.Since(start).Round(time.Millisecond)), nil)
	out := L.NewTable()
	out.RawSetString("status", lua.LNumber(resp.StatusCode))
	hdr := L.NewTable()
	for k, vals := range resp.Header {
		hdr.RawSetString(strings.ToLower(k), lua.LString(strings.Join(vals, ", ")))
	}
	out.RawSetString("headers", hdr)
	out.RawSetString("body", lua.LString(data))
	L.Push(out)
	return 1
}

func raiseHTTPError(L *lua.LState, r *run, err error) {
	switch {
	case errors.Is(err, errNotAllowed):
		r.vs.raise(L, "http", "not_allowed", err.Error())
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		r.vs.raise(L, "http", "timeout", err.Error())
	}
	r.vs.raise(L, "http", "transport", err.Error())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
