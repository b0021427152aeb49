package runtime

import (
	"context"
	"sort"
	"strings"
	"sync"
)

// KV is the store behind the kv module: small string values under string
// keys, partitioned by scope (RunOptions.KVScope, e.g. a provider id).
// Implementations must be safe for concurrent use and honour ctx.
type KV interface {
	// Get returns the value of key in scope; ok is false when absent.
	Get(ctx context.Context, scope, key string) (value string, ok bool, err error)
	// Set stores value under key in scope, replacing any previous value.
	Set(ctx context.Context, scope, key, value string) error
	// Delete removes key from scope; deleting an absent key is not an error.
	Delete(ctx context.Context, scope, key string) error
	// List returns up to limit pairs of scope whose keys start with prefix,
	// sorted by key.
	List(ctx context.Context, scope, prefix string, limit int) ([]KVPair, error)
}

// KVPair is one entry returned by KV.List.
type KVPair struct {
	Key   string
	Value string
}

// Caps of the kv module.
const (
	MaxKVKeyBytes   = 256
	MaxKVValueBytes = 64 << 10
	MaxKVList       = 1000
)

// MemoryKV is an in-memory KV for tests and tools. The zero value is
// ready to use.
type MemoryKV struct {
	mu   sync.Mutex
	data map[string]map[string]string
}

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{} }

// Get implements KV.
func (m *MemoryKV) Get(ctx context.Context, scope, key string) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[scope][key]
	return v, ok, nil
}

// Set implements KV.
func (m *MemoryKV) Set(ctx context.Context, scope, key, value string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		m.data = make(map[string]map[string]string)
	}
	if m.data[scope] == nil {
		m.data[scope] = make(map[string]string)
	}
	m.data[scope][key] = value
	return nil
}

// Delete implements KV.
func (m *MemoryKV) Delete(ctx context.Context, scope, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data[scope], key)
	return nil
}

// List implements KV.
func (m *MemoryKV) List(ctx context.Context, scope, prefix string, limit int) ([]KVPair, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []KVPair
	for k, v := range m.data[scope] {
		if strings.HasPrefix(k, prefix) {
			out = append(out, KVPair{Key: k, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
