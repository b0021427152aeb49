package operator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vmarket/vmarket/market"
)

// Hooks directory layout: DIR/modules/<name>.lua are modules (a file in a
// subfolder, modules/a/b.lua, is module "a.b"); DIR/hooks/<name>.lua are
// hook modules named <name>, bound to every event whose conventional
// function (FunctionFor) they export.
const (
	DirModules = "modules"
	DirHooks   = "hooks"
)

// reloadDelay lets a burst of file events (an editor's save) settle before
// the directory is scanned.
const reloadDelay = 150 * time.Millisecond

// DirStatus is the state of the hooks directory after its last scan.
type DirStatus struct {
	Dir     string    `json:"dir"`
	Scanned time.Time `json:"scanned"`
	// Scans counts the scans since start; Changes those that changed
	// something.
	Scans   int `json:"scans"`
	Changes int `json:"changes"`
	// Error is a failure of the scan itself (directory unreadable, store
	// failure); file errors are on the files.
	Error string    `json:"error,omitempty"`
	Files []DirFile `json:"files"`
}

// DirFile is one Lua file of the hooks directory.
type DirFile struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"` // "module" or "hook"
	Module string `json:"module"`
	Hash   string `json:"hash,omitempty"`
	// Version is the module version serving the file's content; for a
	// broken file, the version that keeps serving (0: none).
	Version int      `json:"version,omitempty"`
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Line    int      `json:"line,omitempty"`
	Events  []string `json:"events,omitempty"`
}

// DirState returns the hooks directory's status, nil when no directory
// is loaded.
func (s *Service) DirState(ctx context.Context, caller market.Caller) (*DirStatus, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	return s.dir.Load(), nil
}

// dirFile is a scanned file with its source.
type dirFile struct {
	DirFile
	source string
}

// scanDir reads the Lua files of dir.
func scanDir(dir string) ([]*dirFile, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("hooks directory: %w", err)
	}
	var out []*dirFile
	for _, kind := range []string{DirModules, DirHooks} {
		root := filepath.Join(dir, kind)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && path == root {
					return filepath.SkipDir
				}
				return err
			}
			if d.IsDir() {
				if path != root && (strings.HasPrefix(d.Name(), ".") || kind == DirHooks) {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(d.Name(), ".lua") || strings.HasPrefix(d.Name(), ".") || strings.HasSuffix(d.Name(), "_test.lua") {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			name := strings.ReplaceAll(filepath.ToSlash(strings.TrimSuffix(rel, ".lua")), "/", ".")
			f := &dirFile{DirFile: DirFile{Path: filepath.ToSlash(filepath.Join(kind, rel)), Module: name, Kind: strings.TrimSuffix(kind, "s")}}
			b, err := os.ReadFile(path)
			if err != nil {
				f.Error = err.Error()
			} else {
				f.source = string(b)
				f.Hash = sourceHash(f.source)
			}
			out = append(out, f)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("hooks directory: %w", err)
		}
	}
	return out, nil
}

// LoadDir scans the hooks directory once and applies it atomically: new
// or changed files become new active module versions, hook files are
// bound to the events they export, files gone take their modules and
// bindings with them. A broken file is reported in the status and the
// version it would replace keeps serving.
func (s *Service) LoadDir(ctx context.Context, dir string) (*DirStatus, error) {
	prev := s.dir.Load()
	st := &DirStatus{Dir: dir, Scanned: s.cfg.Now(), Files: []DirFile{}}
	if prev != nil {
		st.Scans, st.Changes = prev.Scans, prev.Changes
	}
	st.Scans++
	changed, err := s.loadDir(ctx, dir, st)
	if err != nil {
		st.Error = err.Error()
		s.log.Error("hooks directory not loaded", "dir", dir, "err", err)
	}
	if changed {
		st.Changes++
	}
	s.dir.Store(st)
	return st, err
}

