package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTimeSleep(t *testing.T) {
	e, err := NewEngine(Options{MinStates: 1, MaxStates: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	tests := []struct {
		name, src string
		limit     string
	}{
		{"short sleep", `local time = require("time"); time.sleep(0.01); return {left = time.remaining()}`, ""},
		{"past the deadline", `require("time").sleep(3600); return {}`, LimitTimeout},
		{"pcall cannot keep it", `local ok = pcall(require("time").sleep, 3600); return {ok = ok}`, LimitTimeout},
		{"negative", `local ok, err = pcall(require("time").sleep, -1); return {ok = ok, code = err.code}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.Run(context.Background(), Script{Name: "s", Source: tt.src}, nil, RunOptions{Timeout: 200 * time.Millisecond})
			var le *LimitError
			switch {
			case tt.limit != "":
				if !errors.As(err, &le) || le.Limit != tt.limit {
					t.Fatalf("want limit %s, got %v", tt.limit, err)
				}
			case err != nil:
				t.Fatal(err)
			case tt.name == "negative":
				if m := res.Value.(map[string]any); m["ok"] != false || m["code"] != "invalid_argument" {
					t.Fatalf("negative sleep: %v", m)
				}
			default:
				if left := res.Value.(map[string]any)["left"]; left == nil {
					t.Fatalf("no remaining time: %v", res.Value)
				}
			}
		})
	}
}
