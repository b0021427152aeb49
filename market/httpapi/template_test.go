package httpapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/templates"
)

// treeTemplate is a wire-form template of provider with the given
// categories, each holding the named types.
func treeTemplate(provider string, cats map[string][]string, order ...string) map[string]any {
	tpl := smallTemplate(provider)
	var list []any
	for _, cn := range order {
		cat := categoryBody(provider, cn)
		delete(cat, "provider")
		var types []any
		for _, tn := range cats[cn] {
			st := typeBody(provider, cn, tn)
			delete(st, "provider")
			delete(st, "category")
			types = append(types, st)
		}
		cat["serviceTypes"] = types
		list = append(list, cat)
	}
	tpl["categories"] = list
	return tpl
}

// templateResult is the answer to a template upload.
type templateResult struct {
	Provider     map[string]any   `json:"provider"`
	Categories   []map[string]any `json:"categories"`
	ServiceTypes []map[string]any `json:"serviceTypes"`
	Created      int              `json:"created"`
	Updated      int              `json:"updated"`
}

func TestTemplateUpload(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			s := newTestServer(t)
			tpl := treeTemplate("prov", map[string][]string{"c1": {"t1", "t2"}, "c2": {"t3"}}, "c1", "c2")
			a := s.do(method, "/api/v1/template/add", s.admin, tpl)
			wantStatus(t, a, http.StatusOK)
			wantKeys(t, "template answer", a.obj(t), "provider", "categories", "serviceTypes", "created", "updated")
			var res templateResult
			a.into(t, &res)
			if res.Created != 6 || res.Updated != 0 {
				t.Errorf("created %d updated %d, want 6 and 0", res.Created, res.Updated)
			}
			wantKeys(t, "template provider", res.Provider, strings.Fields(providerKeys)...)
			if len(res.Categories) != 2 || len(res.ServiceTypes) != 3 {
				t.Fatalf("answer has %d categories and %d types: %s", len(res.Categories), len(res.ServiceTypes), a.body)
			}
			for _, st := range res.ServiceTypes {
				wantKeys(t, "template type", st, strings.Fields(typeKeys)...)
				if api := st["serviceAPI"].(map[string]any); api["start"] != "" {
					t.Errorf("template answer shows script bodies: %v", api)
				}
			}
			// The tree reads back through the catalog with its maps filled.
			p := s.do(http.MethodGet, "/api/v1/service/provider/prov", "", nil).obj(t)
			c2id := map[string]any{}
			for _, c := range res.Categories {
				c2id[c["name"].(string)] = c["categoryID"]
			}
			if !reflect.DeepEqual(p["category2ID"], c2id) {
				t.Errorf("category2ID %v, want %v", p["category2ID"], c2id)
			}
			cat := s.do(http.MethodGet, "/api/v1/service/category/"+c2id["c1"].(string), "", nil).obj(t)
			n2id := map[string]any{}
			for _, st := range res.ServiceTypes {
				if st["category"] == "c1" {
					n2id[st["name"].(string)] = st["id"]
				}
			}
			if !reflect.DeepEqual(cat["name2ID"], n2id) || len(n2id) != 2 {
				t.Errorf("name2ID %v, want %v", cat["name2ID"], n2id)
			}
			items, pg := listOf(t, s.do(http.MethodGet, "/api/v1/service/type?provider=prov", s.admin, nil))
			wantPagination(t, pg, 3, 1, 10)
			for _, it := range items {
				if api := it["serviceAPI"].(map[string]any); api["start"] != tpl["categories"].([]any)[0].(map[string]any)["serviceTypes"].([]any)[0].(map[string]any)["serviceAPI"].(map[string]any)["start"] {
					t.Errorf("operator reads start %q, not as uploaded", api["start"])
				}
			}
		})
	}
}

