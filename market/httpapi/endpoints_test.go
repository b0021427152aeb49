package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// wantKeys checks that m has exactly the given keys.
func wantKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	got := keys(m)
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s keys %v, want %v", what, got, want)
	}
}

func wantUUID(t *testing.T, what string, v any) string {
	t.Helper()
	s, _ := v.(string)
	if _, err := uuid.Parse(s); err != nil {
		t.Errorf("%s %v is not a UUID", what, v)
	}
	return s
}

// listOf checks the list answer shape and returns its items and pagination.
func listOf(t *testing.T, a answer) ([]map[string]any, map[string]any) {
	t.Helper()
	wantStatus(t, a, http.StatusOK)
	var v struct {
		List       []map[string]any `json:"list"`
		Pagination map[string]any   `json:"pagination"`
	}
	a.into(t, &v)
	wantKeys(t, "list answer", a.obj(t), "list", "pagination")
	wantKeys(t, "pagination", v.Pagination, "total", "current", "pageSize")
	if v.List == nil {
		t.Errorf("list is null, want []: %s", a.body)
	}
	return v.List, v.Pagination
}

func wantPagination(t *testing.T, p map[string]any, total, current, pageSize int) {
	t.Helper()
	want := map[string]any{"total": float64(total), "current": float64(current), "pageSize": float64(pageSize)}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("pagination %v, want %v", p, want)
	}
}

// The keys of each object of the seed, field for field.
const (
	providerKeys = "name walletAddress signAddress id apiHost category2ID"
	categoryKeys = "categoryID provider name serviceOptions description name2ID apiHost"
	typeKeys     = "id name durationToPrice provider refundable categoryID category serviceOptions serviceAPI description apiHost"
	priceKeys    = "price chargingOptions duration"
	apiKeys      = "start stop refund normal secret"
)

func TestProviderEndpoints(t *testing.T) {
	s := newTestServer(t)
	a := s.do(http.MethodPost, "/api/v1/service/provider", s.admin, `{
		"name": "provider-name",
		"id": "provider-name",
		"walletAddress": "ATxxxxxxxxxxxxxxxxxxaaddfsawrEDAs",
		"apiHost": "some-ip-domain-host",
		"category2ID": {"category-name-1": "category-id-1"}
	}`)
	wantStatus(t, a, http.StatusCreated)
	created := a.obj(t)
	wantKeys(t, "created provider", created, strings.Fields(providerKeys)...)
	want := map[string]any{
		"name":          "provider-name",
		"id":            "provider-name",
		"walletAddress": "ATxxxxxxxxxxxxxxxxxxaaddfsawrEDAs",
		"signAddress":   "",
		"apiHost":       "some-ip-domain-host",
		// category2ID is the server's to keep: what the client sent is ignored.
		"category2ID": map[string]any{},
	}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created provider\n got %v\nwant %v", created, want)
	}

	got := s.do(http.MethodGet, "/api/v1/service/provider/provider-name", "", nil)
	wantStatus(t, got, http.StatusOK)
	if !reflect.DeepEqual(got.obj(t), want) {
		t.Errorf("GET provider\n got %s\nwant %v", got.body, want)
	}

	list, p := listOf(t, s.do(http.MethodGet, "/api/v1/service/provider", "", nil))
	wantPagination(t, p, 1, 1, 10)
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("provider list %v, want [%v]", list, want)
	}

	// category2ID follows the categories as they are added.
	c1 := s.mustCreate("/api/v1/service/category", categoryBody("provider-name", "Container-Service"))
	c2 := s.mustCreate("/api/v1/service/category", categoryBody("provider-name", "Container-Service-Working"))
	want["category2ID"] = map[string]any{
		"Container-Service":         c1["categoryID"],
		"Container-Service-Working": c2["categoryID"],
	}
	got = s.do(http.MethodGet, "/api/v1/service/provider/provider-name", "", nil)
	if !reflect.DeepEqual(got.obj(t), want) {
		t.Errorf("GET provider after adding categories\n got %s\nwant %v", got.body, want)
	}
	list, _ = listOf(t, s.do(http.MethodGet, "/api/v1/service/provider", "", nil))
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("provider list after adding categories %v, want [%v]", list, want)
	}

	// Unique names: 409.
	wantError(t, s.do(http.MethodPost, "/api/v1/service/provider", s.admin, providerBody("provider-name")), http.StatusConflict, "CONFLICT", "name")
	// Unknown id: 404.
	wantError(t, s.do(http.MethodGet, "/api/v1/service/provider/nobody", "", nil), http.StatusNotFound, "NOT_FOUND", "")
	// id must equal name.
	b := providerBody("p2")
	b["id"] = "other"
	wantError(t, s.do(http.MethodPost, "/api/v1/service/provider", s.admin, b), http.StatusBadRequest, "VALIDATION_ERROR", "id")
	// id may be left out.
	b = providerBody("p3")
	delete(b, "id")
	if got := s.mustCreate("/api/v1/service/provider", b); got["id"] != "p3" {
		t.Errorf("provider without id got id %v, want p3", got["id"])
	}
}

