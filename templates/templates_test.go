package templates_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"net/url"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/luascript"
	"github.com/vmarket/vmarket/templates"
)

// fileTemplate is a template file whose one type's scripts are the given
// start, stop and refund values (inline Lua or "@file" references).
func fileTemplate(start, stop, refund string) string {
	s, _ := json.Marshal(map[string]string{"start": start, "stop": stop, "refund": refund})
	return `{
  "provider": {"name": "prov", "walletAddress": "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS", "apiHost": "http://localhost:3001"},
  "categories": [{
    "name": "cat",
    "serviceOptions": {"size": ["s", "m"]},
    "serviceTypes": [{
      "name": "type",
      "refundable": true,
      "serviceOptions": {"size": ["s", "m"]},
      "durationToPrice": [
        {"price": 1.5, "chargingOptions": {"size": "s"}, "duration": {"1": 1, "24": 0.9}},
        {"price": 3, "charingOptions": {"size": "m"}}
      ],
      "serviceAPI": ` + strings.TrimSuffix(string(s), "}") + `, "normal": {"status": "/api/v1/status"}}
    }]
  }]
}`
}

const (
	startLua  = "-- start\nlocal input = ...\nreturn { secret = \"s3cr+t & 100%\" }\n"
	stopLua   = "return { stopped = true }\n"
	refundLua = "return { amount = 0 }\n"
)

func scriptsOf(t *market.Template) [3]string {
	a := t.Categories[0].ServiceTypes[0].ServiceAPI
	return [3]string{a.Start.Encoded, a.Stop.Encoded, a.Refund.Encoded}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		files   fstest.MapFS
		path    string
		want    [3]string // decoded scripts
		wantErr string
	}{
		{
			name: "inline scripts",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate(startLua, stopLua, ""))},
			},
			path: "t/template.json",
			want: [3]string{startLua, stopLua, ""},
		},
		{
			name: "file references",
			files: fstest.MapFS{
				"t/template.json":    {Data: []byte(fileTemplate("@start.lua", "@lua/stop.lua", "@./refund.lua"))},
				"t/start.lua":        {Data: []byte(startLua)},
				"t/lua/stop.lua":     {Data: []byte(stopLua)},
				"t/refund.lua":       {Data: []byte(refundLua)},
				"t/unused/other.lua": {Data: []byte("x")},
			},
			path: "t/template.json",
			want: [3]string{startLua, stopLua, refundLua},
		},
		{
			name: "template at the root",
			files: fstest.MapFS{
				"template.json": {Data: []byte(fileTemplate("@start.lua", "", refundLua))},
				"start.lua":     {Data: []byte(startLua)},
			},
			path: "template.json",
			want: [3]string{startLua, "", refundLua},
		},
		{
			name: "reference escaping the folder",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate("@../secret.lua", "", ""))},
				"secret.lua":      {Data: []byte("return {}")},
			},
			path:    "t/template.json",
			wantErr: "inside the template's folder",
		},
		{
			name: "reference escaping through a subfolder",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate("@lua/../../other/x.lua", "", ""))},
				"other/x.lua":     {Data: []byte("return {}")},
			},
			path:    "t/template.json",
			wantErr: "inside the template's folder",
		},
		{
			name: "reference escaping the root",
			files: fstest.MapFS{
				"template.json": {Data: []byte(fileTemplate("@../x.lua", "", ""))},
			},
			path:    "template.json",
			wantErr: "inside the template's folder",
		},
		{
			name: "absolute reference",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate("@/etc/passwd", "", ""))},
			},
			path:    "t/template.json",
			wantErr: "inside the template's folder",
		},
		{
			name: "missing file",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate("", "@stop.lua", ""))},
			},
			path:    "t/template.json",
			wantErr: "serviceAPI.stop",
		},
		{
			name: "script file too large",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(fileTemplate("@big.lua", "", ""))},
				"t/big.lua":       {Data: make([]byte, templates.MaxFileSize+1)},
			},
			path:    "t/template.json",
			wantErr: "larger than",
		},
		{
			name:    "missing template",
			files:   fstest.MapFS{},
			path:    "t/template.json",
			wantErr: "not exist",
		},
		{
			name: "malformed template",
			files: fstest.MapFS{
				"t/template.json": {Data: []byte(`{"provider": `)},
			},
			path:    "t/template.json",
			wantErr: "t/template.json",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, hash, err := templates.Load(tc.files, tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(hash) != 64 {
				t.Errorf("hash %q", hash)
			}
			got := scriptsOf(tpl)
			for i, enc := range got {
				dec, err := url.QueryUnescape(enc)
				if err != nil || dec != tc.want[i] {
					t.Errorf("script %d loaded as %q (decodes to %q), want %q", i, enc, dec, tc.want[i])
				}
				if strings.ContainsAny(enc, " \n") {
					t.Errorf("script %d not url-encoded: %q", i, enc)
				}
			}
			if err := market.NewCatalog(nil, luascript.Compiler{}).CheckTemplate(tpl); err != nil {
				t.Errorf("CheckTemplate: %v", err)
			}
		})
	}
}

