package operator_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/storage/sqlite"
)

// Callers of the tests: an admin and a support operator.
const (
	adminName   = "alice"
	supportName = "sam"
)

var (
	admin   = market.Caller{OperatorRole: market.RoleAdmin, OperatorName: adminName}
	support = market.Caller{OperatorRole: market.RoleSupport, OperatorName: supportName}
)

// fixture is a Service on a real SQLite file with its engine.
type fixture struct {
	svc    *operator.Service
	db     *sqlite.DB
	engine *runtime.Engine
	keys   *opauth.Keyring
	logs   *syncBuffer
	log    *slog.Logger
	dbPath string
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testJWTSecret = "operator-test-secret-0123456789"

func newFixture(t *testing.T, mutate ...func(*operator.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "vmarket.db")
	db, err := sqlite.Open(ctx, dbPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var svc *operator.Service
	engine, err := runtime.NewEngine(runtime.Options{MinStates: 1, MaxStates: 8, KV: db.KV(), Logger: log,
		Resolver: runtime.ResolverFunc(func(ctx context.Context, name string) (string, string, bool, error) {
			return svc.Resolver().Resolve(ctx, name)
		})})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := opauth.NewKeyring([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	cfg := operator.Config{Store: db.Operator(), Engine: engine, Keys: keys, SealKey: bytes.Repeat([]byte{7}, operator.SealKeySize),
		Logger: log, BeforeTimeout: 300 * time.Millisecond, AfterTimeout: 300 * time.Millisecond,
		Bundled: runtime.MapResolver(map[string]string{"bundled": `return {v = "bundled"}`, "shadow": `return {v = "bundled shadow"}`})}
	for _, m := range mutate {
		m(&cfg)
	}
	svc, err = operator.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Close(cctx); err != nil {
			t.Errorf("close: %v", err)
		}
		engine.Close()
		db.Close()
	})
	return &fixture{svc: svc, db: db, engine: engine, keys: keys, logs: logs, log: log, dbPath: dbPath}
}

// run runs a script with the service's per-run resolver and returns its
// result table.
func (f *fixture) run(t testing.TB, src string) map[string]any {
	t.Helper()
	res, err := f.engine.Run(context.Background(), runtime.Script{Name: "t", Source: src}, nil,
		runtime.RunOptions{Resolver: f.svc.RunResolver()})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res.Map()
}

// upload uploads a module and fails the test on error.
func (f *fixture) upload(t testing.TB, name, src string, activate bool) *operator.ModuleVersion {
	t.Helper()
	m, err := f.svc.UploadModule(context.Background(), admin, name, src, activate)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return m
}

// kindOf is market.KindOf for table checks.
func kindOf(err error) market.Kind { return market.KindOf(err) }

// runs flushes and lists the recorded runs matching f.
func (f *fixture) runs(t testing.TB, filter operator.RunFilter) []operator.Run {
	t.Helper()
	filter.Page = market.Page{Current: 1, PageSize: 100}
	page, err := f.svc.Runs(context.Background(), admin, filter)
	if err != nil {
		t.Fatal(err)
	}
	return page.List
}

// waitFor polls cond until it holds or the test's patience ends.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
