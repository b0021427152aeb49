package runtime

import (
	"container/list"
	"crypto/sha256"
	"sync"

	lua "github.com/yuin/gopher-lua"
	"golang.org/x/sync/singleflight"
)

// CacheStats are counters of the compiled-proto cache.
type CacheStats struct {
	// Hits and Misses count lookups; Compiles counts actual compilations
	// (concurrent misses of one script compile once); Evictions counts
	// protos dropped for the size bound; Entries is the current size.
	Hits, Misses, Compiles, Evictions uint64
	Entries                           int
}

// protoCache maps the sha256 of a script's source to its compiled proto.
// Protos are immutable once compiled and shared by all Lua states.
type protoCache struct {
	max   int
	group singleflight.Group

	mu    sync.Mutex
	items map[[32]byte]*list.Element
	bySrc map[string]*list.Element // the same entries, found without hashing
	lru   *list.List               // of *cacheEntry, most recent first
	stats CacheStats
}

type cacheEntry struct {
	key   [32]byte
	src   string
	proto *lua.FunctionProto
}

func newProtoCache(max int) *protoCache {
	if max <= 0 {
		max = 1024
	}
	return &protoCache{max: max, items: make(map[[32]byte]*list.Element), bySrc: make(map[string]*list.Element), lru: list.New()}
}

// get returns the proto for source, compiling it under chunkName on a miss.
// hit reports a cache hit.
func (c *protoCache) get(chunkName, source string) (proto *lua.FunctionProto, hit bool, err error) {
	c.mu.Lock()
	if el, ok := c.bySrc[source]; ok {
		c.lru.MoveToFront(el)
		c.stats.Hits++
		p := el.Value.(*cacheEntry).proto
		c.mu.Unlock()
		return p, true, nil
	}
	c.stats.Misses++
	c.mu.Unlock()
	key := sha256.Sum256([]byte(source))

	v, err, _ := c.group.Do(string(key[:]), func() (any, error) {
		c.mu.Lock()
		if el, ok := c.items[key]; ok { // compiled by a flight that just ended
			c.mu.Unlock()
			return el.Value.(*cacheEntry).proto, nil
		}
		c.mu.Unlock()
		p, err := Compile(chunkName, source)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stats.Compiles++
		el := c.lru.PushFront(&cacheEntry{key: key, src: source, proto: p})
		c.items[key] = el
		c.bySrc[source] = el
		for c.lru.Len() > c.max {
			old := c.lru.Back()
			c.lru.Remove(old)
			delete(c.items, old.Value.(*cacheEntry).key)
			delete(c.bySrc, old.Value.(*cacheEntry).src)
			c.stats.Evictions++
		}
		return p, nil
	})
	if err != nil {
		return nil, false, err
	}
	return v.(*lua.FunctionProto), false, nil
}

func (c *protoCache) snapshot() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries = c.lru.Len()
	return s
}
