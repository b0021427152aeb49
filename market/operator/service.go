package operator

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/runtime"
)

// OperatorKVScope is the kv scope of hooks. Provider names cannot contain
// control characters, so no provider's scripts share it.
const OperatorKVScope = "\x1foperator"

// Defaults of Config.
const (
	DefaultBeforeTimeout = time.Second
	DefaultAfterTimeout  = 5 * time.Second
	DefaultHookWorkers   = 4
	DefaultHookQueue     = 1024
	DefaultRecordQueue   = 8192
	DefaultRecordBatch   = 256
	DefaultTokenTTL      = 30 * 24 * time.Hour
	MaxTokenTTL          = 366 * 24 * time.Hour
)

// Config configures a Service.
type Config struct {
	// Store persists the operator's state (required).
	Store Store
	// Engine runs hooks and checks modules (required).
	Engine *runtime.Engine
	// Bundled resolves the bundled Lua modules, asked after the operator's
	// modules (nil: none).
	Bundled runtime.ModuleResolver
	// Keys is the operator JWT keyring; nil disables operator users and
	// key rotation.
	Keys *opauth.Keyring
	// SealKey seals secrets at rest (SealKeySize bytes, required).
	SealKey []byte
	// Logger receives run logs and events (default: discarded).
	Logger *slog.Logger
	// BeforeTimeout is the deadline of one before-check (1 s); AfterTimeout
	// of one after-hook (5 s).
	BeforeTimeout, AfterTimeout time.Duration
	// HookWorkers after-hooks run at once (4); HookQueue events wait at
	// most (1024), more are dropped and recorded.
	HookWorkers, HookQueue int
	// HookHosts are the hosts hooks may call over HTTP.
	HookHosts []string
	// RootCAs are extra PEM roots hooks and dry runs trust.
	RootCAs []byte
	// RecordQueue run records wait at most for the database (8192); more
	// are dropped and counted. RecordBatch records are inserted per
	// transaction at most (256).
	RecordQueue, RecordBatch int
	// Observe, when set, is called with every run record (metrics). It
	// must not block.
	Observe func(Run)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is the operator's control of a running vmarket. It implements
// market.Hooks. Create it with New and stop it with Close.
type Service struct {
	cfg    Config
	log    *slog.Logger
	store  Store
	sealer *Sealer

	// mu serializes changes: write to the store, then reload the snapshot.
	mu       sync.Mutex
	mods     atomic.Pointer[moduleSnapshot]
	settings atomic.Pointer[settingsSnapshot]
	users    atomic.Pointer[map[string]User]
	dir      atomic.Pointer[DirStatus]

	rec   *recorder
	hooks *hookPool
	dry   *dryRunner
}

// New loads the operator's state from cfg.Store and starts the run
// recorder and the after-hook workers.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Engine == nil {
		return nil, errors.New("operator: Store and Engine are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BeforeTimeout <= 0 {
		cfg.BeforeTimeout = DefaultBeforeTimeout
	}
	if cfg.AfterTimeout <= 0 {
		cfg.AfterTimeout = DefaultAfterTimeout
	}
	if cfg.HookWorkers <= 0 {
		cfg.HookWorkers = DefaultHookWorkers
	}
	if cfg.HookQueue <= 0 {
		cfg.HookQueue = DefaultHookQueue
	}
	if cfg.RecordQueue <= 0 {
		cfg.RecordQueue = DefaultRecordQueue
	}
	if cfg.RecordBatch <= 0 {
		cfg.RecordBatch = DefaultRecordBatch
	}
	sealer, err := NewSealer(cfg.SealKey)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, store: cfg.Store, sealer: sealer}
	if err := s.reloadModules(ctx); err != nil {
		return nil, err
	}
	if err := s.reloadSettings(ctx); err != nil {
		return nil, err
	}
	if err := s.reloadUsers(ctx); err != nil {
		return nil, err
	}
	if err := s.loadKeys(ctx); err != nil {
		return nil, err
	}
	dry, err := newDryRunner(cfg)
	if err != nil {
		return nil, err
	}
	s.dry = dry
	s.rec = newRecorder(cfg.Store, cfg.Logger, cfg.RecordQueue, cfg.RecordBatch)
	s.hooks = newHookPool(s, cfg.HookWorkers, cfg.HookQueue)
	return s, nil
}

