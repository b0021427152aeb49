package operator

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// Trimming of stored run records.
const (
	MaxRunLogLines     = 50
	MaxRunLogBytes     = 1024
	MaxRunErrorBytes   = 2048
	MaxRunResultBytes  = 4096
	trimmedMark        = "…[trimmed]"
	redactedMark       = "[REDACTED]"
	secretResultMarker = "secret"
)

// RunOf builds the record of one run from what the runtime returned. res
// may be nil (no Lua state was free); err is the run's error, if any.
// The runtime has already redacted secret settings from res.Record; the
// result is stored as JSON and redacted when recorded (Service.Record).
func RunOf(kind, name string, res *runtime.Result, err error) Run {
	r := Run{Kind: kind, Name: name, OK: err == nil}
	if res != nil {
		rec := &res.Record
		r.Started, r.Duration = rec.Started, since(rec.Duration)
		r.LogsDropped, r.Modules = rec.LogsDropped, rec.Modules
		r.Instructions, r.HTTPRequests, r.Limit = rec.Instructions, rec.HTTPRequests, rec.Limit
		for _, l := range rec.Logs {
			r.Logs = append(r.Logs, RunLog{Time: l.Time, Level: l.Level, Message: l.Message, Fields: l.Fields})
		}
		if err != nil {
			r.Error = rec.ErrorText
		}
		if err == nil && res.Value != nil {
			if b, jerr := json.Marshal(res.Value); jerr == nil {
				r.Result = string(b)
			}
		}
	} else {
		r.Started = time.Now()
	}
	if err != nil {
		if r.Error == "" {
			r.Error = err.Error()
		}
		var se *runtime.ScriptError
		var le *runtime.LimitError
		switch {
		case errors.As(err, &se):
			r.ErrorLine = se.Line
		case errors.As(err, &le):
			r.ErrorLine, r.Limit = le.Line, le.Limit
		}
	}
	return r
}

// Record stores a run record in the background, after redacting the
// secret settings its run could see and trimming it; it never blocks.
// It also logs the run (debug when it went well, warn when not) and
// tells Config.Observe.
func (s *Service) Record(r Run) {
	view := s.settings.Load().forProvider(r.Provider)
	r.Error = trim(view.redact(r.Error), MaxRunErrorBytes)
	r.Rejected = view.redact(r.Rejected)
	r.Result = trim(view.redact(r.Result), MaxRunResultBytes)
	if len(r.Logs) > MaxRunLogLines {
		r.LogsDropped += len(r.Logs) - MaxRunLogLines
		r.Logs = r.Logs[:MaxRunLogLines]
	}
	for i := range r.Logs {
		l := &r.Logs[i]
		l.Message = trim(view.redact(l.Message), MaxRunLogBytes)
		if len(l.Fields) > 0 {
			b, err := json.Marshal(l.Fields)
			if err != nil || len(b) > MaxRunLogBytes {
				l.Fields = map[string]any{"trimmed": true}
			} else if red := view.redact(string(b)); red != string(b) {
				var f map[string]any
				if json.Unmarshal([]byte(red), &f) == nil {
					l.Fields = f
				}
			}
		}
	}
	level := slog.LevelDebug
	if !r.OK {
		level = slog.LevelWarn
	}
	if s.log.Enabled(context.Background(), level) {
		s.log.LogAttrs(context.Background(), level, "script run",
			slog.String("kind", r.Kind), slog.String("name", r.Name), slog.String("event", r.Event),
			slog.String("version", r.Version), slog.String("order", r.OrderID), slog.String("provider", r.Provider),
			slog.Float64("duration_ms", r.Duration), slog.Bool("ok", r.OK), slog.String("error", r.Error),
			slog.Int("line", r.ErrorLine), slog.String("limit", r.Limit), slog.String("rejected", r.Rejected))
	}
	s.observe(r)
	s.rec.add(r)
}

// RedactScriptResult hides the service secret a start script returns
// ({secret = ...}) before its result is recorded: it is the buyer's
// login, sealed to the buyer and never stored in the clear.
func RedactScriptResult(v map[string]any) map[string]any {
	if _, ok := v[secretResultMarker]; !ok {
		return v
	}
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = x
	}
	out[secretResultMarker] = redactedMark
	return out
}

