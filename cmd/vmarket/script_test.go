package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot is the repository root, relative to this package.
const repoRoot = "../.."

// TestScriptTestBundled runs `vmarket script test` on every bundled Lua
// test folder: each starts its fixture's fakes (if any) on its own and
// passes.
func TestScriptTestBundled(t *testing.T) {
	tests := []struct {
		dir     string
		fixture string
		fakes   []string
	}{
		{dir: "scripts/vcc", fixture: "vcc", fakes: []string{"vccfake https://127.0.0.1:", "sftpfake 127.0.0.1:"}},
		{dir: "scripts/vcp", fixture: "vcp", fakes: []string{"vcpfake http://127.0.0.1:"}},
		{dir: "scripts/kassa24", fixture: "kassa24", fakes: []string{"kassa24fake http://127.0.0.1:"}},
		{dir: "scripts/integration"}, // no fakes: settings in its luatest.json
		{dir: "templates/vcc-gas-topup", fixture: "vcc-gas-topup", fakes: []string{"vccfake https://127.0.0.1:"}},
		{dir: "templates/vcp-site-monitor", fixture: "vcp-site-monitor", fakes: []string{"vcpfake http://127.0.0.1:"}},
		{dir: "market/paysource", fixture: "kassa24-paysource", fakes: []string{"kassa24fake http://127.0.0.1:"}},
	}

	// Every bundled module, template and market folder holding Lua tests
	// is in the table.
	var listed, found []string
	for _, tc := range tests {
		listed = append(listed, tc.dir)
	}
	for _, pattern := range []string{"scripts/*/*_test.lua", "templates/*/*_test.lua", "market/*/*_test.lua"} {
		files, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel, err := filepath.Rel(repoRoot, filepath.Dir(f))
			if err != nil {
				t.Fatal(err)
			}
			if rel = filepath.ToSlash(rel); !slices.Contains(found, rel) {
				found = append(found, rel)
			}
		}
	}
	slices.Sort(listed)
	slices.Sort(found)
	if !slices.Equal(listed, found) {
		t.Fatalf("folders with Lua tests %v, tested here %v", found, listed)
	}

	summary := regexp.MustCompile(`(?m)^[1-9][0-9]* passed, 0 failed$`)
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			out, err := runCLI(t, "", "script", "test", filepath.Join(repoRoot, tc.dir))
			if err != nil {
				t.Fatalf("script test %s: %v\n%s", tc.dir, err, out)
			}
			started := strings.HasPrefix(out, "fixture "+tc.fixture+": started")
			if tc.fixture == "" {
				started = !strings.Contains(out, "fixture ")
			}
			if !started || !summary.MatchString(out) {
				t.Fatalf("script test %s printed:\n%s", tc.dir, out)
			}
			for _, fake := range tc.fakes {
				if !strings.Contains(out, "\n  "+fake) {
					t.Errorf("script test %s did not report %q:\n%s", tc.dir, fake, out)
				}
			}
		})
	}
}

// failingTest is a Lua test file whose second test fails on line 9.
const failingTest = `-- A deliberately failing test, next to a copy of scripts/vcp.
local vcp = require("vcp")
local fake = require("fake")

local T = {}

function T.test_passes(t) t:eq(type(vcp.config), "function") end

function T.test_fails(t) t:eq(fake.count{}, -1, "deliberate failure") end

return T
`

// TestScriptTestFailures checks that failing Lua tests make
// `vmarket script test` fail, naming the file and line.
func TestScriptTestFailures(t *testing.T) {
	// A copy of scripts/vcp (its tests and luatest.json, so its fixture)
	// plus a failing test file.
	copyDir := t.TempDir()
	for _, name := range []string{"vcp_test.lua", "luatest.json"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "scripts/vcp", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copyDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(copyDir, "failing_test.lua"), []byte(failingTest), 0o644); err != nil {
		t.Fatal(err)
	}
	// A folder without fixture whose test fails.
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "plain_test.lua"), []byte("function test_one(t)\n  t:ok(false, \"never\")\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		args    []string
		wantOut []string
		wantErr string
		started bool // a fixture's fakes were started
	}{
		{
			name:    "failing copy of a bundled module",
			args:    []string{copyDir},
			wantOut: []string{"fixture vcp: started", "failing_test.lua:9: ", "deliberate failure", "PASS failing_test.lua test_passes", "11 passed, 1 failed"},
			wantErr: "1 of 12 Lua tests failed",
			started: true,
		},
		{
			name:    "folder without fixture",
			args:    []string{plain},
			wantOut: []string{"plain_test.lua:2: ", "never", "0 passed, 1 failed"},
			wantErr: "1 of 1 Lua tests failed",
		},
		{
			name:    "bundled module without its fakes",
			args:    []string{filepath.Join(repoRoot, "scripts/vcp"), "--fakes=false"},
			wantOut: []string{"fixture vcp: not started (--fakes=false)", "vcp_test.lua:", "module 'fake' not found"},
			wantErr: "Lua tests failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, "", append([]string{"script", "test"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("script test %v: err %v, want %q\n%s", tc.args, err, tc.wantErr, out)
			}
			for _, want := range tc.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("script test %v output lacks %q:\n%s", tc.args, want, out)
				}
			}
			if got := strings.Contains(out, ": started"); got != tc.started {
				t.Errorf("fakes started: %v, want %v:\n%s", got, tc.started, out)
			}
		})
	}
}
