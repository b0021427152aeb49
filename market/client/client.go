// Package client is a small Go client of the vmarket (V Cloud Platform)
// API for the CLI and tests. It signs requests with a wallet exactly as
// the V Cloud market client does, sends an operator bearer token when
// given one, encodes bodies like Python's json.dumps, and turns error
// answers into *APIError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market/signature"
	"github.com/vmarket/vmarket/market/wallet"
)

// Defaults of Options.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxResponseBytes = 16 << 20
)

// Options configure a Client. All are optional.
type Options struct {
	// Wallet, when set, identifies requests (x-sdk-time, User-Agent,
	// address headers) and signs them (public-key, signature) on the
	// wallet's network.
	Wallet *wallet.Wallet
	// Unsigned sends the Wallet's identity headers without a signature,
	// as the V Cloud client does for GET /order.
	Unsigned bool
	// Token is an operator JWT sent as "Authorization: Bearer".
	Token string
	// Timeout bounds each request, connection to last byte (default 30 s).
	Timeout time.Duration
	// HTTPClient replaces the default client (whose Timeout is Timeout).
	HTTPClient *http.Client
	// Now is the clock for x-sdk-time (default time.Now).
	Now func() time.Time
	// MaxResponseBytes bounds the answer read (default 16 MiB).
	MaxResponseBytes int64
}

// Client calls one vmarket server. It is safe for concurrent use.
type Client struct {
	base string // without trailing slash
	opts Options
	http *http.Client
}

// New returns a client of the server at baseURL (scheme and host, and a
// path prefix if the API is mounted below one).
func New(baseURL string, opts Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host[:port]", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: no query or fragment allowed", baseURL)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: opts.Timeout}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), opts: opts, http: hc}, nil
}

// APIError is a non-2xx answer, parsed from the JSON error envelope
// {statusCode, code, error, message, details}.
type APIError struct {
	Status  int            // HTTP status
	Code    string         // e.g. "UNAUTHORIZED", "VALIDATION_ERROR"
	Message string         // the server's message
	Field   string         // details.field: the request field at fault, if any
	Details map[string]any // the envelope's details
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, e.Message)
}

// Do sends a request and returns the answer body and HTTP status. path
// starts with "/" (e.g. "/api/v1/order/add") and may carry a query; query
// is appended to it. body is nil for none, []byte or json.RawMessage to
// send as is, or any value to encode with EncodeBody; the same bytes are
// sent and signed. A non-2xx answer returns its body and status with an
// *APIError.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body any) ([]byte, int, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, 0, fmt.Errorf("request path %q must start with /", path)
	}
	target := c.base + path
	if q := query.Encode(); q != "" {
		if strings.Contains(path, "?") {
			target += "&" + q
		} else {
			target += "?" + q
		}
	}
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	case json.RawMessage:
		payload = b
	default:
		var err error
		if payload, err = EncodeBody(body); err != nil {
			return nil, 0, err
		}
	}
	var reader io.Reader = http.NoBody
	if payload != nil {
		reader = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		return nil, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	if w := c.opts.Wallet; w != nil {
		if c.opts.Unsigned {
			signature.SetIdentity(req, w.Address(), c.opts.Now())
		} else {
			signature.Sign(req, payload, w, c.opts.Now())
		}
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if int64(len(data)) > c.opts.MaxResponseBytes {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, c.opts.MaxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return data, resp.StatusCode, parseAPIError(resp.StatusCode, data)
	}
	return data, resp.StatusCode, nil
}

// parseAPIError reads the error envelope, or makes do with the status.
func parseAPIError(status int, data []byte) *APIError {
	e := &APIError{Status: status}
	var env struct {
		Code    string         `json:"code"`
		Error   string         `json:"error"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	}
	if json.Unmarshal(data, &env) == nil {
		e.Code, e.Message, e.Details = env.Code, env.Message, env.Details
		e.Field, _ = env.Details["field"].(string)
		if e.Message == "" {
			e.Message = env.Error
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(status)
		if text := strings.TrimSpace(string(data)); text != "" {
			if len(text) > 200 {
				text = strings.ToValidUTF8(text[:200], "") + "…"
			}
			e.Message += ": " + text
		}
	}
	return e
}
