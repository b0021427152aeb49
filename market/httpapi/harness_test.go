package httpapi_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/httpapi"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// testServer is the catalog API served over loopback HTTP on a real SQLite
// file in a temporary directory.
type testServer struct {
	t       testing.TB
	url     string
	dbPath  string
	db      *sqlite.DB
	catalog *market.Catalog
	api     *httpapi.Server
	keys    *opauth.Keyring
	admin   string // admin operator token
	support string // support (read-only) operator token
	client  *http.Client
}

// testSecret signs the operator tokens of test servers.
const testSecret = "test-secret-0123456789abcdef"

// newTestServer starts the API on 127.0.0.1:0 and stops it when the test
// ends. cfg, when given, adjusts the server's configuration.
func newTestServer(t testing.TB, cfg ...func(*httpapi.Config)) *testServer {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "vmarket.db")
	db, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	keys, err := opauth.NewKeyring([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	catalog := market.NewCatalog(db, luascript.Compiler{})
	c := httpapi.Config{Catalog: catalog, Operators: keys}
	for _, f := range cfg {
		f(&c)
	}
	api := httpapi.New(c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- api.Serve(sctx, ln, 5*time.Second) }()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		client.CloseIdleConnections()
		if err := db.Close(); err != nil {
			t.Errorf("close database: %v", err)
		}
	})
	s := &testServer{t: t, url: "http://" + ln.Addr().String(), dbPath: dbPath, db: db, catalog: catalog, api: api, keys: keys, client: client}
	s.admin = s.token(market.RoleAdmin, time.Hour)
	s.support = s.token(market.RoleSupport, time.Hour)
	return s
}

// token issues an operator token with the server's secret.
func (s *testServer) token(role string, ttl time.Duration) string {
	s.t.Helper()
	tok, err := s.keys.Issue("tester", role, ttl, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// answer is one HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the answer as a JSON object.
func (a answer) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v\n%s", a.status, err, a.body)
	}
	return m
}

// into decodes the answer into v.
func (a answer) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode answer %d: %v\n%s", a.status, err, a.body)
	}
}

// do sends a request. body may be nil, a string, []byte or any value to
// encode as JSON; token is an operator token or "". Success answers are
// checked never to carry a top-level "message" key, and error answers to
// be the JSON envelope.
func (s *testServer) do(method, path, token string, body any) answer {
	s.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(req)
}

// send sends req and reads the answer, checking its envelope.
func (s *testServer) send(req *http.Request) answer {
	s.t.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read answer: %v", req.Method, req.URL, err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, body: b}
	if ct := resp.Header.Get("Content-Type"); req.Method != http.MethodHead && !strings.HasPrefix(ct, "application/json") {
		s.t.Errorf("%s %s: Content-Type %q, want application/json", req.Method, req.URL, ct)
	}
	if a.status >= 500 {
		s.t.Errorf("%s %s: server error %d: %s", req.Method, req.URL, a.status, b)
	}
	if a.status < 400 && len(b) > 0 && b[0] == '{' {
		if _, ok := a.obj(s.t)["message"]; ok {
			s.t.Errorf("%s %s: success answer carries a top-level \"message\": %s", req.Method, req.URL, b)
		}
	}
	if a.status >= 400 && req.Method != http.MethodHead {
		checkEnvelope(s.t, a)
	}
	return a
}

// checkEnvelope checks that an error answer is exactly the VCP envelope.
func checkEnvelope(t testing.TB, a answer) {
	t.Helper()
	m := a.obj(t)
	want := []string{"statusCode", "code", "error", "message", "details"}
	if len(m) != len(want) {
		t.Errorf("error envelope has keys %v, want exactly %v: %s", keys(m), want, a.body)
	}
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("error envelope lacks %q: %s", k, a.body)
		}
	}
	if sc, _ := m["statusCode"].(float64); int(sc) != a.status {
		t.Errorf("envelope statusCode %v, HTTP status %d", m["statusCode"], a.status)
	}
	if msg, _ := m["message"].(string); msg == "" {
		t.Errorf("envelope has an empty message: %s", a.body)
	}
	if e, _ := m["error"].(string); e != http.StatusText(a.status) {
		t.Errorf("envelope error %q, want %q", e, http.StatusText(a.status))
	}
	if _, ok := m["details"].(map[string]any); !ok {
		t.Errorf("envelope details is not an object: %s", a.body)
	}
}

