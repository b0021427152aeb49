package client

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
)

// FuzzEncodeBody checks that the Python-style text is printable ASCII,
// valid JSON, and means what encoding/json's text means.
func FuzzEncodeBody(f *testing.F) {
	f.Add("中国 😀 \u2028 \x7f \x00 \"\\ <>&", 1.5)
	f.Add("a,b:c", -0.0)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		v := map[string]any{"s": s, s: []any{s, x, nil, true}}
		got, err := EncodeBody(v)
		if err != nil {
			return // NaN and infinities are not JSON
		}
		for _, c := range got {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("byte %#x in %q", c, got)
			}
		}
		plain, _ := json.Marshal(v)
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("invalid JSON %q: %v", got, err)
		}
		json.Unmarshal(plain, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("EncodeBody means %v, encoding/json %v", a, b)
		}
	})
}

func FuzzParseAPIError(f *testing.F) {
	f.Add(400, []byte(`{"statusCode":400,"code":"VALIDATION_ERROR","message":"x","details":{"field":"a"}}`))
	f.Add(502, []byte("upstream <b>down</b>"))
	f.Add(500, []byte(`{"details":{"field":3}}`))
	f.Fuzz(func(t *testing.T, status int, data []byte) {
		e := parseAPIError(status, data)
		if e.Status != status || e.Message == "" && http.StatusText(status) != "" {
			t.Fatalf("parseAPIError(%d, %q) = %#v", status, data, e)
		}
		_ = e.Error()
	})
}