func TestCategoryEndpoints(t *testing.T) {
	s := newTestServer(t)
	s.mustCreate("/api/v1/service/provider", providerBody("provider-name"))
	// The seed's create body: serviceOptions with a string value, name2ID
	// (ignored: the server keeps it), apiHost.
	a := s.do(http.MethodPost, "/api/v1/service/category", s.admin, `{
		"provider": "provider-name",
		"name": "category-name",
		"serviceOptions": {"custom-field-1": "custom-value-1"},
		"description": "some-description",
		"name2ID": {"service-type-name-1": "service-type-id-1"},
		"apiHost": "service-type-backup-api-host"
	}`)
	wantStatus(t, a, http.StatusCreated)
	created := a.obj(t)
	wantKeys(t, "created category", created, strings.Fields(categoryKeys)...)
	id := wantUUID(t, "categoryID", created["categoryID"])
	want := map[string]any{
		"categoryID":     id,
		"provider":       "provider-name",
		"name":           "category-name",
		"serviceOptions": map[string]any{"custom-field-1": []any{"custom-value-1"}},
		"description":    "some-description",
		"name2ID":        map[string]any{},
		"apiHost":        "service-type-backup-api-host",
	}
	if !reflect.DeepEqual(created, want) {
		t.Errorf("created category\n got %v\nwant %v", created, want)
	}
	got := s.do(http.MethodGet, "/api/v1/service/category/"+id, "", nil)
	wantStatus(t, got, http.StatusOK)
	if !reflect.DeepEqual(got.obj(t), want) {
		t.Errorf("GET category\n got %s\nwant %v", got.body, want)
	}

	// name2ID follows the types as they are added, whichever create path
	// they come by.
	t1 := s.mustCreate("/api/v1/service/type", typeBody("provider-name", "category-name", "Container Service"))
	t2 := s.mustCreate("/api/v1/service/category", typeBody("provider-name", "category-name", "Other Service"))
	want["name2ID"] = map[string]any{"Container Service": t1["id"], "Other Service": t2["id"]}
	got = s.do(http.MethodGet, "/api/v1/service/category/"+id, "", nil)
	if !reflect.DeepEqual(got.obj(t), want) {
		t.Errorf("GET category after adding types\n got %s\nwant %v", got.body, want)
	}
	list, p := listOf(t, s.do(http.MethodGet, "/api/v1/service/category", "", nil))
	wantPagination(t, p, 1, 1, 10)
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("category list %v, want [%v]", list, want)
	}

	// Names are unique under a provider, not across providers.
	wantError(t, s.do(http.MethodPost, "/api/v1/service/category", s.admin, categoryBody("provider-name", "category-name")), http.StatusConflict, "CONFLICT", "name")
	s.mustCreate("/api/v1/service/provider", providerBody("other-provider"))
	s.mustCreate("/api/v1/service/category", categoryBody("other-provider", "category-name"))

	wantError(t, s.do(http.MethodGet, "/api/v1/service/category/"+uuid.NewString(), "", nil), http.StatusNotFound, "NOT_FOUND", "")
	wantError(t, s.do(http.MethodPost, "/api/v1/service/category", s.admin, categoryBody("no-such-provider", "x")), http.StatusBadRequest, "VALIDATION_ERROR", "provider")
}

