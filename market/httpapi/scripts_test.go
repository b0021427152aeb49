package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestScripts(t *testing.T) {
	s := newTestServer(t)
	s.seedTree("p", "c", nil)
	tests := []struct {
		name    string
		script  string // which script is set: start, stop or refund
		encoded string // as sent
		line    int    // 0: accepted; -1: refused without a line; else the syntax error's line
	}{
		{"query-escaped", "start", enc("local input = ...\nreturn { secret = input.order.id }\n"), 0},
		{"percent-20 spaces", "start", "return%20%7B%7D", 0},
		{"plus is a space", "stop", "return+%7B+stopped+%3D+true+%7D", 0},
		{"mixed escaping, kept as sent", "refund", "local%20a+=+1%2B1%0Areturn%20{amount=a}", 0},
		{"plain Lua without specials", "start", "return", 0},
		{"non-ASCII", "refund", enc("-- возврат ✓\nreturn { amount = 0 }"), 0},
		{"empty", "stop", "", 0},
		{"unescaped plus turns into a space", "start", "local x = 1+1 return {}", 1},
		{"syntax error on line 3", "stop", enc("local a = 1\nlocal b = 2\nif then\nend\n"), 3},
		{"unclosed function, error at the end", "refund", enc("local function f()\n  return 1\n\n"), 4},
		// gopher-lua reports an unfinished string on the line after it.
		{"unfinished string", "start", enc("local s = 'abc\nreturn {}"), 2},
		{"error at the very end", "start", enc("return ("), 1},
		{"bad escape", "start", "return%zz", -1},
		{"truncated escape", "refund", "return%2", -1},
		{"binary chunk", "start", enc("\x1bLua\x51\x00"), -1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "type-" + string(rune('a'+i))
			b := typeBody("p", "c", name)
			api := b["serviceAPI"].(map[string]any)
			api[tc.script] = tc.encoded
			before := s.snapshot()
			a := s.do(http.MethodPost, "/api/v1/service/type", s.admin, b)
			if tc.line == 0 {
				wantStatus(t, a, http.StatusCreated)
				id := a.obj(t)["id"].(string)
				got := s.do(http.MethodGet, "/api/v1/service/type/"+id, s.admin, nil).obj(t)["serviceAPI"].(map[string]any)
				if got[tc.script] != tc.encoded {
					t.Errorf("operator reads %s back as %q, want exactly %q", tc.script, got[tc.script], tc.encoded)
				}
				pub := s.do(http.MethodGet, "/api/v1/service/type/"+id, "", nil).obj(t)["serviceAPI"].(map[string]any)
				for _, k := range []string{"start", "stop", "refund"} {
					if pub[k] != "" {
						t.Errorf("public read shows %s = %q", k, pub[k])
					}
				}
				return
			}
			m := wantError(t, a, http.StatusBadRequest, "VALIDATION_ERROR", "serviceAPI."+tc.script)
			d := m["details"].(map[string]any)
			if d["serviceType"] != name || d["script"] != tc.script {
				t.Errorf("details %v do not name type %q and script %s", d, name, tc.script)
			}
			msg := m["message"].(string)
			if !strings.Contains(msg, name) || !strings.Contains(msg, tc.script) {
				t.Errorf("message %q does not name type %q and script %s", msg, name, tc.script)
			}
			if tc.line > 0 {
				if d["line"] != float64(tc.line) {
					t.Errorf("details.line %v, want %d (%s)", d["line"], tc.line, msg)
				}
			}
			if s.snapshot() != before {
				t.Errorf("a refused script changed the database")
			}
		})
	}
	// Each distinct decoded source is kept once, by hash.
	if n := s.count("scripts"); n == 0 {
		t.Errorf("no script sources stored")
	}
}