// TestLoadHash checks that the content hash follows the template and the
// script files it pulls in, and nothing else.
func TestLoadHash(t *testing.T) {
	files := fstest.MapFS{
		"t/template.json": {Data: []byte(fileTemplate("@start.lua", stopLua, ""))},
		"t/start.lua":     {Data: []byte(startLua)},
		"t/other.lua":     {Data: []byte("x")},
	}
	hash := func() string {
		t.Helper()
		_, h, err := templates.Load(files, "t/template.json")
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h0 := hash()
	if hash() != h0 {
		t.Fatal("hash not stable")
	}
	files["t/other.lua"] = &fstest.MapFile{Data: []byte("y")}
	if hash() != h0 {
		t.Error("hash follows a file the template does not use")
	}
	files["t/start.lua"] = &fstest.MapFile{Data: []byte(startLua + "\n")}
	h1 := hash()
	if h1 == h0 {
		t.Error("hash ignores a change of a script file")
	}
	files["t/template.json"] = &fstest.MapFile{Data: []byte(fileTemplate("@start.lua", stopLua+" ", ""))}
	if hash() == h1 {
		t.Error("hash ignores a change of the template")
	}
}

// bundled loads the bundled templates with their public URL placeholder
// filled in, as the server does before applying them.
func bundled(t testing.TB) []templates.Bundle {
	t.Helper()
	bs, err := templates.Bundled()
	if err != nil {
		t.Fatalf("bundled templates: %v", err)
	}
	if len(bs) == 0 {
		t.Fatal("no bundled templates")
	}
	for _, b := range bs {
		templates.Expand(b.Template, "http://127.0.0.1:8080/")
	}
	return bs
}

func TestBundled(t *testing.T) {
	cat := market.NewCatalog(nil, luascript.Compiler{})
	names := map[string]bool{}
	for _, b := range bundled(t) {
		t.Run(b.Name, func(t *testing.T) {
			if names[b.Name] {
				t.Errorf("bundle %s twice", b.Name)
			}
			names[b.Name] = true
			if err := cat.CheckTemplate(b.Template); err != nil {
				t.Fatalf("bundled template %s does not check: %v", b.Name, err)
			}
			// Every script of a bundled type is real Lua, not empty.
			for _, c := range b.Template.Categories {
				for _, st := range c.ServiceTypes {
					for _, s := range st.ServiceAPI.Scripts() {
						if s.Script.Encoded == "" || s.Script.Hash == "" {
							t.Errorf("%s/%s: %s script missing", c.Name, st.Name, s.Name)
						}
					}
				}
			}
			// Loading again gives the same content hash.
			_, h, err := templates.Load(templates.FS(), b.Name+"/"+templates.FileName)
			if err != nil || h != b.Hash {
				t.Errorf("reload: hash %s, %v; want %s", h, err, b.Hash)
			}
		})
	}
}

// TestBundledContainerService checks the seed's container service example
// as bundled.
func TestBundledContainerService(t *testing.T) {
	var tpl *market.Template
	for _, b := range bundled(t) {
		if b.Template.Provider.Name == "v-kube-service" {
			tpl = b.Template
		}
	}
	if tpl == nil {
		t.Fatal("no bundled template for provider v-kube-service")
	}
	if err := market.NewCatalog(nil, luascript.Compiler{}).CheckTemplate(tpl); err != nil {
		t.Fatal(err)
	}
	var cs *market.TemplateCategory
	for i := range tpl.Categories {
		if tpl.Categories[i].Name == "Container-Service" {
			cs = &tpl.Categories[i]
		}
	}
	if cs == nil || len(cs.ServiceTypes) == 0 {
		t.Fatalf("no Container-Service category with types: %+v", tpl.Categories)
	}
	st := cs.ServiceTypes[0]
	if len(st.DurationToPrice) != 3 {
		t.Errorf("%d price sets, want 3", len(st.DurationToPrice))
	}
	keys := map[string]bool{}
	for _, ps := range st.DurationToPrice {
		if len(ps.ChargingOptions) != 1 {
			t.Errorf("price set %v not keyed by one option", ps.ChargingOptions)
		}
		for k, v := range ps.ChargingOptions {
			keys[k+"="+v] = true
		}
		discounted := false
		for _, d := range ps.Duration {
			if d.Factor < market.NewDecimal(1) {
				discounted = true
			}
		}
		if !discounted {
			t.Errorf("price set %v has no duration discount", ps.ChargingOptions)
		}
	}
	if len(keys) != 3 {
		t.Errorf("price sets keyed by %v, want 3 distinct values", keys)
	}
}

func TestParseErrorsAreMarketErrors(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `}`, `[]`, `"x"`, `1`, `null x`, `{} x`, `{}}`, `{}]`, `{} {}`, `{"provider": 1}`,
		`{"provider": {"name": 1}}`, `{"unknown": 1}`, `{"categories": [{"serviceTypes": [{"durationToPrice": [{"price": [1]}]}]}]}`,
		`{"categories": [{"serviceTypes": [{"durationToPrice": [{"price": 1e400}]}]}]}`,
		`{"categories": [{"serviceTypes": [{"serviceAPI": {"start": 1}}]}]}`,
		`{"categories": [{"serviceTypes": [{"durationToPrice": [{"duration": {"x": 1}}]}]}]}`,
	} {
		_, err := templates.Parse([]byte(in))
		var me *market.Error
		if !errors.As(err, &me) || me.Kind != market.KindInvalid {
			t.Errorf("Parse(%q) = %v (%T), want a validation *market.Error", in, err, err)
		}
	}
}