// TestTemplateAllOrNothing uploads templates that fail on their last
// service type: nothing of them may be written, neither for a new provider
// nor for an existing one.
func TestTemplateAllOrNothing(t *testing.T) {
	s := newTestServer(t)
	good := treeTemplate("existing", map[string][]string{"c1": {"t1"}}, "c1")
	wantStatus(t, s.do(http.MethodPost, "/api/v1/template/add", s.admin, good), http.StatusOK)

	lastType := func(tpl map[string]any) map[string]any {
		cats := tpl["categories"].([]any)
		types := cats[len(cats)-1].(map[string]any)["serviceTypes"].([]any)
		return types[len(types)-1].(map[string]any)
	}
	tests := []struct {
		name   string
		tpl    func() map[string]any
		field  string
		line   int
		status int
	}{
		{"new provider, broken last script", func() map[string]any {
			tpl := treeTemplate("fresh", map[string][]string{"a": {"t1", "t2"}, "b": {"t3", "t4"}}, "a", "b")
			lastType(tpl)["serviceAPI"].(map[string]any)["stop"] = enc("return {}\n\nlocal = 5\n")
			return tpl
		}, "categories[1].serviceTypes[1].serviceAPI.stop", 3, http.StatusBadRequest},
		{"existing provider changed, broken last script", func() map[string]any {
			tpl := treeTemplate("existing", map[string][]string{"c1": {"t1", "t-new"}, "c-new": {"t5", "t6"}}, "c1", "c-new")
			tpl["provider"].(map[string]any)["apiHost"] = "http://changed.example"
			lastType(tpl)["serviceAPI"].(map[string]any)["refund"] = enc("return (")
			return tpl
		}, "categories[1].serviceTypes[1].serviceAPI.refund", 1, http.StatusBadRequest},
		{"bad price in last type", func() map[string]any {
			tpl := treeTemplate("fresh", map[string][]string{"a": {"t1", "t2"}}, "a")
			lastType(tpl)["durationToPrice"].([]any)[0].(map[string]any)["price"] = -5
			return tpl
		}, "categories[0].serviceTypes[1].durationToPrice[0].price", 0, http.StatusBadRequest},
		{"duplicate type names", func() map[string]any {
			return treeTemplate("fresh", map[string][]string{"a": {"t1", "t1"}}, "a")
		}, "categories[0].serviceTypes[1].name", 0, http.StatusBadRequest},
		{"duplicate category names", func() map[string]any {
			return treeTemplate("fresh", map[string][]string{"a": {"t1"}}, "a", "a")
		}, "categories[1].name", 0, http.StatusBadRequest},
		{"bad provider", func() map[string]any {
			tpl := treeTemplate("fresh", map[string][]string{"a": {"t1"}}, "a")
			delete(tpl["provider"].(map[string]any), "walletAddress")
			return tpl
		}, "provider.walletAddress", 0, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			m := wantError(t, s.do(http.MethodPost, "/api/v1/template/add", s.admin, tc.tpl()), tc.status, "VALIDATION_ERROR", tc.field)
			if tc.line > 0 {
				if d := m["details"].(map[string]any); d["line"] != float64(tc.line) {
					t.Errorf("details.line %v, want %d", d["line"], tc.line)
				}
			}
			if s.snapshot() != before {
				t.Errorf("a refused template changed the database")
			}
		})
	}
	wantError(t, s.do(http.MethodGet, "/api/v1/service/provider/fresh", "", nil), http.StatusNotFound, "NOT_FOUND", "")
	if p := s.do(http.MethodGet, "/api/v1/service/provider/existing", "", nil).obj(t); p["apiHost"] != "http://localhost:3001" {
		t.Errorf("existing provider changed: %v", p)
	}
}

// TestTemplateReupload uploads a template, changes it and uploads it
// again: the tree is updated in place, keeping every id.
func TestTemplateReupload(t *testing.T) {
	s := newTestServer(t)
	tpl := treeTemplate("prov", map[string][]string{"c1": {"t1", "t2"}}, "c1")
	var first templateResult
	s.do(http.MethodPost, "/api/v1/template/add", s.admin, tpl).into(t, &first)
	// A category and a type added by the API stay untouched by later
	// uploads that do not name them.
	apiCat := s.mustCreate("/api/v1/service/category", categoryBody("prov", "by-api"))
	apiType := s.mustCreate("/api/v1/service/type", typeBody("prov", "c1", "by-api"))

	// The same template again changes nothing but timestamps.
	var again templateResult
	s.do(http.MethodPost, "/api/v1/template/add", s.admin, tpl).into(t, &again)
	if again.Created != 0 || again.Updated != 4 {
		t.Errorf("same template again: created %d updated %d, want 0 and 4", again.Created, again.Updated)
	}
	if !reflect.DeepEqual(ids(first), ids(again)) {
		t.Errorf("ids changed: %v → %v", ids(first), ids(again))
	}
	if n := s.count("service_types"); n != 3 {
		t.Errorf("%d types after re-upload, want 3", n)
	}

	// A changed template: new price and description, one more type and
	// category.
	tpl2 := treeTemplate("prov", map[string][]string{"c1": {"t1", "t2", "t9"}, "c2": {"t1"}}, "c1", "c2")
	st := tpl2["categories"].([]any)[0].(map[string]any)["serviceTypes"].([]any)[0].(map[string]any)
	st["description"] = "changed"
	st["durationToPrice"].([]any)[0].(map[string]any)["price"] = json.Number("42.5")
	st["serviceAPI"].(map[string]any)["start"] = enc("return { changed = true }")
	var second templateResult
	s.do(http.MethodGet, "/api/v1/template/add", s.admin, tpl2).into(t, &second)
	if second.Created != 3 || second.Updated != 4 {
		t.Errorf("changed template: created %d updated %d, want 3 and 4", second.Created, second.Updated)
	}
	for k, id := range ids(first) {
		if ids(second)[k] != id {
			t.Errorf("%s: id %v became %v", k, id, ids(second)[k])
		}
	}
	got := s.do(http.MethodGet, "/api/v1/service/type/"+ids(first)["c1/t1"].(string), s.admin, nil).obj(t)
	if got["description"] != "changed" || got["durationToPrice"].([]any)[0].(map[string]any)["price"] != 42.5 ||
		got["serviceAPI"].(map[string]any)["start"] != enc("return { changed = true }") {
		t.Errorf("type not updated in place: %v", got)
	}
	if n := s.count("service_types"); n != 5 {
		t.Errorf("%d types, want 5", n)
	}
	if n := s.count("categories"); n != 3 {
		t.Errorf("%d categories, want 3", n)
	}
	if n := s.count("providers"); n != 1 {
		t.Errorf("%d providers, want 1", n)
	}
	// The API-made objects are still there under the same ids.
	wantStatus(t, s.do(http.MethodGet, "/api/v1/service/category/"+apiCat["categoryID"].(string), "", nil), http.StatusOK)
	wantStatus(t, s.do(http.MethodGet, "/api/v1/service/type/"+apiType["id"].(string), "", nil), http.StatusOK)
	c1 := s.do(http.MethodGet, "/api/v1/service/category/"+ids(first)["c1"].(string), "", nil).obj(t)
	if n2id := c1["name2ID"].(map[string]any); len(n2id) != 4 || n2id["by-api"] != apiType["id"] {
		t.Errorf("c1 name2ID %v, want t1, t2, t9 and by-api", n2id)
	}
}