func TestServiceTypeEndpoints(t *testing.T) {
	s := newTestServer(t)
	s.mustCreate("/api/v1/service/provider", providerBody("provider-name"))
	cat := s.mustCreate("/api/v1/service/category", categoryBody("provider-name", "Container-Service"))
	catID := cat["categoryID"].(string)

	start := enc("local input = ...\n-- start it\nreturn { secret = \"token\" }\n")
	// The seed's create body, with categoryID and category both given.
	body := `{
		"name": "Container Service",
		"durationToPrice": [
			{"price": 100, "charingOptions": {"custom-options-1": "value-1"}, "duration": {"100": 0.9, "200": 0.85}},
			{"price": 200, "chargingOptions": {"custom-options-1": "value-2"}, "duration": {"100": 0.9, "200": 0.85}},
			{"price": 500, "chargingOptions": {"custom-options-1": "value-3"}, "duration": {"100": 0.9, "200": 0.85}}
		],
		"provider": "provider-name",
		"refundable": true,
		"categoryID": "` + catID + `",
		"category": "Container-Service",
		"serviceOptions": {
			"custom-options-1": ["value-1", "value-2", "value-3"],
			"custom-options-2": ["value-1", "value-2"]
		},
		"serviceAPI": {
			"start": "` + start + `",
			"stop": "",
			"refund": "",
			"normal": {"api-name": "/api/v1/some/function"},
			"secret": {"api-name": "/api/v1/some/secret/func"}
		},
		"description": "Documentation for user to use this service: http:xxxxxxx",
		"apiHost": ""
	}`
	a := s.do(http.MethodPost, "/api/v1/service/type", s.admin, body)
	wantStatus(t, a, http.StatusCreated)
	created := a.obj(t)
	wantKeys(t, "created type", created, strings.Fields(typeKeys)...)
	id := wantUUID(t, "id", created["id"])
	price := func(p float64, opt string) map[string]any {
		return map[string]any{
			"price":           p,
			"chargingOptions": map[string]any{"custom-options-1": opt},
			"duration":        map[string]any{"100": 0.9, "200": 0.85},
		}
	}
	want := map[string]any{
		"id":              id,
		"name":            "Container Service",
		"durationToPrice": []any{price(100, "value-1"), price(200, "value-2"), price(500, "value-3")},
		"provider":        "provider-name",
		"refundable":      true,
		"categoryID":      catID,
		"category":        "Container-Service",
		"serviceOptions": map[string]any{
			"custom-options-1": []any{"value-1", "value-2", "value-3"},
			"custom-options-2": []any{"value-1", "value-2"},
		},
		"serviceAPI": map[string]any{
			"start":  "",
			"stop":   "",
			"refund": "",
			"normal": map[string]any{"api-name": "/api/v1/some/function"},
			"secret": map[string]any{"api-name": "/api/v1/some/secret/func"},
		},
		"description": "Documentation for user to use this service: http:xxxxxxx",
		"apiHost":     "",
	}
	// The public catalog never shows script bodies.
	for _, path := range []string{"/api/v1/service/type/" + id} {
		got := s.do(http.MethodGet, path, "", nil)
		wantStatus(t, got, http.StatusOK)
		m := got.obj(t)
		if !reflect.DeepEqual(m, want) {
			t.Errorf("GET %s\n got %s\nwant %v", path, got.body, want)
		}
		wantKeys(t, "price set", m["durationToPrice"].([]any)[0].(map[string]any), strings.Fields(priceKeys)...)
		wantKeys(t, "serviceAPI", m["serviceAPI"].(map[string]any), strings.Fields(apiKeys)...)
	}
	list, p := listOf(t, s.do(http.MethodGet, "/api/v1/service/type", "", nil))
	wantPagination(t, p, 1, 1, 10)
	if len(list) != 1 || !reflect.DeepEqual(list[0], want) {
		t.Errorf("type list %v, want [%v]", list, want)
	}
	// Operators read the scripts back exactly as sent, in the create
	// answer, the item and the list.
	withScripts := func(m map[string]any) {
		t.Helper()
		api := m["serviceAPI"].(map[string]any)
		if api["start"] != start || api["stop"] != "" || api["refund"] != "" {
			t.Errorf("operator reads serviceAPI %v, want start %q", api, start)
		}
	}
	withScripts(created)
	for _, tok := range []string{s.admin, s.support} {
		withScripts(s.do(http.MethodGet, "/api/v1/service/type/"+id, tok, nil).obj(t))
		l, _ := listOf(t, s.do(http.MethodGet, "/api/v1/service/type", tok, nil))
		withScripts(l[0])
	}
	// ... and a later anonymous read still shows nothing.
	l, _ := listOf(t, s.do(http.MethodGet, "/api/v1/service/type", "", nil))
	if api := l[0]["serviceAPI"].(map[string]any); api["start"] != "" {
		t.Errorf("anonymous list after an operator read shows start %q", api["start"])
	}

	// Duplicate names in a category: 409, by either create path.
	wantError(t, s.do(http.MethodPost, "/api/v1/service/type", s.admin, body), http.StatusConflict, "CONFLICT", "name")
	wantError(t, s.do(http.MethodPost, "/api/v1/service/category", s.admin, body), http.StatusConflict, "CONFLICT", "name")
	wantError(t, s.do(http.MethodGet, "/api/v1/service/type/"+uuid.NewString(), "", nil), http.StatusNotFound, "NOT_FOUND", "")
}

