package signature

import (
	"bytes"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// Mode says what Middleware does with a request that carries no signature.
type Mode int

// Middleware modes.
const (
	// Required refuses requests without signature headers (401).
	Required Mode = iota + 1
	// Optional lets requests without public-key and signature headers
	// through unauthenticated (AddressFrom reports false), so a handler
	// may accept another credential such as an operator JWT. A request
	// that carries either header must verify.
	Optional
)

// addressKey is the echo context key of the authenticated address.
const addressKey = "vmarket.signature.address"

// Middleware returns echo middleware that verifies the wallet signature of
// each request with v, mode deciding about unsigned requests. It reads the
// body (up to the verifier's MaxBodyBytes, else 413) and puts it back for
// the handler, and signs over the path and query exactly as received. On
// success the handler gets the address with AddressFrom. Failures are
// returned as *market.Error for the server's error handler.
func (v *Verifier) Middleware(mode Mode) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if mode == Optional && req.Header.Get(HeaderPublicKey) == "" && req.Header.Get(HeaderSignature) == "" {
				return next(c)
			}
			for _, h := range [...]string{HeaderTime, HeaderAddress, HeaderPublicKey, HeaderSignature, HeaderUserAgent} {
				if len(req.Header.Values(h)) > 1 {
					return unauthorized(CheckHeader, "duplicate signature header %q", h).WithDetail("header", h)
				}
			}
			body, err := readBody(req, v.maxBody)
			if err != nil {
				return err
			}
			sr := RequestFromHTTP(req, body)
			if err := v.Verify(sr); err != nil {
				return err
			}
			c.Set(addressKey, sr.Address)
			return next(c)
		}
	}
}

// AddressFrom returns the address Middleware authenticated for this
// request; ok is false when the request was not signed (Optional mode) or
// did not pass through Middleware.
func AddressFrom(c echo.Context) (address string, ok bool) {
	address, ok = c.Get(addressKey).(string)
	return address, ok && address != ""
}

// readBody reads r's body up to max bytes and restores it for the next
// reader.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	tooLarge := func() error {
		return market.Errorf(market.KindTooLarge, "request body is larger than %d bytes", max).WithDetail("limit", max)
	}
	if r.ContentLength > max {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, &market.Error{Kind: market.KindInvalid, Message: "reading request body failed", Err: err}
	}
	if int64(len(body)) > max {
		return nil, tooLarge()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