// trim cuts s to at most n bytes (on a rune boundary) with a mark.
func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(trimmedMark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + trimmedMark
}

// RunPage is one page of recorded runs.
type RunPage struct {
	List       []Run             `json:"list"`
	Pagination market.Pagination `json:"pagination"`
}

// Runs lists recorded runs, newest first. Runs recorded before the call
// are included (pending records are written first).
func (s *Service) Runs(ctx context.Context, caller market.Caller, f RunFilter) (*RunPage, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	if f.Page.Current < 1 {
		f.Page.Current = 1
	}
	if f.Page.PageSize < 1 {
		f.Page.PageSize = market.DefaultPageSize
	}
	f.Page.PageSize = min(f.Page.PageSize, market.MaxPageSize)
	if err := s.rec.flush(ctx); err != nil {
		return nil, err
	}
	list, total, err := s.store.Runs(ctx, f)
	if err != nil {
		return nil, internal(err, "list runs")
	}
	if list == nil {
		list = []Run{}
	}
	return &RunPage{List: list, Pagination: market.Pagination{Total: total, Current: f.Page.Current, PageSize: f.Page.PageSize}}, nil
}

// GetRun returns one recorded run.
func (s *Service) GetRun(ctx context.Context, caller market.Caller, id int64) (*Run, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	if err := s.rec.flush(ctx); err != nil {
		return nil, err
	}
	r, err := s.store.Run(ctx, id)
	if market.KindOf(err) == market.KindNotFound {
		return nil, market.NotFound("run", strconv.FormatInt(id, 10))
	}
	return r, internal(err, "read run")
}

// recItem is a run to store, or a flush barrier.
type recItem struct {
	run     Run
	barrier chan struct{}
}

// recorder writes run records to the store in batches from one
// goroutine, so runs never wait for the database.
type recorder struct {
	store   Store
	log     *slog.Logger
	ch      chan recItem
	batch   int
	stop    chan struct{}
	done    chan struct{}
	closed  atomic.Bool
	dropped atomic.Uint64
	once    sync.Once
}

func newRecorder(store Store, log *slog.Logger, queue, batch int) *recorder {
	r := &recorder{store: store, log: log, ch: make(chan recItem, queue), batch: batch,
		stop: make(chan struct{}), done: make(chan struct{})}
	go r.loop()
	return r
}

// add queues a run; a full queue drops it and counts the drop.
func (r *recorder) add(run Run) {
	if r.closed.Load() {
		r.dropped.Add(1)
		return
	}
	select {
	case r.ch <- recItem{run: run}:
	default:
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Warn("run records dropped: the record queue is full", "dropped", r.dropped.Load())
		}
	}
}

// flush waits until every run queued before it is stored.
func (r *recorder) flush(ctx context.Context) error {
	if r.closed.Load() {
		return nil
	}
	b := make(chan struct{})
	select {
	case r.ch <- recItem{barrier: b}:
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-b:
		return nil
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) loop() {
	defer close(r.done)
	runs := make([]Run, 0, r.batch)
	var barriers []chan struct{}
	take := func(it recItem) {
		if it.barrier != nil {
			barriers = append(barriers, it.barrier)
		} else {
			runs = append(runs, it.run)
		}
	}
	for {
		select {
		case it := <-r.ch:
			take(it)
		case <-r.stop:
			for drained := false; !drained; {
				select {
				case it := <-r.ch:
					take(it)
				default:
					drained = true
				}
			}
			r.write(runs)
			for _, b := range barriers {
				close(b)
			}
			return
		}
	fill:
		for len(runs) < r.batch {
			select {
			case it := <-r.ch:
				take(it)
			default:
				break fill
			}
		}
		r.write(runs)
		runs = runs[:0]
		for _, b := range barriers {
			close(b)
		}
		barriers = barriers[:0]
	}
}

// write stores a batch; a failure is logged and the batch counted as
// dropped (run records must never stop scripts).
func (r *recorder) write(runs []Run) {
	if len(runs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.store.InsertRuns(ctx, runs); err != nil {
		r.dropped.Add(uint64(len(runs)))
		r.log.Warn("run records not stored", "runs", len(runs), "err", err)
	}
}

// close writes the queued records (until ctx ends) and stops.
func (r *recorder) close(ctx context.Context) error {
	r.once.Do(func() {
		r.closed.Store(true)
		close(r.stop)
	})
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
