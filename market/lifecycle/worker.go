// Package lifecycle is the worker that carries orders through their life:
// it leases durable jobs (start, stop, refund), runs the service type's
// pinned Lua script for each, and commits the resulting state change, the
// ledger entry and the next job in one transaction. Jobs are retried with
// exponential backoff; after the last failure the order is parked.
package lifecycle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/vmarket/vmarket/market"
)

// Config configures a Worker.
type Config struct {
	Store  market.Store
	Runner market.ScriptRunner
	// Hooks are told about filed, completed, refunded and failed orders
	// (default none).
	Hooks market.Hooks
	// Seal encrypts a service secret to the order's public key.
	Seal func(secret []byte, publicKey string) (string, error)
	// ExtraHosts are operator-allowed hosts every script may call.
	ExtraHosts []string
	Logger     *slog.Logger
	Now        func() time.Time
	// Owner names this worker in leases (default host-pid-random).
	Owner string
	// Concurrency is how many jobs run at once (default 8).
	Concurrency int
	// Lease is how long a job is held before another worker may take it
	// over (default 60 s); it must exceed the script deadline.
	Lease time.Duration
	// MaxAttempts is how often a job is tried before the order is parked
	// (default 5).
	MaxAttempts int
	// BackoffBase and BackoffMax shape the retry delay: base × 2^(n-1),
	// capped (defaults 1 s and 5 min).
	BackoffBase, BackoffMax time.Duration
	// Poll is the idle polling interval (default 500 ms); Wake cuts it
	// short.
	Poll time.Duration
	// Hour is the length of a billed hour (default one hour). Shorter
	// hours make demos and tests reach endAt quickly.
	Hour time.Duration
}

// Worker runs lifecycle jobs.
type Worker struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	srcMu   sync.Mutex
	sources map[string]string // script hash → source
}

// New returns a worker; call Run to start it.
func New(cfg Config) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Hooks == nil {
		cfg.Hooks = market.NoHooks{}
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 60 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = time.Second
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	if cfg.Hour < time.Second {
		cfg.Hour = time.Hour
	}
	return &Worker{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), sources: map[string]string{}}
}

// Wake tells the worker new jobs may be due. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run leases and runs jobs until ctx ends, then waits for the jobs in
// flight. Jobs interrupted by the end are picked up again after their
// lease expires, by this process after a restart or by another worker.
func (w *Worker) Run(ctx context.Context) error {
	slots := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-w.wake:
		}
		for {
			free := w.cfg.Concurrency - len(slots)
			if free == 0 {
				break
			}
			jobs, err := w.cfg.Store.LeaseJobs(ctx, w.cfg.Owner, w.cfg.Now(), w.cfg.Lease, free)
			if err != nil {
				if ctx.Err() == nil {
					w.log.Error("lease jobs", "err", err)
				}
				break
			}
			for _, j := range jobs {
				slots <- struct{}{}
				wg.Add(1)
				go func(j market.Job) {
					defer func() {
						<-slots
						wg.Done()
						w.Wake()
					}()
					// A job's own context outlives ctx's cancellation by
					// nothing: an interrupted job is retried after its lease.
					w.process(ctx, j)
				}(j)
			}
			if len(jobs) < free {
				break
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(w.cfg.Poll)
	}
}

// RunOnce leases and runs due jobs until none is left (tests and tools).
func (w *Worker) RunOnce(ctx context.Context) (int, error) {
	n := 0
	for {
		jobs, err := w.cfg.Store.LeaseJobs(ctx, w.cfg.Owner, w.cfg.Now(), w.cfg.Lease, w.cfg.Concurrency)
		if err != nil || len(jobs) == 0 {
			return n, err
		}
		var wg sync.WaitGroup
		for _, j := range jobs {
			wg.Add(1)
			go func(j market.Job) {
				defer wg.Done()
				w.process(ctx, j)
			}(j)
		}
		wg.Wait()
		n += len(jobs)
	}
}

