package runtime

import (
	"context"
	"testing"
)

func TestSmoke(t *testing.T) {
	e, err := NewEngine(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Run(context.Background(), Script{Name: "s", Source: `
local json = require("json")
local x = ...
print("hello", x.a)
local s = "a" .. x.a .. "b"
return {v = s, n = #s, j = json.encode({1,2,{k=json.null}}), up = ("abc"):upper(), g = (("hello world"):gsub("o", "0"))}
`}, map[string]any{"a": "zz"}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%#v %+v", res.Value, res.Record)
}
