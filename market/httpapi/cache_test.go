package httpapi

import (
	"fmt"
	"testing"
)

func TestResponseCacheBounds(t *testing.T) {
	tests := []struct {
		name                      string
		items, maxBody, maxBytes  int
		puts                      int
		size                      int
		wantMaxItems, wantMaxByte int
	}{
		{"item cap", 4, 100, 1000, 10, 10, 4, 40},
		{"byte cap", 100, 100, 250, 10, 100, 2, 250},
		{"body over the per-answer cap is not kept", 4, 50, 1000, 3, 60, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newResponseCache(tt.items, tt.maxBody, tt.maxBytes)
			for i := 0; i < tt.puts; i++ {
				c.put(fmt.Sprint(i), 1, 200, make([]byte, tt.size))
			}
			if len(c.entries) > tt.wantMaxItems || c.bytes > tt.wantMaxByte {
				t.Fatalf("%d entries, %d bytes", len(c.entries), c.bytes)
			}
			total := 0
			for _, a := range c.entries {
				total += len(a.body)
			}
			if total != c.bytes {
				t.Fatalf("byte count %d, bodies %d", c.bytes, total)
			}
		})
	}
	c := newResponseCache(8, 100, 1000)
	c.put("k", 1, 200, []byte("old"))
	if _, ok := c.get("k", 2); ok {
		t.Fatal("an answer from an older generation was served")
	}
	c.put("k", 2, 200, []byte("new"))
	if a, ok := c.get("k", 2); !ok || string(a.body) != "new" || c.bytes != 3 {
		t.Fatalf("replace: %q %v %d", a.body, ok, c.bytes)
	}
}