// TestCreateTypeByCategory checks the seed's first typo: type creation
// documented under POST /service/category, with either identification of
// the category, and both price-set spellings.
func TestCreateTypeByCategory(t *testing.T) {
	s := newTestServer(t)
	s.mustCreate("/api/v1/service/provider", providerBody("p"))
	cat := s.mustCreate("/api/v1/service/category", categoryBody("p", "c"))
	catID := cat["categoryID"].(string)
	tests := []struct {
		name   string
		path   string
		adjust func(map[string]any)
	}{
		{"type path, category name", "/api/v1/service/type", func(m map[string]any) {}},
		{"category path, category name", "/api/v1/service/category", func(m map[string]any) {}},
		{"category path, categoryID only", "/api/v1/service/category", func(m map[string]any) {
			delete(m, "category")
			m["categoryID"] = catID
		}},
		{"category path, both", "/api/v1/service/category", func(m map[string]any) { m["categoryID"] = catID }},
		{"category path, only durationToPrice marks a type", "/api/v1/service/category", func(m map[string]any) {
			delete(m, "serviceAPI")
			delete(m, "refundable")
		}},
		{"correct spelling chargingOptions", "/api/v1/service/category", func(m map[string]any) {
			for _, ps := range m["durationToPrice"].([]any) {
				ps := ps.(map[string]any)
				ps["chargingOptions"] = ps["charingOptions"]
				delete(ps, "charingOptions")
			}
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "type-" + string(rune('a'+i))
			b := typeBody("p", "c", name, "100", "7.5")
			tc.adjust(b)
			a := s.do(http.MethodPost, tc.path, s.admin, b)
			wantStatus(t, a, http.StatusCreated)
			m := a.obj(t)
			wantKeys(t, "created type", m, strings.Fields(typeKeys)...)
			if m["categoryID"] != catID || m["category"] != "c" || m["name"] != name {
				t.Errorf("created %s", a.body)
			}
			sets := m["durationToPrice"].([]any)
			for j, opt := range []string{"value-1", "value-2"} {
				ps := sets[j].(map[string]any)
				if _, typo := ps["charingOptions"]; typo {
					t.Errorf("answer spells charingOptions: %s", a.body)
				}
				if got := ps["chargingOptions"]; !reflect.DeepEqual(got, map[string]any{"custom-options-1": opt}) {
					t.Errorf("price set %d chargingOptions %v", j, got)
				}
			}
		})
	}
	// A category's own create body is not mistaken for a type.
	a := s.do(http.MethodPost, "/api/v1/service/category", s.admin, categoryBody("p", "c2"))
	wantStatus(t, a, http.StatusCreated)
	wantKeys(t, "created category", a.obj(t), strings.Fields(categoryKeys)...)
	// category and categoryID must agree.
	b := typeBody("p", "c2", "mismatch")
	b["categoryID"] = catID
	wantError(t, s.do(http.MethodPost, "/api/v1/service/category", s.admin, b), http.StatusBadRequest, "VALIDATION_ERROR", "category")
}

