package scripts_test

import (
	"context"
	"io/fs"
	"slices"
	"testing"

	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/scripts"
)

func TestEmbeddedModules(t *testing.T) {
	want := []string{"integration", "kassa24", "vcc", "vcp"}
	if got := scripts.Modules(); !slices.Equal(got, want) {
		t.Fatalf("Modules() = %v, want %v", got, want)
	}
	res := runtime.FSResolver(scripts.FS())
	for _, name := range want {
		src, version, ok, err := res.Resolve(context.Background(), name)
		if err != nil || !ok || src == "" || version == "" {
			t.Fatalf("resolve %s: ok=%v err=%v", name, ok, err)
		}
		if _, err := runtime.Compile(name, src); err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		if _, err := fs.Stat(scripts.FS(), name+"/"+name+"_test.lua"); err != nil {
			t.Fatalf("%s has no Lua tests: %v", name, err)
		}
	}
	// Go fakes and Go files are not part of the embedded tree.
	err := fs.WalkDir(scripts.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !slices.Contains([]string{".lua"}, p[len(p)-4:]) {
			t.Errorf("unexpected embedded file %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestModulesLoadInEngine requires each bundled module in a plain run, with
// no settings: loading must not need configuration.
func TestModulesLoadInEngine(t *testing.T) {
	eng, err := runtime.NewEngine(runtime.Options{Resolver: runtime.FSResolver(scripts.FS())})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, name := range scripts.Modules() {
		res, err := eng.Run(t.Context(), runtime.Script{Name: "load", Source: `local m = require("` + name + `") return {kind = type(m)}`}, nil, runtime.RunOptions{})
		if err != nil {
			t.Fatalf("require %s: %v", name, err)
		}
		if res.Map()["kind"] != "table" {
			t.Fatalf("require %s returned %v", name, res.Map()["kind"])
		}
	}
}
