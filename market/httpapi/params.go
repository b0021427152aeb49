package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// MaxListValues bounds repeated query values such as ids[].
const MaxListValues = 200

// query wraps parsed query parameters with typed, validating getters.
type query struct{ v url.Values }

func queryOf(c echo.Context) (query, error) {
	v, err := url.ParseQuery(c.Request().URL.RawQuery)
	if err != nil {
		return query{}, market.Invalid("query", "malformed query string: %v", err)
	}
	return query{v}, nil
}

// str returns the first value of the first of names present.
func (q query) str(names ...string) string {
	for _, n := range names {
		if vs := q.v[n]; len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

// list returns every value of all names (e.g. "ids[]" and "ids"), in
// order, without empty ones.
func (q query) list(names ...string) ([]string, error) {
	var out []string
	for _, n := range names {
		for _, v := range q.v[n] {
			if v != "" {
				out = append(out, v)
			}
		}
	}
	if len(out) > MaxListValues {
		return nil, market.Invalid(names[0], "more than %d values", MaxListValues)
	}
	return out, nil
}

// page reads current (default 1) and pageSize (default 10, capped at 100).
func (q query) page() (market.Page, error) {
	p := market.Page{Current: 1, PageSize: market.DefaultPageSize}
	if s := q.str("current"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return p, market.Invalid("current", "must be a whole number from 1 (got %q)", s)
		}
		if n > 1_000_000 {
			return p, market.Invalid("current", "must be at most 1000000")
		}
		p.Current = n
	}
	if s := q.str("pageSize"); s != "" {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return p, market.Invalid("pageSize", "must be a whole number from 1 (got %q)", s)
		}
		p.PageSize = min(n, market.MaxPageSize)
	}
	return p, nil
}

// pathParam returns a path parameter unescaped. Echo routes on the raw
// path when the client's escaping differs from the default one (e.g. a
// provider id holding "/" sent as %2F), and then hands the parameter over
// still escaped.
func pathParam(c echo.Context, name string) string {
	v := c.Param(name)
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

// decimal reads an optional decimal parameter.
func (q query) decimal(name string) (*market.Decimal, error) {
	s := q.str(name)
	if s == "" {
		return nil, nil
	}
	d, err := market.ParseDecimal(s)
	if err != nil {
		return nil, market.Invalid(name, "%v", err)
	}
	return &d, nil
}

// readBody reads the request body up to limit bytes; more is a 413.
func readBody(c echo.Context, limit int64) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > limit {
		return nil, market.Errorf(market.KindTooLarge, "request body is larger than %d bytes", limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, market.Errorf(market.KindTooLarge, "request body is larger than %d bytes", limit)
		}
		return nil, market.Invalid("body", "could not read request body: %v", err)
	}
	// Put the body back for anyone after us (signature checks read it too).
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// decodeJSON decodes one JSON value from body into dst with errors that
// name the field at fault.
func decodeJSON(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return market.Invalid("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return market.Invalid("body", "trailing data after the JSON value")
	}
	return nil
}

// jsonError turns encoding/json errors into validation errors.
func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "body"
		}
		return market.Invalid(field, "must be %s, not %s", jsonTypeName(te.Type.String()), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return market.Invalid("body", "malformed JSON at byte %d: %v", se.Offset, se)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return market.Invalid("body", "truncated JSON")
	}
	var me *market.Error
	if errors.As(err, &me) {
		return me
	}
	// Errors from our own UnmarshalJSON methods (e.g. a bad decimal) come
	// wrapped without a field name by encoding/json.
	return market.Invalid("body", "%v", err)
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"), goType == "market.Decimal":
		return "a number"
	case strings.HasPrefix(goType, "map"), strings.HasPrefix(goType, "struct"), strings.HasPrefix(goType, "market."):
		return "an object"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	}
	return fmt.Sprintf("of type %s", goType)
}
