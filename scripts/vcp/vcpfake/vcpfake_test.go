package vcpfake_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vmarket/vmarket/scripts/vcp/vcpfake"
)

const site = "3f2b8c1e-6a4d-4e2f-9b71-0c5d2a8e4f10"

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *vcpfake.Server {
	t.Helper()
	s := vcpfake.New(vcpfake.Config{
		Keys: map[string][]string{
			"all":     {vcpfake.ScopeCommands, vcpfake.ScopeConfig, vcpfake.ScopeTelemetry},
			"cfgonly": {vcpfake.ScopeConfig},
		},
		Now: func() time.Time { return now },
	})
	t.Cleanup(s.Close)
	s.AddSite(site, vcpfake.SiteConfig{OperatingMode: "self-consumption", Constraints: map[string]any{"maxExportKw": 50}})
	applied := now.Add(-2 * time.Hour)
	old := now.Add(-30 * time.Hour)
	for _, c := range []vcpfake.Command{
		{ID: "c1", Type: "setMode", Status: "pending", CreatedAt: now.Add(-time.Minute)},
		{ID: "c2", Type: "setLimit", Status: "applied", CreatedAt: applied, AppliedAt: &applied},
		{ID: "c3", Type: "setLimit", Status: "applied", CreatedAt: old, AppliedAt: &old},
	} {
		if err := s.AddCommand(site, c); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type answer struct {
	status int
	body   map[string]any
}

func call(t *testing.T, s *vcpfake.Server, method, path, key string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.URL()+path, nil)
	if key != "" {
		req.Header.Set("api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return a
}

func tel(from, to string) string {
	v := url.Values{}
	if from != "" {
		v.Set("from", from)
	}
	if to != "" {
		v.Set("to", to)
	}
	return "/api/v1/vcp/sites/" + site + "/telemetry/meter?" + v.Encode()
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		key    string
		status int
		code   string
	}{
		{"no key", "GET", "/api/v1/vcp/sites/" + site + "/config", "", 401, vcpfake.CodeUnauth},
		{"bad key", "GET", "/api/v1/vcp/sites/" + site + "/config", "nope", 401, vcpfake.CodeUnauth},
		{"no scope", "GET", "/api/v1/vcp/sites/" + site + "/commands", "cfgonly", 403, vcpfake.CodeForbidden},
		{"malformed uuid", "GET", "/api/v1/vcp/sites/not-a-uuid/config", "all", 400, vcpfake.CodeValidation},
		{"unknown site", "GET", "/api/v1/vcp/sites/00000000-0000-4000-8000-000000000000/config", "all", 404, vcpfake.CodeNotFound},
		{"unknown route", "GET", "/api/v1/vcp/sites/" + site + "/reboot", "all", 404, vcpfake.CodeNotFound},
		{"post", "POST", "/api/v1/vcp/sites/" + site + "/config", "all", 405, vcpfake.CodeMethod},
		{"from missing", "GET", tel("", ""), "all", 400, vcpfake.CodeValidation},
		{"from not iso", "GET", tel("2025-06-01 10:00", ""), "all", 400, vcpfake.CodeValidation},
		{"to not iso", "GET", tel("2025-06-01T10:00:00Z", "yesterday"), "all", 400, vcpfake.CodeValidation},
		{"window over 48h", "GET", tel("2025-05-30T11:59:59Z", ""), "all", 400, vcpfake.CodeValidation},
		{"window over 48h explicit to", "GET", tel("2025-05-01T00:00:00Z", "2025-05-03T00:00:01Z"), "all", 400, vcpfake.CodeValidation},
		{"from after to", "GET", tel("2025-06-01T10:00:00Z", "2025-06-01T09:00:00Z"), "all", 400, vcpfake.CodeValidation},
		{"bad lookback", "GET", "/api/v1/vcp/sites/" + site + "/commands?lookbackHours=0", "all", 400, vcpfake.CodeValidation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			a := call(t, s, tc.method, tc.path, tc.key)
			if a.status != tc.status || a.body["code"] != tc.code {
				t.Fatalf("got %d %v", a.status, a.body)
			}
			for _, f := range []string{"code", "details", "error", "message", "statusCode"} {
				if _, ok := a.body[f]; !ok {
					t.Fatalf("envelope lacks %s: %v", f, a.body)
				}
			}
			if a.body["statusCode"] != float64(tc.status) {
				t.Fatalf("statusCode %v", a.body["statusCode"])
			}
		})
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"c1", "c2"}},
		{"?lookbackHours=1", []string{"c1"}},
		{"?lookbackHours=48", []string{"c1", "c2", "c3"}},
	}
	for _, tc := range tests {
		s := newFake(t)
		a := call(t, s, "GET", "/api/v1/vcp/sites/"+site+"/commands"+tc.query, "all")
		cmds, _ := a.body["commands"].([]any)
		var ids []string
		for _, c := range cmds {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		if len(ids) != len(tc.want) {
			t.Fatalf("%s: ids %v, want %v", tc.query, ids, tc.want)
		}
		for i := range ids {
			if ids[i] != tc.want[i] {
				t.Fatalf("%s: ids %v, want %v", tc.query, ids, tc.want)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	s := newFake(t)
	a := call(t, s, "GET", "/api/v1/vcp/sites/"+site+"/config", "cfgonly")
	if a.status != 200 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	for _, f := range []string{"activeSchedule", "constraints", "fallback", "modeOverride", "operatingMode", "pendingCommands", "siteId"} {
		if _, ok := a.body[f]; !ok {
			t.Fatalf("config lacks %s", f)
		}
	}
	if pc := a.body["pendingCommands"].([]any); len(pc) != 1 || a.body["siteId"] != site || a.body["operatingMode"] != "self-consumption" {
		t.Fatalf("config %v", a.body)
	}
}

func TestTelemetry(t *testing.T) {
	tests := []struct {
		from, to string
		want     int
	}{
		{"2025-06-01T11:00:00Z", "", 5},                          // to defaults to now: 11:00..12:00
		{"2025-05-30T12:00:00Z", "", 193},                        // exactly 48h
		{"2025-06-01T11:07:00+02:00", "2025-06-01T09:46:00Z", 3}, // offsets honoured: 09:07Z..09:46Z
	}
	for _, tc := range tests {
		s := newFake(t)
		a := call(t, s, "GET", tel(tc.from, tc.to), "all")
		r, _ := a.body["readings"].([]any)
		if a.status != 200 || len(r) != tc.want {
			t.Fatalf("%s..%s: %d, %d readings, want %d", tc.from, tc.to, a.status, len(r), tc.want)
		}
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t)
	s.Faults.FailNext(1, 503)
	if a := call(t, s, "GET", "/api/v1/vcp/sites/"+site+"/config", "all"); a.status != 503 || a.body["code"] != vcpfake.CodeInternal {
		t.Fatalf("%d %v", a.status, a.body)
	}
	if a := call(t, s, "GET", "/api/v1/vcp/sites/"+site+"/config", "all"); a.status != 200 {
		t.Fatalf("%d %v", a.status, a.body)
	}
	if n := s.CallCount("config"); n != 2 {
		t.Fatalf("calls %d", n)
	}
}
