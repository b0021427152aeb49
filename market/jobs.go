package market

import (
	"context"
	"time"
)

// JobKind names a lifecycle step.
type JobKind string

// Lifecycle job kinds.
const (
	JobStart  JobKind = "start"
	JobStop   JobKind = "stop"
	JobRefund JobKind = "refund"
)

// JobState is where a job is in its life.
type JobState string

// Job states.
const (
	JobQueued    JobState = "queued"
	JobDone      JobState = "done"
	JobFailed    JobState = "failed"
	JobCancelled JobState = "cancelled"
)

// Job is a durable lifecycle step of one order. Jobs are queued in the
// same transaction as the state change that implies them.
type Job struct {
	ID        int64
	OrderID   string
	Kind      JobKind
	State     JobState
	RunAt     time.Time
	Attempts  int
	LastError string
}

// IdempotencyKey is the key handed to the job's script: order id + step.
// A retried job gets the same key, so the provider can dedupe.
func (j *Job) IdempotencyKey() string { return j.OrderID + ":" + string(j.Kind) }

// JobQueue is the durable queue behind the lifecycle worker.
type JobQueue interface {
	// LeaseJobs takes up to limit due jobs for owner until now+lease, never
	// two of the same order, skipping orders with a job leased by anyone.
	// Expired leases (a crashed worker) are taken over.
	LeaseJobs(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]Job, error)
	// QueueDepth counts queued jobs that are due now.
	QueueDepth(ctx context.Context, now time.Time) (int, error)
}

// JobWriter changes jobs inside a transaction.
type JobWriter interface {
	// EnqueueJob adds a queued job and sets its ID.
	EnqueueJob(ctx context.Context, j *Job) error
	// FinishJob ends a leased job (done, failed or cancelled). It fails
	// with KindConflict when owner no longer holds the lease, so a job
	// taken over by another worker cannot take effect twice.
	FinishJob(ctx context.Context, j *Job, owner string, state JobState, lastError string, now time.Time) error
	// RetryJob releases a leased job to run again at runAt, counting the
	// attempt; KindConflict when owner no longer holds the lease.
	RetryJob(ctx context.Context, j *Job, owner string, runAt time.Time, lastError string, now time.Time) error
	// CancelJobs cancels an order's queued jobs of the given kinds that are
	// not leased by someone else than owner ("" cancels unleased ones only).
	CancelJobs(ctx context.Context, orderID, owner string, now time.Time, kinds ...JobKind) error
	// QueuedJob returns the order's queued job of kind, if any.
	QueuedJob(ctx context.Context, orderID string, kind JobKind) (*Job, error)
}

// ScriptRun is one lifecycle script execution the worker asks for.
type ScriptRun struct {
	Step JobKind
	// Hash and Source are the pinned script.
	Hash   string
	Source string
	// Provider owns the script: it scopes the kv store and settings.
	Provider string
	OrderID  string
	// AllowedHosts are the hosts the script may call (host or host:port).
	AllowedHosts []string
	// Input is the script's input table.
	Input map[string]any
}

// ScriptRunner runs lifecycle scripts in the sandbox.
type ScriptRunner interface {
	RunScript(ctx context.Context, run ScriptRun) (map[string]any, error)
}