// process runs one leased job and commits its outcome.
func (w *Worker) process(ctx context.Context, j market.Job) {
	log := w.log.With("job", j.ID, "kind", j.Kind, "order", j.OrderID, "attempt", j.Attempts+1)
	o, err := w.cfg.Store.Order(ctx, j.OrderID)
	if err != nil {
		log.Error("load order", "err", err)
		w.retry(ctx, j, o, err)
		return
	}
	switch j.Kind {
	case market.JobStart:
		err = w.start(ctx, j, o)
	case market.JobStop:
		err = w.stop(ctx, j, o)
	case market.JobRefund:
		err = w.refund(ctx, j, o)
	default:
		err = w.finish(ctx, j, market.JobFailed, "unknown job kind", "", nil)
	}
	switch {
	case err == nil:
		log.Debug("job done")
	case market.KindOf(err) == market.KindConflict && ctx.Err() == nil:
		// Lost the lease: another worker owns the job now.
		log.Warn("job not committed", "err", err)
	case ctx.Err() != nil:
		log.Info("job interrupted by shutdown; it will be retried", "err", err)
	default:
		log.Warn("job failed", "err", err)
		w.retry(ctx, j, o, err)
	}
}

// finish ends the job and applies change to the order (re-read inside the
// transaction) in one transaction. When the change committed, the order
// is told to the hooks of event (if not empty).
func (w *Worker) finish(ctx context.Context, j market.Job, state market.JobState, note string, event string, change func(tx market.Tx, o *market.Order) error) error {
	var changed *market.Order
	err := w.cfg.Store.Update(ctx, func(tx market.Tx) error {
		changed = nil
		// The job is finished first: a change that cancels the order's
		// queued jobs (park, refund) must not cancel this one, which would
		// make the lease check fail and roll everything back.
		if err := tx.FinishJob(ctx, &j, w.cfg.Owner, state, note, w.cfg.Now()); err != nil {
			return err
		}
		if change != nil {
			o, err := tx.Order(ctx, j.OrderID)
			if err != nil {
				return err
			}
			if err := change(tx, o); err != nil {
				return err
			}
			o.UpdatedAt = w.cfg.Now().Unix()
			if err := tx.UpdateOrder(ctx, o); err != nil {
				return err
			}
			changed = o
		}
		return nil
	})
	if err == nil && changed != nil && event != "" {
		w.cfg.Hooks.After(ctx, event, market.OrderPayload(changed))
		if event == market.EventServiceStartFailed && changed.Status == market.OrderRefund {
			w.cfg.Hooks.After(ctx, market.EventOrderRefunded, market.OrderPayload(changed))
		}
	}
	return err
}

// hourSeconds is a billed hour in seconds.
func (w *Worker) hourSeconds() int64 { return int64(w.cfg.Hour / time.Second) }

// backoff is the delay before attempt n+1 (n ≥ 1 failures so far).
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.BackoffBase
	for i := 1; i < n && d < w.cfg.BackoffMax; i++ {
		d *= 2
	}
	return min(d, w.cfg.BackoffMax)
}

// retry schedules the job again, or parks the order after the last
// attempt.
func (w *Worker) retry(ctx context.Context, j market.Job, o *market.Order, cause error) {
	msg := trim(cause.Error(), 2000)
	attempts := j.Attempts + 1
	if attempts < w.cfg.MaxAttempts {
		runAt := w.cfg.Now().Add(w.backoff(attempts))
		err := w.cfg.Store.Update(ctx, func(tx market.Tx) error {
			if o != nil {
				cur, err := tx.Order(ctx, j.OrderID)
				if err != nil {
					return err
				}
				cur.LastError = fmt.Sprintf("%s attempt %d failed: %s", j.Kind, attempts, msg)
				if err := tx.UpdateOrder(ctx, cur); err != nil {
					return err
				}
			}
			return tx.RetryJob(ctx, &j, w.cfg.Owner, runAt, msg, w.cfg.Now())
		})
		if err != nil && ctx.Err() == nil {
			w.log.Error("reschedule job", "job", j.ID, "err", err)
		}
		return
	}
	if o == nil {
		_ = w.finish(ctx, j, market.JobFailed, msg, "", nil)
		return
	}
	if err := w.park(ctx, j, msg); err != nil && ctx.Err() == nil {
		w.log.Error("park order", "job", j.ID, "order", j.OrderID, "err", err)
	}
}

