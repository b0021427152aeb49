package operator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// MaxModuleBytes bounds a module's source.
const MaxModuleBytes = market.MaxScriptLen

// activeModule is the active version of one module in a snapshot.
type activeModule struct {
	name    string
	version int
	hash    string
	source  string
	origin  string
}

// tag is the version string runs record: "v<n>-<hash>".
func (m *activeModule) tag() string { return "v" + strconv.Itoa(m.version) + "-" + m.hash }

// boundHook is a hook binding with its module resolved in a snapshot.
type boundHook struct {
	Hook
	mod *activeModule
}

// moduleSnapshot is one immutable state of the active modules and the
// hook bindings.
type moduleSnapshot struct {
	gen     uint64
	modules map[string]*activeModule
	hooks   map[string][]boundHook
	bundled runtime.ModuleResolver
}

// Resolve implements runtime.ModuleResolver: the snapshot's active
// operator module, else the bundled one.
func (m *moduleSnapshot) Resolve(ctx context.Context, name string) (string, string, bool, error) {
	if a, ok := m.modules[name]; ok {
		return a.source, a.tag(), true, nil
	}
	if m.bundled != nil {
		return m.bundled.Resolve(ctx, name)
	}
	return "", "", false, nil
}

// RunResolver returns the module resolver of one run: the active operator
// modules as they are now, then the bundled ones. Take it once per run so
// that every require of the run sees the same versions.
func (s *Service) RunResolver() runtime.ModuleResolver { return s.mods.Load() }

// Resolver returns a resolver that reads the current snapshot at every
// require (for engines whose runs do not pass RunResolver).
func (s *Service) Resolver() runtime.ModuleResolver {
	return runtime.ResolverFunc(func(ctx context.Context, name string) (string, string, bool, error) {
		return s.mods.Load().Resolve(ctx, name)
	})
}

// Generation counts the changes of modules and hooks since start.
func (s *Service) Generation() uint64 { return s.mods.Load().gen }

// reloadModules rebuilds the snapshot from the store. Callers hold s.mu
// (or are New).
func (s *Service) reloadModules(ctx context.Context) error {
	active, err := s.store.ActiveModules(ctx)
	if err != nil {
		return internal(err, "load active modules")
	}
	hooks, err := s.store.Hooks(ctx)
	if err != nil {
		return internal(err, "load hooks")
	}
	snap := &moduleSnapshot{modules: map[string]*activeModule{}, hooks: map[string][]boundHook{}, bundled: s.cfg.Bundled}
	if old := s.mods.Load(); old != nil {
		snap.gen = old.gen + 1
	}
	for _, m := range active {
		snap.modules[m.Name] = &activeModule{name: m.Name, version: m.Version, hash: m.Hash, source: m.Source, origin: m.Origin}
	}
	for _, h := range hooks {
		if mod, ok := snap.modules[h.Module]; ok {
			snap.hooks[h.Event] = append(snap.hooks[h.Event], boundHook{Hook: h, mod: mod})
		}
	}
	s.mods.Store(snap)
	return nil
}

// change runs fn in one store transaction and reloads the snapshot, all
// under the change lock.
func (s *Service) change(ctx context.Context, fn func(tx Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Update(ctx, fn); err != nil {
		return err
	}
	return s.reloadModules(ctx)
}

// sourceHash is the short sha256 of a module source.
func sourceHash(src string) string {
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:6])
}

// CheckSource compiles a module's source; a syntax error is a KindInvalid
// error on field "source" with details.line.
func CheckSource(name, source string) error {
	if len(source) > MaxModuleBytes {
		return &market.Error{Kind: market.KindTooLarge, Field: "source", Message: fmt.Sprintf("is longer than %d bytes", MaxModuleBytes)}
	}
	if strings.TrimSpace(source) == "" {
		return market.Invalid("source", "is empty")
	}
	if _, err := runtime.Compile(name, source); err != nil {
		var se *runtime.ScriptError
		if errors.As(err, &se) {
			line, msg := se.Line, se.Message
			if line < 0 {
				line = 1 + strings.Count(source, "\n")
				msg += " at end of module"
			}
			return market.Invalid("source", "%s:%d: %s", name, line, msg).WithDetail("line", line)
		}
		return market.Invalid("source", "%v", err)
	}
	return nil
}