// TestPricesExact checks that prices are stored exactly and shown as the
// seed shows numbers.
func TestPricesExact(t *testing.T) {
	s := newTestServer(t)
	s.mustCreate("/api/v1/service/provider", providerBody("p"))
	s.mustCreate("/api/v1/service/category", categoryBody("p", "c"))
	tests := []struct {
		name   string
		prices []string
		want   string // the durationToPrice prices as JSON text, in order
		status int
	}{
		{"whole", []string{"100"}, `100`, http.StatusCreated},
		{"seed amount", []string{"9.5"}, `9.5`, http.StatusCreated},
		{"trailing zeros dropped", []string{"9.50000000"}, `9.5`, http.StatusCreated},
		{"tenths sum", []string{"0.1", "0.2", "0.3"}, `0.1,0.2,0.3`, http.StatusCreated},
		{"8 decimals", []string{"0.00000001"}, `0.00000001`, http.StatusCreated},
		{"max", []string{"92233720368.54775807"}, `92233720368.54775807`, http.StatusCreated},
		{"exponent", []string{"1.5e2"}, `150`, http.StatusCreated},
		{"zero", []string{"0"}, `0`, http.StatusCreated},
		{"9 decimals", []string{"0.000000001"}, ``, http.StatusBadRequest},
		{"too large", []string{"92233720368.54775808"}, ``, http.StatusBadRequest},
		{"huge exponent", []string{"1e999999999"}, ``, http.StatusBadRequest},
		{"negative", []string{"-1"}, ``, http.StatusBadRequest},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			a := s.do(http.MethodPost, "/api/v1/service/type", s.admin, typeBody("p", "c", "t"+string(rune('a'+i)), tc.prices...))
			wantStatus(t, a, tc.status)
			if tc.status != http.StatusCreated {
				wantError(t, a, tc.status, "VALIDATION_ERROR", "")
				if s.snapshot() != before {
					t.Errorf("a rejected type changed the database")
				}
				return
			}
			var v struct {
				DurationToPrice []struct {
					Price    json.RawMessage            `json:"price"`
					Duration map[string]json.RawMessage `json:"duration"`
				} `json:"durationToPrice"`
			}
			// The raw text of the item answer, not a float decoding.
			s.do(http.MethodGet, "/api/v1/service/type/"+a.obj(t)["id"].(string), "", nil).into(t, &v)
			var got []string
			for _, ps := range v.DurationToPrice {
				got = append(got, string(ps.Price))
				if d := string(ps.Duration["20"]); d != "0.99" {
					t.Errorf("duration 20 shown as %s, want 0.99", d)
				}
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("prices shown as %v, want %s", got, tc.want)
			}
		})
	}
	// The seed's numbers, raw: price 100 and duration {"1":1,"20":0.99,"100":0.89}.
	a := s.do(http.MethodGet, "/api/v1/service/type?name=ta", "", nil)
	if !strings.Contains(string(a.body), `"price":100,`) || !strings.Contains(string(a.body), `"duration":{"1":1,"20":0.99,"100":0.89}`) {
		t.Errorf("numbers not shown as in the seed: %s", a.body)
	}
}

// TestIDsNeedingEscapes reads providers whose names (their ids) need
// escaping in a path, escaped the default way and in other ways clients
// do.
func TestIDsNeedingEscapes(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name  string
		paths []string
	}{
		{"my provider", []string{"my%20provider"}},
		{"a/b", []string{"a%2Fb", "a%2fb"}},
		{"100%", []string{"100%25"}},
		{"a?b#c", []string{"a%3Fb%23c"}},
		{"ünï", []string{"%C3%BCn%C3%AF", "ünï"}},
		{"a+b", []string{"a+b", "a%2Bb"}},
		{"plain", []string{"plain", "%70lain"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.mustCreate("/api/v1/service/provider", providerBody(tc.name))
			for _, p := range tc.paths {
				a := s.do(http.MethodGet, "/api/v1/service/provider/"+p, "", nil)
				if a.status != http.StatusOK || a.obj(t)["id"] != tc.name {
					t.Errorf("GET /provider/%s: %d %s", p, a.status, a.body)
				}
			}
		})
	}
	// Category and type ids are UUIDs, but an escaped one still reads.
	catID, ids := s.seedTree("p", "c", map[string][]string{"t": {"1"}}, "t")
	esc := func(id string) string { return "%" + strings.ToUpper(fmt.Sprintf("%x", id[0])) + id[1:] }
	wantStatus(t, s.do(http.MethodGet, "/api/v1/service/category/"+esc(catID), "", nil), http.StatusOK)
	wantStatus(t, s.do(http.MethodGet, "/api/v1/service/type/"+esc(ids[0]), "", nil), http.StatusOK)
}
