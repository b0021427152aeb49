package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// benchTypes is the size of the catalog the list benchmark reads.
const benchTypes = 10_000

// seedTypes fills s's catalog with n service types by template uploads of
// up to 1000 types each (one category per upload, one provider).
func seedTypes(b *testing.B, s *testServer, n int) {
	b.Helper()
	for c := 0; c*1000 < n; c++ {
		names := make([]string, 0, 1000)
		for i := c * 1000; i < min(n, (c+1)*1000); i++ {
			names = append(names, fmt.Sprintf("type-%05d", i))
		}
		cat := fmt.Sprintf("cat-%02d", c)
		tpl := treeTemplate("bench", map[string][]string{cat: names}, cat)
		// Spread base prices so that price filters have work to do.
		for i, st := range tpl["categories"].([]any)[0].(map[string]any)["serviceTypes"].([]any) {
			ps := st.(map[string]any)["durationToPrice"].([]any)[0].(map[string]any)
			ps["price"] = json.Number(strconv.Itoa(1 + (c*1000+i)%500))
		}
		if a := s.do(http.MethodPost, "/api/v1/template/add", s.admin, tpl); a.status != http.StatusOK {
			b.Fatalf("seed upload %d: %d %s", c, a.status, a.body)
		}
	}
}

// bareServer serves body at path from a bare echo handler on loopback.
func bareServer(b *testing.B, path string, body []byte) string {
	b.Helper()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET(path, func(c echo.Context) error { return c.JSONBlob(http.StatusOK, body) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// fetch GETs url with the given headers and reads the answer whole; it
// returns the body length.
func fetch(c *http.Client, url string, hdr http.Header) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if hdr != nil {
		req.Header = hdr
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return int(n), err
}

// BenchmarkServiceTypeList reads a page of 100 service types from a
// catalog of 10,000 over loopback HTTP, and compares it with a bare echo
// handler on another loopback server answering a precomputed body of the
// same size:
//
//   - vmarket/cached: the same anonymous query again (the response cache
//     answers);
//   - vmarket/uncached: the first page with a query that differs each time
//     (a cache miss: count, page query, JSON encoding);
//   - vmarket/uncached-deep: pages spread over the whole catalog, each a
//     miss;
//   - vmarket/operator: a support token, which is never cached and reads
//     script bodies;
//   - bare-echo: the baseline.
//
// The -parallel variants run the same requests from GOMAXPROCS clients.
func BenchmarkServiceTypeList(b *testing.B) {
	s := newTestServer(b)
	seedTypes(b, s, benchTypes)
	const path = "/api/v1/service/type"
	first := s.do(http.MethodGet, path+"?pageSize=100", "", nil)
	var page struct {
		List       []json.RawMessage `json:"list"`
		Pagination struct{ Total int }
	}
	first.into(b, &page)
	if page.Pagination.Total != benchTypes || len(page.List) != 100 {
		b.Fatalf("catalog has %d types, page %d", page.Pagination.Total, len(page.List))
	}
	bare := bareServer(b, path, first.body)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}, Timeout: 30 * time.Second}
	b.Cleanup(client.CloseIdleConnections)
	if n, err := fetch(client, bare+path, nil); err != nil || n != len(first.body) {
		b.Fatalf("bare body %d bytes (%v), vmarket %d", n, err, len(first.body))
	}

	operator := http.Header{"Authorization": {"Bearer " + s.support}}
	cases := []struct {
		name string
		url  func(i int) string
		hdr  http.Header
	}{
		{"vmarket/cached", func(int) string { return s.url + path + "?pageSize=100" }, nil},
		{"bare-echo", func(int) string { return bare + path }, nil},
		{"vmarket/uncached", func(i int) string { return s.url + path + "?pageSize=100&nocache=" + strconv.Itoa(i) }, nil},
		{"vmarket/uncached-deep", func(i int) string {
			return s.url + path + "?pageSize=100&current=" + strconv.Itoa(1+i%100) + "&nocache=" + strconv.Itoa(i)
		}, nil},
		{"vmarket/operator", func(int) string { return s.url + path + "?pageSize=100" }, operator},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(first.body)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := fetch(client, tc.url(i), tc.hdr); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	for _, tc := range cases {
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.SetBytes(int64(len(first.body)))
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := fetch(client, tc.url(int(next.Add(1))), tc.hdr); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
