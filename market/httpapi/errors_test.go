package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

// writeCase is one catalog write with a body that would succeed for an
// admin.
type writeCase struct {
	name   string
	method string
	path   string
	body   func(i int) any
}

// writeCases covers every write route of the catalog. Each body uses a
// fresh name so that a wrongly accepted write cannot collide with an
// earlier one.
func writeCases(catID string) []writeCase {
	return []writeCase{
		{"create provider", http.MethodPost, "/api/v1/service/provider", func(i int) any { return providerBody(name("np", i)) }},
		{"create category", http.MethodPost, "/api/v1/service/category", func(i int) any { return categoryBody("p", name("nc", i)) }},
		{"create type by category path", http.MethodPost, "/api/v1/service/category", func(i int) any { return typeBody("p", "c", name("nt", i)) }},
		{"create type", http.MethodPost, "/api/v1/service/type", func(i int) any {
			b := typeBody("p", "c", name("nt2", i))
			b["categoryID"] = catID
			return b
		}},
		{"template by POST", http.MethodPost, "/api/v1/template/add", func(i int) any { return smallTemplate(name("tp", i)) }},
		{"template by GET", http.MethodGet, "/api/v1/template/add", func(i int) any { return smallTemplate(name("tg", i)) }},
	}
}

func name(prefix string, i int) string { return fmt.Sprintf("%s-%d", prefix, i) }

// smallTemplate is a wire-form template: one category with one type.
func smallTemplate(provider string) map[string]any {
	cat := categoryBody(provider, "cat")
	delete(cat, "provider")
	st := typeBody(provider, "cat", "type")
	delete(st, "provider")
	delete(st, "category")
	cat["serviceTypes"] = []any{st}
	p := providerBody(provider)
	return map[string]any{"provider": p, "categories": []any{cat}}
}