// wantError checks an error answer's status, code and (when field is not
// "") details.field.
func wantError(t testing.TB, a answer, status int, code market.Kind, field string) map[string]any {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
	m := a.obj(t)
	if m["code"] != string(code) {
		t.Errorf("code %v, want %s: %s", m["code"], code, a.body)
	}
	details, _ := m["details"].(map[string]any)
	if field != "" && details["field"] != field {
		t.Errorf("details.field %v, want %q: %s", details["field"], field, a.body)
	}
	return m
}

// wantStatus fails the test unless the answer has the status.
func wantStatus(t testing.TB, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d: %s", a.status, status, a.body)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// snapshot dumps every row of every catalog table through a separate
// read-only connection, so tests can check that a failed request changed
// nothing.
func (s *testServer) snapshot() string {
	s.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+s.dbPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, table := range []string{"providers", "categories", "service_types", "scripts", "bundled_templates"} {
		rows, err := db.Query("SELECT * FROM " + table + " ORDER BY 1")
		if err != nil {
			s.t.Fatalf("dump %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		fmt.Fprintf(&b, "== %s %v\n", table, cols)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				s.t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%q ", fmt.Sprint(v))
			}
			b.WriteByte('\n')
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			s.t.Fatal(err)
		}
	}
	return b.String()
}

// count returns the number of rows in a table.
func (s *testServer) count(table string) int {
	s.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+s.dbPath+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// enc url-encodes Lua source the way the catalog API carries scripts.
func enc(src string) string { return url.QueryEscape(src) }

// provider returns a provider body as the seed shows it.
func providerBody(name string) map[string]any {
	return map[string]any{
		"name":          name,
		"id":            name,
		"walletAddress": "ATxxxxxxxxxxxxxxxxxxaaddfsawrEDAs",
		"apiHost":       "http://localhost:3001",
	}
}

// categoryBody returns a category body as the seed shows it.
func categoryBody(provider, name string) map[string]any {
	return map[string]any{
		"provider": provider,
		"name":     name,
		"serviceOptions": map[string]any{
			"custom-options-1": []string{"value-1", "value-2", "value-3"},
			"custom-options-2": []string{"value-1", "value-2"},
		},
		"description": "Deploy docker images to k8s cluster",
		"apiHost":     "",
	}
}

// typeBody returns a service type body as the seed shows it, with one
// price set per given price (charging option custom-options-1 =
// value-1, value-2, ...), spelled with the seed's "charingOptions" typo.
func typeBody(provider, category, name string, prices ...string) map[string]any {
	if len(prices) == 0 {
		prices = []string{"100"}
	}
	sets := make([]any, len(prices))
	for i, p := range prices {
		sets[i] = map[string]any{
			"price":          json.Number(p),
			"charingOptions": map[string]string{"custom-options-1": fmt.Sprintf("value-%d", i+1)},
			"duration":       map[string]any{"1": 1, "20": json.Number("0.99"), "100": json.Number("0.89")},
		}
	}
	return map[string]any{
		"name":            name,
		"durationToPrice": sets,
		"provider":        provider,
		"refundable":      true,
		"category":        category,
		"serviceOptions": map[string]any{
			"custom-options-1": []string{"value-1", "value-2", "value-3", "value-4", "value-5"},
			"custom-options-2": []string{"value-1", "value-2"},
		},
		"serviceAPI": map[string]any{
			"start":  enc("local input = ...\nreturn { secret = 'x' }\n"),
			"stop":   enc("return {}"),
			"refund": enc("return { amount = 0 }"),
			"normal": map[string]string{"api-name": "/api/v1/some/function"},
			"secret": map[string]string{"api-name": "/api/v1/some/secret/func"},
		},
		"description": "go-charger",
		"apiHost":     "11.22.88.4",
	}
}

// mustCreate posts body to path as admin and returns the created object.
func (s *testServer) mustCreate(path string, body any) map[string]any {
	s.t.Helper()
	a := s.do(http.MethodPost, path, s.admin, body)
	if a.status != http.StatusCreated {
		s.t.Fatalf("POST %s: status %d: %s", path, a.status, a.body)
	}
	return a.obj(s.t)
}

// seedTree creates provider → category → types over the API and returns
// the category id and the type ids in creation order.
func (s *testServer) seedTree(provider, category string, types map[string][]string, order ...string) (string, []string) {
	s.t.Helper()
	s.mustCreate("/api/v1/service/provider", providerBody(provider))
	cat := s.mustCreate("/api/v1/service/category", categoryBody(provider, category))
	catID := cat["categoryID"].(string)
	var ids []string
	for _, name := range order {
		st := s.mustCreate("/api/v1/service/type", typeBody(provider, category, name, types[name]...))
		ids = append(ids, st["id"].(string))
	}
	return catID, ids
}