// Close stops taking hook events, lets queued after-hooks finish (until
// ctx ends, then cancels them), writes the pending run records and
// releases the dry-run engine.
func (s *Service) Close(ctx context.Context) error {
	s.hooks.close(ctx)
	err := s.rec.close(ctx)
	return errors.Join(err, s.dry.close())
}

// observe is the recorder's hook for metrics.
func (s *Service) observe(r Run) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(r)
	}
}

// RecordsDropped counts run records lost because the queue was full or
// the database failed.
func (s *Service) RecordsDropped() uint64 { return s.rec.dropped.Load() }

// FlushRuns waits until every run recorded so far is in the store.
func (s *Service) FlushRuns(ctx context.Context) error { return s.rec.flush(ctx) }

// canRead checks that caller may read the operator's state: any operator.
func canRead(c market.Caller) error {
	if !c.IsOperator() {
		return market.Denied(c, "the admin API needs an operator token")
	}
	return nil
}

// canWrite checks that caller may change the operator's state: admins.
func canWrite(c market.Caller, what string) error {
	if !c.IsAdmin() {
		return market.Denied(c, "%s needs an admin operator token", what)
	}
	return nil
}

// actor names a caller in created/updated-by fields.
func actor(c market.Caller) string {
	if c.OperatorName != "" {
		return c.OperatorName
	}
	if c.OperatorRole != "" {
		return c.OperatorRole
	}
	return "system"
}

// EventInfo describes an event hooks can bind to.
type EventInfo struct {
	Event string `json:"event"`
	// Before is true for checks that may reject the action.
	Before bool `json:"before"`
	// Function is the conventional function name of the event.
	Function string `json:"function"`
}

// Events lists the events hooks can bind to.
func Events() []EventInfo {
	names := []string{
		market.EventOrderCreated, market.EventOrderPaid, market.EventOrderFiled, market.EventOrderCompleted,
		market.EventOrderRefunded, market.EventServiceStartFailed, market.EventTemplateUploaded,
		market.BeforeOrderCreate, market.BeforeOrderRefund, market.BeforeTemplateUpload,
	}
	out := make([]EventInfo, len(names))
	for i, n := range names {
		out[i] = EventInfo{Event: n, Before: isBefore(n), Function: FunctionFor(n)}
	}
	return out
}

// validEvent reports whether hooks can bind to event.
func validEvent(event string) bool {
	for _, e := range Events() {
		if e.Event == event {
			return true
		}
	}
	return false
}

// isBefore reports whether event is a before-check.
func isBefore(event string) bool { return strings.HasPrefix(event, "before.") }

// FunctionFor is the conventional hook function of an event: "on_" and
// the event with dots as underscores for after-events (order.paid →
// on_order_paid), the event with dots as underscores for before-checks
// (before.order.create → before_order_create).
func FunctionFor(event string) string {
	f := strings.ReplaceAll(event, ".", "_")
	if isBefore(event) {
		return f
	}
	return "on_" + f
}

// reservedName reports whether a module name is taken by the sandbox's
// libraries and host modules, which require finds first.
func reservedName(name string) bool {
	switch strings.SplitN(name, ".", 2)[0] {
	case "json", "http", "crypto", "url", "time", "log", "kv", "settings", "sftp",
		"string", "table", "math", "os", "coroutine", "package", "_G":
		return true
	}
	return false
}

// checkModuleName validates a module name for field.
func checkModuleName(field, name string) error {
	if !runtime.ValidModuleName(name) {
		return market.Invalid(field, "%q is not a module name (letters, digits, '_' and '-', joined by dots, at most 128 bytes)", name)
	}
	if reservedName(name) {
		return market.Invalid(field, "%q is a built-in module name", name)
	}
	return nil
}

// internal wraps a store failure.
func internal(err error, what string) error {
	if err == nil {
		return nil
	}
	var me *market.Error
	if errors.As(err, &me) {
		return err
	}
	return market.Internal(err, "%s", what)
}