func TestAuthorization(t *testing.T) {
	s := newTestServer(t)
	catID, _ := s.seedTree("p", "c", nil)
	other, err := opauth.NewKeyring([]byte("another-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _ := other.Issue("x", market.RoleAdmin, time.Hour, time.Now())
	expired, _ := s.keys.Issue("x", market.RoleAdmin, time.Minute, time.Now().Add(-time.Hour))
	tokens := []struct {
		name   string
		header string // Authorization header; "" sends none
		status int
		code   market.Kind
	}{
		{"no token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"garbage token", "Bearer not-a-jwt", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"basic auth", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"other secret", "Bearer " + foreign, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"expired", "Bearer " + expired, http.StatusUnauthorized, "UNAUTHORIZED"},
		{"tampered", "Bearer " + s.admin[:len(s.admin)-2] + "xx", http.StatusUnauthorized, "UNAUTHORIZED"},
		{"support role", "Bearer " + s.support, http.StatusForbidden, "FORBIDDEN"},
		{"admin, lower-case scheme", "bearer " + s.admin, 0, ""},
		{"admin", "Bearer " + s.admin, 0, ""},
	}
	i := 0
	for _, wc := range writeCases(catID) {
		for _, tk := range tokens {
			t.Run(wc.name+"/"+tk.name, func(t *testing.T) {
				i++
				before := s.snapshot()
				b, _ := json.Marshal(wc.body(i))
				req, _ := http.NewRequest(wc.method, s.url+wc.path, bytes.NewReader(b))
				if tk.header != "" {
					req.Header.Set("Authorization", tk.header)
				}
				a := s.send(req)
				if tk.status == 0 {
					if a.status != http.StatusOK && a.status != http.StatusCreated {
						t.Fatalf("admin write: %d %s", a.status, a.body)
					}
					return
				}
				wantError(t, a, tk.status, tk.code, "")
				if s.snapshot() != before {
					t.Errorf("a refused write changed the database")
				}
			})
		}
	}
	// Reads are public, but a bad token is refused rather than ignored.
	for _, path := range []string{"/api/v1/service/provider", "/api/v1/service/provider/p", "/api/v1/service/category", "/api/v1/service/category/" + catID, "/api/v1/service/type"} {
		wantStatus(t, s.do(http.MethodGet, path, "", nil), http.StatusOK)
		wantStatus(t, s.do(http.MethodGet, path, s.support, nil), http.StatusOK)
		wantError(t, s.do(http.MethodGet, path, "garbage", nil), http.StatusUnauthorized, "UNAUTHORIZED", "")
	}
}

// TestAnonymousWritesRefusedFirst checks that an anonymous or read-only
// caller learns nothing from a write: the answer is 401/403 whatever the
// body names or breaks.
func TestAnonymousWritesRefusedFirst(t *testing.T) {
	s := newTestServer(t)
	s.seedTree("p", "c", nil)
	noName := typeBody("p", "c", "")
	bodies := []struct {
		name string
		path string
		body any
	}{
		{"category of unknown provider", "/api/v1/service/category", categoryBody("nobody", "x")},
		{"category without name", "/api/v1/service/category", categoryBody("p", "")},
		{"type of unknown provider", "/api/v1/service/type", typeBody("nobody", "c", "t")},
		{"type of unknown category", "/api/v1/service/type", typeBody("p", "nowhere", "t")},
		{"type without name", "/api/v1/service/type", noName},
		{"type by category path, unknown category", "/api/v1/service/category", typeBody("p", "nowhere", "t")},
		{"provider without wallet", "/api/v1/service/provider", map[string]any{"name": "x"}},
		{"template without provider", "/api/v1/template/add", map[string]any{"categories": []any{}}},
	}
	for _, b := range bodies {
		t.Run(b.name, func(t *testing.T) {
			wantError(t, s.do(http.MethodPost, b.path, "", b.body), http.StatusUnauthorized, "UNAUTHORIZED", "")
			wantError(t, s.do(http.MethodPost, b.path, s.support, b.body), http.StatusForbidden, "FORBIDDEN", "")
			a := s.do(http.MethodPost, b.path, s.admin, b.body)
			wantError(t, a, http.StatusBadRequest, "VALIDATION_ERROR", "")
		})
	}
}

func TestUnknownRoutes(t *testing.T) {
	s := newTestServer(t)
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/nothing"},
		{http.MethodGet, "/"},
		{http.MethodGet, "/api/v2/service/provider"},
		{http.MethodDelete, "/api/v1/service/provider"},
		{http.MethodPut, "/api/v1/service/type/x"},
		{http.MethodPatch, "/api/v1/service/category"},
		{http.MethodPost, "/api/v1/service/provider/p"},
		{http.MethodDelete, "/api/v1/template/add"},
	} {
		t.Run(r.method+" "+r.path, func(t *testing.T) {
			m := wantError(t, s.do(r.method, r.path, "", nil), http.StatusNotFound, "NOT_FOUND", "")
			if msg := m["message"].(string); !strings.Contains(msg, r.path) {
				t.Errorf("message %q does not name the path", msg)
			}
		})
	}
	for _, path := range []string{"/api/v1/service/provider/", "/api/v1/service/category/", "/api/v1/service/type/", "/api/v1/service/type/" + uuid.NewString(), "/api/v1/service/category/not-a-uuid", "/api/v1/service/provider/%2e%2e"} {
		wantError(t, s.do(http.MethodGet, path, "", nil), http.StatusNotFound, "NOT_FOUND", "")
	}
}

// TestBadBodies sends malformed and mistyped bodies to every create route:
// each is a 400 naming the field at fault, never a 500, and changes
// nothing.
func TestBadBodies(t *testing.T) {
	s := newTestServer(t)
	catID, _ := s.seedTree("p", "c", map[string][]string{"t": {"1"}}, "t")
	mod := func(base map[string]any, f func(map[string]any)) map[string]any {
		b, _ := json.Marshal(base)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		f(m)
		return m
	}
	ty := func(f func(map[string]any)) map[string]any { return mod(typeBody("p", "c", "new"), f) }
	ps := func(m map[string]any) map[string]any { return m["durationToPrice"].([]any)[0].(map[string]any) }
	api := func(m map[string]any) map[string]any { return m["serviceAPI"].(map[string]any) }
	tests := []struct {
		name  string
		paths []string
		body  any
		field string
	}{
		{"empty body", []string{"provider", "category", "type"}, "", "body"},
		{"spaces", []string{"provider", "category", "type"}, "  \n", "body"},
		{"truncated", []string{"provider", "category", "type"}, `{"name": "x"`, "body"},
		{"not JSON", []string{"provider", "category", "type"}, `name=x`, "body"},
		{"list", []string{"provider", "category", "type"}, `[]`, "body"},
		{"string", []string{"provider", "category", "type"}, `"x"`, "body"},
		{"trailing value", []string{"provider", "category", "type"}, `{"name":"x"} {}`, "body"},
		{"stray closing brace", []string{"provider", "category", "type"}, `{"name":"x"}}`, "body"},
		{"stray closing bracket", []string{"provider", "category", "type"}, `{"name":"x"}]`, "body"},
		{"null", []string{"provider", "category", "type"}, `null`, ""},
		{"name as number", []string{"provider", "category", "type"}, `{"name": 5}`, "name"},
		{"provider wallet as number", []string{"provider"}, `{"name": "x", "walletAddress": 5, "apiHost": "h"}`, "walletAddress"},
		{"provider without wallet", []string{"provider"}, map[string]any{"name": "x", "apiHost": "h"}, "walletAddress"},
		{"provider without apiHost", []string{"provider"}, map[string]any{"name": "x", "walletAddress": "w"}, "apiHost"},
		{"provider apiHost with spaces", []string{"provider"}, map[string]any{"name": "x", "walletAddress": "w", "apiHost": "a b"}, "apiHost"},
		{"provider apiHost ftp", []string{"provider"}, map[string]any{"name": "x", "walletAddress": "w", "apiHost": "ftp://h"}, "apiHost"},
		{"provider name too long", []string{"provider"}, providerBody(strings.Repeat("n", 129)), "name"},
		{"provider name control chars", []string{"provider"}, providerBody("a\x00b"), "name"},
		{"category options as list", []string{"category"}, mod(categoryBody("p", "n"), func(m map[string]any) { m["serviceOptions"] = []any{"a"} }), "serviceOptions"},
		{"category option value as number", []string{"category"}, mod(categoryBody("p", "n"), func(m map[string]any) { m["serviceOptions"] = map[string]any{"a": 1} }), ""},
		{"category duplicate option values", []string{"category"}, mod(categoryBody("p", "n"), func(m map[string]any) { m["serviceOptions"] = map[string]any{"a": []string{"x", "x"}} }), "serviceOptions.a"},
		{"category unknown provider", []string{"category"}, categoryBody("nobody", "n"), "provider"},
		{"price as list", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = []any{1} }), "durationToPrice.price"},
		{"price as object", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = map[string]any{} }), "durationToPrice.price"},
		{"price as bool", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = true }), "durationToPrice.price"},
		{"price as text", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = "cheap" }), ""},
		{"price with 9 decimals", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = json.Number("1.123456789") }), ""},
		{"negative price", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["price"] = -1 }), "durationToPrice[0].price"},
		{"refundable as string", []string{"type", "category"}, ty(func(m map[string]any) { m["refundable"] = "yes" }), "refundable"},
		{"durationToPrice as object", []string{"type", "category"}, ty(func(m map[string]any) { m["durationToPrice"] = map[string]any{} }), "durationToPrice"},
		{"no price sets", []string{"type", "category"}, ty(func(m map[string]any) { m["durationToPrice"] = []any{} }), "durationToPrice"},
		{"duration as list", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["duration"] = []any{1} }), "durationToPrice.duration"},
		{"duration key not hours", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["duration"] = map[string]any{"x": 1} }), ""},
		{"duration key zero", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["duration"] = map[string]any{"0": 1} }), ""},
		{"duration factor zero", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["duration"] = map[string]any{"1": 0} }), "durationToPrice[0].duration.1"},
		{"charging option not offered", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["charingOptions"] = map[string]any{"nope": "x"} }), "durationToPrice[0].chargingOptions.nope"},
		{"charging option value not offered", []string{"type", "category"}, ty(func(m map[string]any) {
			ps(m)["charingOptions"] = map[string]any{"custom-options-1": "value-9"}
		}), "durationToPrice[0].chargingOptions.custom-options-1"},
		{"charging options as list", []string{"type", "category"}, ty(func(m map[string]any) { ps(m)["chargingOptions"] = []any{"x"} }), "durationToPrice.chargingOptions"},
		{"same charging options twice", []string{"type", "category"}, ty(func(m map[string]any) {
			m["durationToPrice"] = append(m["durationToPrice"].([]any), ps(m))
		}), "durationToPrice[1].chargingOptions"},
		{"start as number", []string{"type", "category"}, ty(func(m map[string]any) { api(m)["start"] = 5 }), "serviceAPI.start"},
		{"serviceAPI as string", []string{"type", "category"}, ty(func(m map[string]any) { m["serviceAPI"] = "x" }), "serviceAPI"},
		{"normal API relative path", []string{"type", "category"}, ty(func(m map[string]any) { api(m)["normal"] = map[string]any{"f": "api/x"} }), "serviceAPI.normal.f"},
		{"secret API name with slash", []string{"type", "category"}, ty(func(m map[string]any) { api(m)["secret"] = map[string]any{"a/b": "/x"} }), "serviceAPI.secret.a/b"},
		{"unknown provider", []string{"type", "category"}, ty(func(m map[string]any) { m["provider"] = "nobody" }), "provider"},
		{"unknown category", []string{"type", "category"}, ty(func(m map[string]any) { m["category"] = "nowhere" }), "category"},
		{"unknown categoryID", []string{"type", "category"}, ty(func(m map[string]any) { delete(m, "category"); m["categoryID"] = uuid.NewString() }), "categoryID"},
		{"no category", []string{"type"}, ty(func(m map[string]any) { delete(m, "category") }), "categoryID"},
		{"category of another provider", []string{"type", "category"}, ty(func(m map[string]any) { m["provider"] = "q"; m["categoryID"] = catID }), "categoryID"},
		{"type description too long", []string{"type", "category"}, ty(func(m map[string]any) { m["description"] = strings.Repeat("d", 16<<10+1) }), "description"},
	}
	s.mustCreate("/api/v1/service/provider", providerBody("q"))
	for _, tc := range tests {
		for _, path := range tc.paths {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				before := s.snapshot()
				m := wantError(t, s.do(http.MethodPost, "/api/v1/service/"+path, s.admin, tc.body), http.StatusBadRequest, "VALIDATION_ERROR", tc.field)
				if d, _ := m["details"].(map[string]any); d["field"] == nil {
					t.Errorf("details name no field: %v", m)
				}
				if s.snapshot() != before {
					t.Errorf("a rejected write changed the database")
				}
			})
		}
	}
}