// UploadModule stores source as a new version of module name after
// compiling it, and makes it active when activate is set.
func (s *Service) UploadModule(ctx context.Context, caller market.Caller, name, source string, activate bool) (*ModuleVersion, error) {
	if err := canWrite(caller, "uploading a module"); err != nil {
		return nil, err
	}
	if err := checkModuleName("name", name); err != nil {
		return nil, err
	}
	if err := CheckSource(name, source); err != nil {
		return nil, err
	}
	now := s.cfg.Now().Unix()
	m := &ModuleVersion{Name: name, Hash: sourceHash(source), Source: source, Size: len(source),
		Origin: OriginAPI, CreatedAt: now, CreatedBy: actor(caller), Active: activate}
	err := s.change(ctx, func(tx Tx) error {
		if err := tx.AddModuleVersion(ctx, m); err != nil {
			return err
		}
		if activate {
			return tx.SetActive(ctx, name, m.Version, actor(caller), now)
		}
		return nil
	})
	if err != nil {
		return nil, internal(err, "store module")
	}
	s.log.Info("operator module uploaded", "module", name, "version", m.Version, "hash", m.Hash, "active", activate, "by", actor(caller))
	m.Source = ""
	return m, nil
}

// Modules lists the registry's modules.
func (s *Service) Modules(ctx context.Context, caller market.Caller) ([]Module, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	mods, err := s.store.Modules(ctx)
	return mods, internal(err, "list modules")
}

// ModuleVersions lists the versions of a module, newest first, with its
// activation history.
func (s *Service) ModuleVersions(ctx context.Context, caller market.Caller, name string) ([]ModuleVersion, []Activation, error) {
	if err := canRead(caller); err != nil {
		return nil, nil, err
	}
	vs, err := s.store.ModuleVersions(ctx, name)
	if err != nil {
		return nil, nil, internal(err, "list module versions")
	}
	if len(vs) == 0 {
		return nil, nil, market.NotFound("module", name)
	}
	hist, err := s.store.Activations(ctx, name, 50)
	return vs, hist, internal(err, "list activations")
}

// ModuleVersion returns one version with its source; version 0 is the
// active one.
func (s *Service) ModuleVersion(ctx context.Context, caller market.Caller, name string, version int) (*ModuleVersion, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	if version == 0 {
		a, ok := s.mods.Load().modules[name]
		if !ok {
			return nil, market.Errorf(market.KindNotFound, "module %q has no active version", name)
		}
		version = a.version
	}
	m, err := s.store.ModuleVersion(ctx, name, version)
	return m, internal(err, "read module version")
}

