package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzQueryParams runs the list endpoints' real handlers with arbitrary
// raw query strings: the answer is a list (within the page limits) or a
// 400 naming the field at fault; never a 500, never a panic.
func FuzzQueryParams(f *testing.F) {
	for _, q := range []string{
		"", "current=2&pageSize=1", "ids[]=a&ids[]=b&ids=c&id=d", "provider=p&category=c&name=t",
		"minPrice=0.5&maxPrice=100", "minPrice=1e999999999", "maxPrice=0.000000001", "current=0", "pageSize=-1",
		"pageSize=1000", "current=99999999999999999999", "ids=%zz", "a=1;b=2", "walletAddress=AWallet1",
		"categoryID=x&ids%5B%5D=y", "name=%00", "current=%201", "&&&=&=", "minPrice=-0&maxPrice=+.5e1",
	} {
		f.Add(uint8(0), false, q)
		f.Add(uint8(2), true, q)
	}
	s := newTestServer(f)
	s.seedTree("p", "c", map[string][]string{"a": {"1", "0.5"}, "b": {"100"}}, "a", "b")
	paths := []string{"/api/v1/service/provider", "/api/v1/service/category", "/api/v1/service/type"}
	h := s.api.Handler()
	f.Fuzz(func(t *testing.T, path uint8, operator bool, raw string) {
		req := httptest.NewRequest(http.MethodGet, paths[int(path)%len(paths)], nil)
		req.URL.RawQuery = raw
		if operator {
			req.Header.Set("Authorization", "Bearer "+s.support)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			var v struct {
				List       []json.RawMessage `json:"list"`
				Pagination struct {
					Total, Current, PageSize int
				} `json:"pagination"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || v.List == nil {
				t.Fatalf("?%s: 200 with %v: %s", raw, err, rec.Body)
			}
			p := v.Pagination
			if p.Current < 1 || p.PageSize < 1 || p.PageSize > 100 || len(v.List) > p.PageSize || len(v.List) > p.Total {
				t.Fatalf("?%s: list of %d with pagination %+v", raw, len(v.List), p)
			}
		case http.StatusBadRequest:
			var env struct {
				Code    string         `json:"code"`
				Message string         `json:"message"`
				Details map[string]any `json:"details"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("?%s: 400 body: %v: %s", raw, err, rec.Body)
			}
			if env.Code != "VALIDATION_ERROR" || env.Message == "" || env.Details["field"] == nil {
				t.Fatalf("?%s: 400 without a field: %s", raw, rec.Body)
			}
		default:
			t.Fatalf("?%s: status %d: %s", raw, rec.Code, rec.Body)
		}
	})
}
