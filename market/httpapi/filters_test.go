package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// filterCatalog is a small catalog with names repeated across providers
// and categories, and base prices that meet at the filter bounds.
type filterCatalog struct {
	s     *testServer
	cats  map[string]string // "provider/category" → id
	types map[string]string // "provider/category/type" → id
}

func newFilterCatalog(t *testing.T) *filterCatalog {
	s := newTestServer(t)
	fc := &filterCatalog{s: s, cats: map[string]string{}, types: map[string]string{}}
	for _, p := range []struct{ name, wallet string }{{"p1", "AWallet1"}, {"p2", "AWallet2"}, {"p3", "AWallet1"}} {
		b := providerBody(p.name)
		b["walletAddress"] = p.wallet
		s.mustCreate("/api/v1/service/provider", b)
	}
	for _, c := range []string{"p1/c1", "p1/c2", "p2/c1"} {
		p, name, _ := strings.Cut(c, "/")
		fc.cats[c] = s.mustCreate("/api/v1/service/category", categoryBody(p, name))["categoryID"].(string)
	}
	for _, ty := range []struct {
		key    string
		prices []string
	}{
		{"p1/c1/a", []string{"5", "3"}}, // base 3: the lowest set, not the first
		{"p1/c1/b", []string{"10"}},
		{"p1/c1/shared name", []string{"1"}},
		{"p1/c2/c", []string{"20", "0.5"}},
		{"p1/c2/shared name", []string{"7"}},
		{"p2/c1/d", []string{"3"}},
		{"p2/c1/shared name", []string{"100", "200"}},
	} {
		parts := strings.SplitN(ty.key, "/", 3)
		fc.types[ty.key] = s.mustCreate("/api/v1/service/type", typeBody(parts[0], parts[1], parts[2], ty.prices...))["id"].(string)
	}
	return fc
}

// names returns "provider/category/name" (types), "provider/name"
// (categories) or the name (providers) of each item, in order.
func itemNames(items []map[string]any) []string {
	out := []string{}
	for _, it := range items {
		switch {
		case it["durationToPrice"] != nil:
			out = append(out, fmt.Sprintf("%s/%s/%s", it["provider"], it["category"], it["name"]))
		case it["categoryID"] != nil:
			out = append(out, fmt.Sprintf("%s/%s", it["provider"], it["name"]))
		default:
			out = append(out, it["name"].(string))
		}
	}
	return out
}

