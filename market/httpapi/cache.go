package httpapi

import (
	"sync"
)

// responseCache keeps rendered answers of anonymous catalog reads, keyed by
// the request URI, and valid only at the catalog generation they were made
// at: any catalog change makes every entry stale at once. The catalog is
// read far more than written, so most list pages are served from here.
type responseCache struct {
	mu       sync.Mutex
	entries  map[string]cachedAnswer
	maxItems int
	maxBody  int
	// bytes is the size of all bodies held; maxBytes bounds it.
	bytes, maxBytes int
}

type cachedAnswer struct {
	gen    int64
	status int
	body   []byte
}

func newResponseCache(maxItems, maxBody, maxBytes int) *responseCache {
	return &responseCache{entries: make(map[string]cachedAnswer, maxItems), maxItems: maxItems, maxBody: maxBody, maxBytes: maxBytes}
}

// get returns the answer for key if it was made at generation gen.
func (c *responseCache) get(key string, gen int64) (cachedAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.entries[key]
	if !ok || a.gen != gen {
		return cachedAnswer{}, false
	}
	return a, true
}

// put stores an answer made at generation gen. When full, stale entries
// are dropped first; if all are current, an arbitrary one goes.
func (c *responseCache) put(key string, gen int64, status int, body []byte) {
	if len(body) > c.maxBody {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[key]; ok {
		c.bytes -= len(old.body)
		delete(c.entries, key)
	}
	full := func() bool { return len(c.entries) >= c.maxItems || c.bytes+len(body) > c.maxBytes }
	if full() {
		for k, a := range c.entries {
			if a.gen != gen {
				c.bytes -= len(a.body)
				delete(c.entries, k)
			}
		}
		for k, a := range c.entries {
			if !full() {
				break
			}
			c.bytes -= len(a.body)
			delete(c.entries, k)
		}
	}
	c.entries[key] = cachedAnswer{gen: gen, status: status, body: body}
	c.bytes += len(body)
}