// park ends an order whose job failed for the last time: the service is
// aborted and the error kept for provider and operator. A failed start of a
// refundable type refunds what was paid; a failed refund pays back the
// default prorated amount; a failed stop completes the order (the time was
// served) with the error kept.
func (w *Worker) park(ctx context.Context, j market.Job, msg string) error {
	w.log.Error("job failed for the last time; order parked", "job", j.ID, "kind", j.Kind, "order", j.OrderID, "err", msg)
	now := w.cfg.Now()
	event := map[market.JobKind]string{
		market.JobStart: market.EventServiceStartFailed, market.JobStop: market.EventOrderCompleted, market.JobRefund: market.EventOrderRefunded,
	}[j.Kind]
	return w.finish(ctx, j, market.JobFailed, msg, event, func(tx market.Tx, o *market.Order) error {
		o.LastError = fmt.Sprintf("%s failed after %d attempts: %s", j.Kind, w.cfg.MaxAttempts, msg)
		wasRunning := o.ServiceStatus == market.ServiceRunning
		o.ServiceStatus, o.ServiceAbortTS, o.ServiceActivated = market.ServiceAbort, now.Unix(), false
		switch j.Kind {
		case market.JobStart:
			t, err := tx.ServiceType(ctx, o.ServiceID)
			if err != nil {
				return err
			}
			if t.Refundable {
				return w.applyRefund(ctx, tx, o, o.AmountPaid-o.AmountRefunded, now)
			}
		case market.JobStop:
			if o.Status == market.OrderFiled || o.Status == market.OrderPaid {
				o.Status, o.CompleteTS = market.OrderComplete, now.Unix()
			}
		case market.JobRefund:
			if o.Status != market.OrderRefund {
				return w.applyRefund(ctx, tx, o, defaultRefund(o, wasRunning, now, w.hourSeconds()), now)
			}
		}
		return tx.CancelJobs(ctx, o.ID, w.cfg.Owner, now, market.JobStart, market.JobStop)
	})
}

// applyRefund records a refund of amount (capped at what is refundable)
// and marks the order refunded, cancelling its other jobs.
func (w *Worker) applyRefund(ctx context.Context, tx market.Tx, o *market.Order, amount market.Decimal, now time.Time) error {
	left := o.AmountPaid - o.AmountRefunded
	amount = max(0, min(amount, left))
	if amount > 0 {
		added, err := tx.AddPayment(ctx, &market.Payment{OrderID: o.ID, Kind: market.PaymentRefund, Amount: amount,
			Source: market.SourceRefund, Reference: o.ID, CreatedAt: now.Unix()})
		if err != nil {
			return err
		}
		if !added {
			return market.Errorf(market.KindConflict, "order %s was refunded already", o.ID)
		}
		o.AmountRefunded += amount
	}
	o.Status, o.RefundTS = market.OrderRefund, now.Unix()
	if o.ServiceStatus != market.ServiceAbort {
		o.ServiceStatus, o.ServiceAbortTS = market.ServiceAbort, now.Unix()
	}
	o.ServiceActivated = false
	return tx.CancelJobs(ctx, o.ID, w.cfg.Owner, now, market.JobStart, market.JobStop)
}

// defaultRefund pays back the unused whole hours of what was paid: all of
// it when the service never ran, otherwise paid × unused/duration where
// every started hour counts as used.
func defaultRefund(o *market.Order, ran bool, now time.Time, hour int64) market.Decimal {
	paid := o.AmountPaid - o.AmountRefunded
	if !ran || o.ServiceActivateTS == 0 || o.Duration <= 0 {
		return paid
	}
	elapsed := max(0, now.Unix()-o.ServiceActivateTS)
	used := elapsed/hour + 1 // the current hour has started
	if used >= o.Duration {
		return 0
	}
	// paid × unused / duration, rounded down to 1e-8.
	v, ok := paid.MulInt(o.Duration - used)
	if !ok {
		return market.Decimal(int64(float64(paid) * float64(o.Duration-used) / float64(o.Duration)))
	}
	return v / market.Decimal(o.Duration)
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