func TestListFilters(t *testing.T) {
	fc := newFilterCatalog(t)
	s := fc.s
	ty := func(k string) string { return url.QueryEscape(fc.types[k]) }
	cat := func(k string) string { return url.QueryEscape(fc.cats[k]) }
	tests := []struct {
		path  string
		query string
		want  []string
	}{
		// Providers: id, ids, ids[], name, walletAddress.
		{"provider", "", []string{"p1", "p2", "p3"}},
		{"provider", "id=p2", []string{"p2"}},
		{"provider", "ids[]=p1&ids[]=p3", []string{"p1", "p3"}},
		{"provider", "ids=p1&ids=p3", []string{"p1", "p3"}},
		{"provider", "ids%5B%5D=p3&ids=p2", []string{"p2", "p3"}},
		{"provider", "ids[]=p1&ids[]=nobody", []string{"p1"}},
		{"provider", "ids[]=nobody", []string{}},
		{"provider", "name=p3", []string{"p3"}},
		{"provider", "name=P3", []string{}},
		{"provider", "walletAddress=AWallet1", []string{"p1", "p3"}},
		{"provider", "walletAddress=AWallet1&name=p3", []string{"p3"}},
		{"provider", "walletAddress=AWallet2&ids[]=p1", []string{}},
		{"provider", "unknown=1&ids=", []string{"p1", "p2", "p3"}},

		// Categories: id, ids, ids[], provider, name.
		{"category", "", []string{"p1/c1", "p1/c2", "p2/c1"}},
		{"category", "provider=p1", []string{"p1/c1", "p1/c2"}},
		{"category", "name=c1", []string{"p1/c1", "p2/c1"}},
		{"category", "name=c1&provider=p2", []string{"p2/c1"}},
		{"category", "id=" + cat("p1/c2"), []string{"p1/c2"}},
		{"category", "ids[]=" + cat("p1/c2") + "&ids[]=" + cat("p2/c1"), []string{"p1/c2", "p2/c1"}},
		{"category", "ids=" + cat("p1/c1") + "&ids=" + cat("p2/c1"), []string{"p1/c1", "p2/c1"}},
		{"category", "ids[]=" + cat("p1/c1") + "&ids=" + cat("p2/c1") + "&provider=p2", []string{"p2/c1"}},
		{"category", "provider=p3", []string{}},

		// Service types: id, ids, ids[], provider, category, categoryID,
		// name, minPrice, maxPrice (inclusive, on the base price).
		{"type", "", []string{"p1/c1/a", "p1/c1/b", "p1/c1/shared name", "p1/c2/c", "p1/c2/shared name", "p2/c1/d", "p2/c1/shared name"}},
		{"type", "provider=p2", []string{"p2/c1/d", "p2/c1/shared name"}},
		{"type", "category=c1", []string{"p1/c1/a", "p1/c1/b", "p1/c1/shared name", "p2/c1/d", "p2/c1/shared name"}},
		{"type", "category=c1&provider=p1", []string{"p1/c1/a", "p1/c1/b", "p1/c1/shared name"}},
		{"type", "categoryID=" + cat("p1/c2"), []string{"p1/c2/c", "p1/c2/shared name"}},
		{"type", "categoryID=" + cat("p1/c2") + "&category=c1", []string{}},
		{"type", "name=shared+name", []string{"p1/c1/shared name", "p1/c2/shared name", "p2/c1/shared name"}},
		{"type", "name=shared%20name&provider=p1", []string{"p1/c1/shared name", "p1/c2/shared name"}},
		{"type", "id=" + ty("p1/c2/c"), []string{"p1/c2/c"}},
		{"type", "ids[]=" + ty("p1/c2/c") + "&ids[]=" + ty("p1/c1/a"), []string{"p1/c1/a", "p1/c2/c"}},
		{"type", "ids=" + ty("p2/c1/d") + "&ids=" + ty("p1/c1/b"), []string{"p1/c1/b", "p2/c1/d"}},
		{"type", "ids[]=" + ty("p2/c1/d") + "&ids=" + ty("p1/c1/b") + "&id=" + ty("p1/c1/a"), []string{"p1/c1/a", "p1/c1/b", "p2/c1/d"}},
		{"type", "ids[]=" + uuid.NewString(), []string{}},
		{"type", "minPrice=3", []string{"p1/c1/a", "p1/c1/b", "p1/c2/shared name", "p2/c1/d", "p2/c1/shared name"}},
		{"type", "maxPrice=3", []string{"p1/c1/a", "p1/c1/shared name", "p1/c2/c", "p2/c1/d"}},
		{"type", "minPrice=3&maxPrice=3", []string{"p1/c1/a", "p2/c1/d"}},
		{"type", "minPrice=3.00000001", []string{"p1/c1/b", "p1/c2/shared name", "p2/c1/shared name"}},
		{"type", "maxPrice=2.99999999", []string{"p1/c1/shared name", "p1/c2/c"}},
		{"type", "minPrice=0.5&maxPrice=0.50", []string{"p1/c2/c"}},
		{"type", "minPrice=0.1&maxPrice=0.2", []string{}},
		{"type", "minPrice=100", []string{"p2/c1/shared name"}}, // base 100, not 200
		{"type", "minPrice=101", []string{}},
		{"type", "minPrice=5&maxPrice=1", []string{}},
		{"type", "minPrice=2&maxPrice=8&provider=p1&category=c2", []string{"p1/c2/shared name"}},
		{"type", "minPrice=&maxPrice=", []string{"p1/c1/a", "p1/c1/b", "p1/c1/shared name", "p1/c2/c", "p1/c2/shared name", "p2/c1/d", "p2/c1/shared name"}},
	}
	for _, tc := range tests {
		t.Run(tc.path+"?"+tc.query, func(t *testing.T) {
			for _, tok := range []string{"", s.support} {
				items, p := listOf(t, s.do(http.MethodGet, "/api/v1/service/"+tc.path+"?"+tc.query, tok, nil))
				got := itemNames(items)
				// ids lists keep catalog order, whatever the query order.
				if !reflect.DeepEqual(got, tc.want) {
					t.Errorf("token %t: got %v, want %v", tok != "", got, tc.want)
				}
				wantPagination(t, p, len(tc.want), 1, 10)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	s := newTestServer(t)
	const n = 25
	s.mustCreate("/api/v1/service/provider", providerBody("p00"))
	s.mustCreate("/api/v1/service/category", categoryBody("p00", "c00"))
	for i := 1; i < n; i++ {
		s.mustCreate("/api/v1/service/provider", providerBody(fmt.Sprintf("p%02d", i)))
		s.mustCreate("/api/v1/service/category", categoryBody("p00", fmt.Sprintf("c%02d", i)))
	}
	for i := 0; i < n; i++ {
		s.mustCreate("/api/v1/service/type", typeBody("p00", "c00", fmt.Sprintf("t%02d", i)))
	}
	names := func(prefix string, from, to int) []string {
		out := []string{}
		for i := from; i < to; i++ {
			switch prefix {
			case "p":
				out = append(out, fmt.Sprintf("p%02d", i))
			case "c":
				out = append(out, fmt.Sprintf("p00/c%02d", i))
			case "t":
				out = append(out, fmt.Sprintf("p00/c00/t%02d", i))
			}
		}
		return out
	}
	tests := []struct {
		query             string
		current, pageSize int
		from, to          int
	}{
		{"", 1, 10, 0, 10},
		{"current=1", 1, 10, 0, 10},
		{"current=2", 2, 10, 10, 20},
		{"current=3", 3, 10, 20, 25},
		{"current=4", 4, 10, 0, 0}, // past the end: empty, right total
		{"current=1000000", 1000000, 10, 0, 0},
		{"pageSize=7&current=2", 2, 7, 7, 14},
		{"pageSize=25", 1, 25, 0, 25},
		{"pageSize=100", 1, 100, 0, 25},
		{"pageSize=101", 1, 100, 0, 25},
		{"pageSize=100000", 1, 100, 0, 25},
		{"pageSize=1&current=25", 25, 1, 24, 25},
		{"pageSize=1&current=26", 26, 1, 0, 0},
		{"current=&pageSize=", 1, 10, 0, 10},
		{"current=+2&pageSize=%205", 2, 5, 5, 10},
		{"current=2&current=3", 2, 10, 10, 20}, // first value wins
	}
	for _, path := range []string{"provider", "category", "type"} {
		for _, tc := range tests {
			t.Run(path+"?"+tc.query, func(t *testing.T) {
				items, p := listOf(t, s.do(http.MethodGet, "/api/v1/service/"+path+"?"+tc.query, "", nil))
				wantPagination(t, p, n, tc.current, tc.pageSize)
				want := names(path[:1], tc.from, tc.to)
				if got := itemNames(items); !reflect.DeepEqual(got, want) {
					t.Errorf("got %v, want %v", got, want)
				}
			})
		}
	}
}

func TestBadQueryParameters(t *testing.T) {
	s := newTestServer(t)
	s.seedTree("p", "c", map[string][]string{"t": {"1"}}, "t")
	many := strings.Repeat("ids[]=x&", 201)
	tests := []struct {
		paths []string
		query string
		field string
	}{
		{[]string{"provider", "category", "type"}, "current=0", "current"},
		{[]string{"provider", "category", "type"}, "current=-1", "current"},
		{[]string{"provider", "category", "type"}, "current=abc", "current"},
		{[]string{"provider", "category", "type"}, "current=1.5", "current"},
		{[]string{"provider", "category", "type"}, "current=1e3", "current"},
		{[]string{"provider", "category", "type"}, "current=1000001", "current"},
		{[]string{"provider", "category", "type"}, "current=99999999999999999999", "current"},
		{[]string{"provider", "category", "type"}, "current=%20", "current"},
		{[]string{"provider", "category", "type"}, "pageSize=0", "pageSize"},
		{[]string{"provider", "category", "type"}, "pageSize=-1", "pageSize"},
		{[]string{"provider", "category", "type"}, "pageSize=abc", "pageSize"},
		{[]string{"provider", "category", "type"}, "pageSize=99999999999999999999", "pageSize"},
		{[]string{"provider", "category", "type"}, "pageSize=0x10", "pageSize"},
		{[]string{"provider", "category", "type"}, "current=2&pageSize=0", "pageSize"},
		{[]string{"provider", "category", "type"}, "ids=%zz", "query"},
		{[]string{"provider", "category", "type"}, "a=1;b=2", "query"},
		{[]string{"provider", "category", "type"}, many, "ids[]"},
		{[]string{"type"}, "minPrice=abc", "minPrice"},
		{[]string{"type"}, "minPrice=0.000000001", "minPrice"},
		{[]string{"type"}, "minPrice=1e999999999", "minPrice"},
		{[]string{"type"}, "minPrice=NaN", "minPrice"},
		{[]string{"type"}, "minPrice=Infinity", "minPrice"},
		{[]string{"type"}, "minPrice=92233720368.54775808", "minPrice"},
		{[]string{"type"}, "maxPrice=1,5", "maxPrice"},
		{[]string{"type"}, "maxPrice=0x10", "maxPrice"},
		{[]string{"type"}, "maxPrice=" + strings.Repeat("9", 5000), "maxPrice"},
		{[]string{"type"}, "minPrice=1&maxPrice=--1", "maxPrice"},
	}
	for _, tc := range tests {
		for _, path := range tc.paths {
			name := tc.query
			if len(name) > 40 {
				name = name[:40]
			}
			t.Run(path+"?"+name, func(t *testing.T) {
				m := wantError(t, s.do(http.MethodGet, "/api/v1/service/"+path+"?"+tc.query, "", nil), http.StatusBadRequest, "VALIDATION_ERROR", tc.field)
				if msg, _ := m["message"].(string); !strings.Contains(msg, tc.field) {
					t.Errorf("message %q does not name %s", msg, tc.field)
				}
			})
		}
	}
}