// chunked hides a reader's length so the client sends it chunked.
type chunked struct{ io.Reader }

func TestOversizedBodies(t *testing.T) {
	s := newTestServer(t)
	s.seedTree("p", "c", nil)
	big := `{"name": "` + strings.Repeat("x", 2<<20) + `"}`
	huge := `{"provider": {"name": "` + strings.Repeat("x", 9<<20) + `"}}`
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		chunk  bool
	}{
		{"provider", http.MethodPost, "/api/v1/service/provider", big, false},
		{"provider chunked", http.MethodPost, "/api/v1/service/provider", big, true},
		{"category", http.MethodPost, "/api/v1/service/category", big, false},
		{"type", http.MethodPost, "/api/v1/service/type", big, false},
		{"type chunked", http.MethodPost, "/api/v1/service/type", big, true},
		{"template", http.MethodPost, "/api/v1/template/add", huge, false},
		{"template by GET, chunked", http.MethodGet, "/api/v1/template/add", huge, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunk {
				body = chunked{body}
			}
			req, _ := http.NewRequest(tc.method, s.url+tc.path, body)
			req.Header.Set("Authorization", "Bearer "+s.admin)
			wantError(t, s.send(req), http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE", "")
			if s.snapshot() != before {
				t.Errorf("a refused body changed the database")
			}
		})
	}
	// The server still answers afterwards.
	wantStatus(t, s.do(http.MethodGet, "/api/v1/service/provider", "", nil), http.StatusOK)
}
