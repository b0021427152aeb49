package sqlite

import (
	"encoding/json"
	"sync"
)

// decodeCache keeps decoded JSON columns (price sets, options, API maps)
// by their text. Decoding them is most of the cost of listing service
// types, and the same texts come back on every read. Cached values are
// shared: callers must not mutate the maps inside them.
type decodeCache struct {
	mu  sync.Mutex
	m   map[string]any
	max int
}

func newDecodeCache(max int) *decodeCache {
	return &decodeCache{m: make(map[string]any, max), max: max}
}

// decodeCached decodes text as T, through the cache; kind separates the
// column types.
func decodeCached[T any](c *decodeCache, kind, text string) (T, error) {
	key := kind + text
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v.(T), nil
	}
	var out T
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		return out, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m) // simple and bounded; the hot set refills at once
	}
	c.m[key] = out
	c.mu.Unlock()
	return out, nil
}