// ids maps "category" and "category/type" to the ids in a template answer.
func ids(r templateResult) map[string]any {
	out := map[string]any{"provider": r.Provider["id"]}
	for _, c := range r.Categories {
		out[c["name"].(string)] = c["categoryID"]
	}
	for _, st := range r.ServiceTypes {
		out[st["category"].(string)+"/"+st["name"].(string)] = st["id"]
	}
	return out
}

// TestBundledTemplateUpload uploads the bundled container-service
// template as `vmarket template push` would.
func TestBundledTemplateUpload(t *testing.T) {
	s := newTestServer(t)
	bundles, err := templates.Bundled()
	if err != nil {
		t.Fatal(err)
	}
	if len(bundles) == 0 {
		t.Fatal("no bundled templates")
	}
	for _, b := range bundles {
		templates.Expand(b.Template, s.url)
		body, err := json.Marshal(b.Template)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, s.do(http.MethodPost, "/api/v1/template/add", s.admin, body), http.StatusOK)
	}
	items, _ := listOf(t, s.do(http.MethodGet, "/api/v1/service/type?provider=v-kube-service&category=Container-Service", "", nil))
	if len(items) != 1 || items[0]["name"] != "Container Service" || len(items[0]["durationToPrice"].([]any)) != 3 {
		t.Fatalf("bundled catalog: %v", items)
	}
	// The scripts come from the .lua files next to the template, stored
	// url-encoded.
	full := s.do(http.MethodGet, "/api/v1/service/type/"+items[0]["id"].(string), s.admin, nil).obj(t)
	start, _ := full["serviceAPI"].(map[string]any)["start"].(string)
	if start == "" || strings.Contains(start, " ") || !strings.Contains(start, "idempotencyKey") {
		t.Errorf("bundled start script not stored url-encoded: %.80q", start)
	}
}

func TestTemplateBadBodies(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"no body", "", http.StatusBadRequest, "VALIDATION_ERROR"},
		{"malformed", `{"provider": `, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"not an object", `[1, 2]`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"trailing data", `{"provider": {}} {"x": 1}`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"trailing garbage", `{} x`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"stray closing brace", `{"provider": {}}}`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"unknown field", `{"provider": {"name": "p"}, "extra": 1}`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"categories as object", `{"provider": {"name": "p"}, "categories": {}}`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"null", `null`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"empty object", `{}`, http.StatusBadRequest, "VALIDATION_ERROR"},
		{"price as list", `{"provider": {"name": "p", "walletAddress": "w", "apiHost": "h"}, "categories": [{"name": "c", "serviceTypes": [{"name": "t", "durationToPrice": [{"price": [1]}]}]}]}`, http.StatusBadRequest, "VALIDATION_ERROR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshot()
			a := s.do(http.MethodPost, "/api/v1/template/add", s.admin, []byte(tc.body))
			m := wantError(t, a, tc.status, "VALIDATION_ERROR", "")
			if d := m["details"].(map[string]any); d["field"] == nil || d["field"] == "" {
				t.Errorf("details name no field: %s", a.body)
			}
			if s.snapshot() != before {
				t.Errorf("a refused template changed the database")
			}
		})
	}
}