// Activate makes the given versions active, all at once: the next run
// sees all of them or none. A version of 0 deactivates its module.
func (s *Service) Activate(ctx context.Context, caller market.Caller, versions map[string]int) error {
	if err := canWrite(caller, "activating modules"); err != nil {
		return err
	}
	if len(versions) == 0 {
		return market.Invalid("versions", "name at least one module and version")
	}
	names := slices.Sorted(maps.Keys(versions))
	now := s.cfg.Now().Unix()
	err := s.change(ctx, func(tx Tx) error {
		for _, n := range names {
			v := versions[n]
			if v < 0 {
				return market.Invalid("versions."+n, "must be a version number (0 deactivates)")
			}
			if v > 0 {
				if _, err := tx.ModuleVersion(ctx, n, v); err != nil {
					return err
				}
			} else if err := s.checkUnbound(ctx, tx, n); err != nil {
				return err
			}
			if err := tx.SetActive(ctx, n, v, actor(caller), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return internal(err, "activate modules")
	}
	s.log.Info("operator modules activated", "versions", versions, "by", actor(caller))
	return nil
}

// checkUnbound refuses to remove a module that hooks are bound to.
func (s *Service) checkUnbound(ctx context.Context, tx Tx, name string) error {
	hooks, err := tx.Hooks(ctx)
	if err != nil {
		return err
	}
	var bound []string
	for _, h := range hooks {
		if h.Module == name {
			bound = append(bound, fmt.Sprintf("%s (hook %d)", h.Event, h.ID))
		}
	}
	if len(bound) > 0 {
		return market.Errorf(market.KindConflict, "module %q is bound to %s; unbind its hooks first", name, strings.Join(bound, ", ")).
			WithDetail("hooks", bound)
	}
	return nil
}

// Rollback re-activates the version that was active before the current
// one and returns it.
func (s *Service) Rollback(ctx context.Context, caller market.Caller, name string) (int, error) {
	if err := canWrite(caller, "rolling back a module"); err != nil {
		return 0, err
	}
	var target int
	now := s.cfg.Now().Unix()
	err := s.change(ctx, func(tx Tx) error {
		hist, err := tx.Activations(ctx, name, 1000)
		if err != nil {
			return err
		}
		if len(hist) == 0 {
			return market.NotFound("module", name)
		}
		current := hist[0].Version
		for _, a := range hist[1:] {
			if a.Version == current || a.Version == 0 {
				continue
			}
			if _, err := tx.ModuleVersion(ctx, name, a.Version); err != nil {
				if market.KindOf(err) == market.KindNotFound {
					continue // deleted since
				}
				return err
			}
			target = a.Version
			break
		}
		if target == 0 {
			return market.Errorf(market.KindConflict, "module %q has no earlier active version to roll back to", name)
		}
		return tx.SetActive(ctx, name, target, actor(caller), now)
	})
	if err != nil {
		return 0, internal(err, "roll back module")
	}
	s.log.Info("operator module rolled back", "module", name, "version", target, "by", actor(caller))
	return target, nil
}

// DeleteModule removes a module with all its versions; version > 0
// removes only that version, which must not be the active one.
func (s *Service) DeleteModule(ctx context.Context, caller market.Caller, name string, version int) error {
	if err := canWrite(caller, "deleting a module"); err != nil {
		return err
	}
	err := s.change(ctx, func(tx Tx) error {
		vs, err := tx.ModuleVersions(ctx, name)
		if err != nil {
			return err
		}
		if len(vs) == 0 {
			return market.NotFound("module", name)
		}
		if version > 0 {
			for _, v := range vs {
				if v.Version == version {
					if v.Active {
						return market.Errorf(market.KindConflict, "version %d of module %q is active; activate another version first", version, name)
					}
					return tx.DeleteModuleVersion(ctx, name, version)
				}
			}
			return market.Errorf(market.KindNotFound, "module %q has no version %d", name, version)
		}
		if err := s.checkUnbound(ctx, tx, name); err != nil {
			return err
		}
		return tx.DeleteModule(ctx, name)
	})
	if err != nil {
		return internal(err, "delete module")
	}
	s.log.Info("operator module deleted", "module", name, "version", version, "by", actor(caller))
	return nil
}

// HookList is the answer of ListHooks.
type HookList struct {
	Hooks  []Hook      `json:"hooks"`
	Events []EventInfo `json:"events"`
}

// ListHooks lists the hook bindings and the events they may bind to.
func (s *Service) ListHooks(ctx context.Context, caller market.Caller) (*HookList, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	hooks, err := s.store.Hooks(ctx)
	if err != nil {
		return nil, internal(err, "list hooks")
	}
	if hooks == nil {
		hooks = []Hook{}
	}
	return &HookList{Hooks: hooks, Events: Events()}, nil
}

// BindHook binds a function of an active module to an event; an empty
// function is the event's conventional one (FunctionFor). The active
// version must export the function.
func (s *Service) BindHook(ctx context.Context, caller market.Caller, h Hook) (*Hook, error) {
	if err := canWrite(caller, "binding a hook"); err != nil {
		return nil, err
	}
	if !validEvent(h.Event) {
		return nil, market.Invalid("event", "%q is not a hook event", h.Event).WithDetail("events", eventNames())
	}
	if err := checkModuleName("module", h.Module); err != nil {
		return nil, err
	}
	if h.Function == "" {
		h.Function = FunctionFor(h.Event)
	}
	if !runtime.ValidModuleName(h.Function) || strings.Contains(h.Function, ".") {
		return nil, market.Invalid("function", "%q is not a function name", h.Function)
	}
	mod, ok := s.mods.Load().modules[h.Module]
	if !ok {
		return nil, market.Errorf(market.KindConflict, "module %q has no active version", h.Module).WithDetail("field", "module")
	}
	exports, err := s.exports(ctx, mod.name, mod.source)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(exports, h.Function) {
		return nil, market.Invalid("function", "module %q (v%d) does not export %s", h.Module, mod.version, h.Function).
			WithDetail("exports", exports)
	}
	h.ID, h.Origin, h.CreatedAt, h.CreatedBy = 0, OriginAPI, s.cfg.Now().Unix(), actor(caller)
	if err := s.change(ctx, func(tx Tx) error { return tx.AddHook(ctx, &h) }); err != nil {
		if market.KindOf(err) == market.KindConflict {
			return nil, market.Errorf(market.KindConflict, "%s.%s is already bound to %s", h.Module, h.Function, h.Event)
		}
		return nil, internal(err, "bind hook")
	}
	s.log.Info("operator hook bound", "event", h.Event, "module", h.Module, "function", h.Function, "by", h.CreatedBy)
	return &h, nil
}

// UnbindHook removes a hook binding.
func (s *Service) UnbindHook(ctx context.Context, caller market.Caller, id int64) error {
	if err := canWrite(caller, "unbinding a hook"); err != nil {
		return err
	}
	err := s.change(ctx, func(tx Tx) error {
		ok, err := tx.DeleteHook(ctx, id)
		if err == nil && !ok {
			err = market.NotFound("hook", strconv.FormatInt(id, 10))
		}
		return err
	})
	if err != nil {
		return internal(err, "unbind hook")
	}
	s.log.Info("operator hook unbound", "id", id, "by", actor(caller))
	return nil
}

func eventNames() []string {
	var out []string
	for _, e := range Events() {
		out = append(out, e.Event)
	}
	return out
}

// exportsScript loads a module chunk with load() and lists the names of
// the functions its table exports; it runs without http or kv.
const exportsScript = `local input = ...
local f, err = load(input.source, "=" .. input.name)
if not f then error(err, 0) end
local m = f(input.name)
if type(m) ~= "table" then
  error("module must return a table of functions, not " .. type(m), 0)
end
local names = {}
for k, v in pairs(m) do
  if type(k) == "string" and type(v) == "function" then names[#names + 1] = k end
end
return {exports = names}
`

// positionRE finds "name:line:" in an error raised by a loaded chunk.
var positionRE = regexp.MustCompile(`:(\d+): `)

// exports runs a module's top level in the sandbox (no http, no kv, a
// short deadline) and returns the names of the functions it exports,
// sorted. A failure is a KindInvalid error with details.line when known.
func (s *Service) exports(ctx context.Context, name, source string) ([]string, error) {
	res, err := s.cfg.Engine.Run(ctx, runtime.Script{Name: "exports", Source: exportsScript},
		map[string]any{"name": name, "source": source},
		runtime.RunOptions{Timeout: s.cfg.BeforeTimeout, Resolver: s.RunResolver()})
	if err != nil {
		if errors.Is(err, runtime.ErrBusy) {
			return nil, &market.Error{Kind: market.KindBusy, Message: "script engine busy", Err: err}
		}
		msg, line := err.Error(), 0
		var se *runtime.ScriptError
		if errors.As(err, &se) {
			msg = se.Message
			if se.Chunk == name && se.Line > 0 {
				line = se.Line
			}
		}
		if m := positionRE.FindStringSubmatch(msg); m != nil && line == 0 {
			line, _ = strconv.Atoi(m[1])
		}
		e := market.Invalid("source", "loading module %s: %s", name, msg)
		if line > 0 {
			e = e.WithDetail("line", line)
		}
		return nil, e
	}
	var out []string
	if m, ok := res.Value.(map[string]any); ok {
		if list, ok := m["exports"].([]any); ok {
			for _, v := range list {
				if n, ok := v.(string); ok {
					out = append(out, n)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// since formats a duration in milliseconds for run records.
func since(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
