// Package signature verifies and makes the wallet signatures of the V Cloud
// market client: the headers x-sdk-time, address, public-key and signature
// over a canonical text of the request. Verification is transport-agnostic
// (Request, Verifier); Middleware mounts it on echo; Sign signs outgoing
// *http.Request values exactly as the Python client does.
package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
)

// Header names of the V Cloud client. HTTP header names are
// case-insensitive; the client sends them in lower case.
const (
	HeaderTime      = "x-sdk-time"
	HeaderAddress   = "address"
	HeaderPublicKey = "public-key"
	HeaderSignature = "signature"
	HeaderUserAgent = "User-Agent"
)

// UserAgent is the User-Agent the V Cloud market client sends and signs.
const UserAgent = "market command line v1.0"

// apiPrefix is where the signed path starts.
const apiPrefix = "/api/v1"

// emptyBody is what the client hashes when a request has no body.
const emptyBody = "{}"

// Request is what a signature covers, taken from an HTTP request as it was
// sent: Path and RawQuery are the raw request-target text, never a
// re-encoding, and Body the exact bytes. Header fields hold the header
// values as received.
type Request struct {
	Method    string
	Path      string // as sent, e.g. "/api/v1/order/id/42"
	RawQuery  string // as sent, without '?', e.g. "statuses%5B%5D=OrderPaid&current=1"
	UserAgent string
	Address   string // address header
	PublicKey string // public-key header: base58 Curve25519 key
	Signature string // signature header: base64 of 64 bytes
	Time      string // x-sdk-time header: unix seconds as text
	Body      []byte
}

// RequestFromHTTP takes a Request from r and its body (read by the caller).
// On a server it uses r.RequestURI, the request-target exactly as
// received; on a client request (RequestURI empty) it uses
// r.URL.RequestURI(), the text Go's client sends.
func RequestFromHTTP(r *http.Request, body []byte) *Request {
	path, query := splitTarget(r)
	return &Request{
		Method:    r.Method,
		Path:      path,
		RawQuery:  query,
		UserAgent: r.Header.Get(HeaderUserAgent),
		Address:   r.Header.Get(HeaderAddress),
		PublicKey: r.Header.Get(HeaderPublicKey),
		Signature: r.Header.Get(HeaderSignature),
		Time:      r.Header.Get(HeaderTime),
		Body:      body,
	}
}

// splitTarget returns the raw path and query of r's request-target.
func splitTarget(r *http.Request) (path, query string) {
	target := r.RequestURI
	if target == "" && r.URL != nil {
		target = r.URL.RequestURI()
	}
	path, query, _ = strings.Cut(target, "?")
	// Absolute-form targets ("http://host/api/v1/..."): keep the path.
	if !strings.HasPrefix(path, "/") {
		if _, rest, ok := strings.Cut(path, "://"); ok {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				path = rest[i:]
			} else {
				path = "/"
			}
		}
	}
	return path, query
}

// CanonicalPath returns the part of path the client signs: from the first
// "/api/v1" on. A path without "/api/v1" is signed whole.
func CanonicalPath(path string) string {
	if i := strings.Index(path, apiPrefix); i > 0 {
		return path[i:]
	}
	return path
}

// Canonical returns the canonical request text the client hashes:
//
//	METHOD \n path \n query lines \n User-Agent:UA \n address:ADDR \n hex(sha256(body))
//
// where the query lines are the raw query split on '&' (an empty line when
// there is none) and an empty body is hashed as "{}".
func (r *Request) Canonical() []byte {
	path := CanonicalPath(r.Path)
	body := r.Body
	if len(body) == 0 {
		body = []byte(emptyBody)
	}
	bodySum := sha256.Sum256(body)

	b := make([]byte, 0, len(r.Method)+len(path)+len(r.RawQuery)+len(r.UserAgent)+len(r.Address)+
		len("\n\n\nUser-Agent:\naddress:\n")+2*sha256.Size)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, path...)
	b = append(b, '\n')
	for i := 0; i < len(r.RawQuery); i++ {
		if c := r.RawQuery[i]; c == '&' {
			b = append(b, '\n')
		} else {
			b = append(b, c)
		}
	}
	b = append(b, '\n')
	b = append(b, "User-Agent:"...)
	b = append(b, r.UserAgent...)
	b = append(b, '\n')
	b = append(b, "address:"...)
	b = append(b, r.Address...)
	b = append(b, '\n')
	return hex.AppendEncode(b, bodySum[:])
}

// Message returns the 32 bytes the client signs:
// sha256("HMAC-SHA256" + x-sdk-time + hex(sha256(canonical))).
func (r *Request) Message() [sha256.Size]byte {
	canonical := sha256.Sum256(r.Canonical())
	b := make([]byte, 0, len("HMAC-SHA256")+len(r.Time)+2*sha256.Size)
	b = append(b, "HMAC-SHA256"...)
	b = append(b, r.Time...)
	b = hex.AppendEncode(b, canonical[:])
	return sha256.Sum256(b)
}