func (s *Service) loadDir(ctx context.Context, dir string, st *DirStatus) (bool, error) {
	files, err := scanDir(dir)
	if err != nil {
		return false, err
	}
	snap := s.mods.Load()
	// Check every file: compile, and list a hook file's exports.
	byName := map[string][]*dirFile{}
	for _, f := range files {
		byName[f.Module] = append(byName[f.Module], f)
	}
	for _, f := range files {
		switch {
		case f.Error != "":
		case len(byName[f.Module]) > 1:
			f.Error = fmt.Sprintf("module %q is defined by more than one file", f.Module)
		case checkModuleName("module", f.Module) != nil:
			f.Error = checkModuleName("module", f.Module).Error()
		default:
			if err := CheckSource(f.Module, f.source); err != nil {
				f.Error, f.Line = err.Error(), lineOf(err)
				break
			}
			if f.Kind == "hook" {
				exports, err := s.exports(ctx, f.Module, f.source)
				if err != nil {
					f.Error, f.Line = err.Error(), lineOf(err)
					break
				}
				for _, e := range Events() {
					if slices.Contains(exports, e.Function) {
						f.Events = append(f.Events, e.Event)
					}
				}
			}
		}
		f.OK = f.Error == ""
	}

	// Work out the changes against the serving snapshot.
	present := map[string]bool{}
	var add []*dirFile
	for _, f := range files {
		present[f.Module] = true
		if !f.OK {
			continue
		}
		if a, ok := snap.modules[f.Module]; ok && a.hash == f.Hash {
			f.Version = a.version
			continue
		}
		add = append(add, f)
	}
	var remove []string
	for name, a := range snap.modules {
		if a.origin == OriginDir && !present[name] {
			remove = append(remove, name)
		}
	}
	sort.Strings(remove)
	// Hook bindings of the directory: those of good hook files, and the
	// old ones of broken hook files (they keep serving).
	var want []Hook
	for _, f := range files {
		if f.Kind != "hook" {
			continue
		}
		if f.OK {
			for _, e := range f.Events {
				want = append(want, Hook{Event: e, Module: f.Module, Function: FunctionFor(e), Origin: OriginDir})
			}
			continue
		}
		for _, hs := range snap.hooks {
			for _, h := range hs {
				if h.Origin == OriginDir && h.Module == f.Module {
					want = append(want, h.Hook)
				}
			}
		}
	}
	var have []Hook
	for _, hs := range snap.hooks {
		for _, h := range hs {
			if h.Origin == OriginDir {
				have = append(have, h.Hook)
			}
		}
	}
	hooksChanged := !sameBindings(have, want)

	if len(add) > 0 || len(remove) > 0 || hooksChanged {
		now := s.cfg.Now().Unix()
		err := s.change(ctx, func(tx Tx) error {
			for _, f := range add {
				m := &ModuleVersion{Name: f.Module, Hash: f.Hash, Source: f.source, Size: len(f.source),
					Origin: OriginDir, CreatedAt: now, CreatedBy: "hooks-dir"}
				if err := tx.AddModuleVersion(ctx, m); err != nil {
					return err
				}
				if err := tx.SetActive(ctx, f.Module, m.Version, "hooks-dir", now); err != nil {
					return err
				}
				f.Version = m.Version
			}
			if hooksChanged {
				if err := tx.DeleteHooksOf(ctx, OriginDir); err != nil {
					return err
				}
				for i := range want {
					h := want[i]
					h.ID, h.CreatedAt, h.CreatedBy = 0, now, "hooks-dir"
					if err := tx.AddHook(ctx, &h); err != nil {
						return err
					}
				}
			}
			for _, name := range remove {
				if err := tx.SetActive(ctx, name, 0, "hooks-dir", now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			for _, f := range add {
				f.Version = 0
			}
			return false, fmt.Errorf("apply hooks directory: %w", err)
		}
		s.log.Info("hooks directory loaded", "dir", dir, "modules_changed", len(add), "modules_removed", len(remove), "hooks_changed", hooksChanged)
	}
	snap = s.mods.Load()
	for _, f := range files {
		if !f.OK {
			if a, ok := snap.modules[f.Module]; ok {
				f.Version = a.version
			}
			s.log.Warn("hooks directory file is broken; the previous version keeps serving", "file", f.Path, "err", f.Error, "line", f.Line, "serving_version", f.Version)
		}
		st.Files = append(st.Files, f.DirFile)
	}
	return len(add) > 0 || len(remove) > 0 || hooksChanged, nil
}

// sameBindings compares two sets of bindings by event, module, function.
func sameBindings(a, b []Hook) bool {
	key := func(hs []Hook) []string {
		out := make([]string, len(hs))
		for i, h := range hs {
			out[i] = h.Event + "\x00" + h.Module + "\x00" + h.Function
		}
		sort.Strings(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

// lineOf returns details.line of a market error, else 0.
func lineOf(err error) int {
	var me *market.Error
	if errors.As(err, &me) {
		if l, ok := me.Details["line"].(int); ok {
			return l
		}
	}
	return 0
}

// WatchDir loads the hooks directory, then watches it in the background
// and reloads it whenever a file in it changes, until ctx ends or stop is
// called (stop waits for the watcher to end). The first load's error
// (e.g. a missing directory) is returned and nothing is watched; later
// errors are logged and shown in DirState.
func (s *Service) WatchDir(ctx context.Context, dir string) (stop func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch hooks directory: %w", err)
	}
	if err := s.watchTree(w, dir); err != nil {
		w.Close()
		return nil, err
	}
	if _, err := s.LoadDir(ctx, dir); err != nil {
		w.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		s.watch(ctx, w, dir)
	}()
	return func() { cancel(); <-done }, nil
}

// watch reloads dir after each burst of file events until ctx ends.
func (s *Service) watch(ctx context.Context, w *fsnotify.Watcher, dir string) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					_ = s.watchTree(w, ev.Name)
				}
			}
			timer.Reset(reloadDelay)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			s.log.Warn("hooks directory watch error", "dir", dir, "err", err)
			timer.Reset(reloadDelay)
		case <-timer.C:
			// Pick up folders created since (modules/ or hooks/ made
			// after start).
			_ = s.watchTree(w, dir)
			_, _ = s.LoadDir(ctx, dir)
		}
	}
}

// watchTree watches dir and every folder under it.
func (s *Service) watchTree(w *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("watch hooks directory: %w", err)
		}
		if !d.IsDir() {
			return nil
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if slices.Contains(w.WatchList(), path) {
			return nil
		}
		if err := w.Add(path); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		return nil
	})
}