// FuzzParseTemplate feeds arbitrary bytes to Parse and CheckTemplate: they
// never panic, fail only with validation errors, and a template that
// checks survives a round trip through its wire form.
func FuzzParseTemplate(f *testing.F) {
	f.Add([]byte(fileTemplate(startLua, stopLua, refundLua)))
	f.Add([]byte(fileTemplate("@start.lua", "", "")))
	f.Add([]byte(fileTemplate(url.QueryEscape("return ("), "", "")))
	f.Add([]byte(`{"provider": {"name": "p", "walletAddress": "w", "apiHost": "h"}, "categories": []}`))
	f.Add([]byte(`{"provider": {"name": "p", "walletAddress": "w", "apiHost": "h"}, "categories": [{"name": "c", "serviceTypes": [{"name": "t", "durationToPrice": [{"price": 0.00000001, "duration": {"1": 0.5}}]}]}]}`))
	f.Add([]byte(`{} x`))
	f.Add([]byte(`{"categories": [{"serviceTypes": [{"durationToPrice": [{"price": "1e30"}]}]}]}`))
	if data, err := fs.ReadFile(templates.FS(), "container-service/template.json"); err == nil {
		f.Add(data)
	}
	for _, b := range bundled(f) {
		if data, err := json.Marshal(b.Template); err == nil {
			f.Add(data)
		}
	}
	catalog := market.NewCatalog(nil, luascript.Compiler{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tpl, err := templates.Parse(data)
		if err != nil {
			wantInvalid(t, "Parse", err)
			return
		}
		if err := catalog.CheckTemplate(tpl); err != nil {
			wantInvalid(t, "CheckTemplate", err)
			return
		}
		wire, err := json.Marshal(tpl)
		if err != nil {
			t.Fatalf("marshal a checked template: %v", err)
		}
		again, err := templates.Parse(wire)
		if err != nil {
			t.Fatalf("wire form does not parse: %v\n%s", err, wire)
		}
		if err := catalog.CheckTemplate(again); err != nil {
			t.Fatalf("wire form does not check: %v\n%s", err, wire)
		}
		wire2, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(wire2) != string(wire) {
			t.Fatalf("round trip changed the template:\n%s\n%s", wire, wire2)
		}
	})
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	var me *market.Error
	if !errors.As(err, &me) {
		t.Fatalf("%s: %v (%T) is not a *market.Error", what, err, err)
	}
	if me.Kind != market.KindInvalid {
		t.Fatalf("%s: %v has kind %s, want %s", what, err, me.Kind, market.KindInvalid)
	}
}
