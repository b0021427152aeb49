package operator

import (
	"context"
	"time"

	"github.com/vmarket/vmarket/market"
)

// Origins of modules and hook bindings.
const (
	OriginAPI = "api" // uploaded or bound through the admin API
	OriginDir = "dir" // loaded from the hooks directory
)

// ModuleVersion is one uploaded version of an operator Lua module.
// Versions of a module are numbered from 1; at most one is active.
type ModuleVersion struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// Hash is the short sha256 of Source (12 hex digits).
	Hash string `json:"hash"`
	// Source is the Lua text; lists leave it out.
	Source    string `json:"source,omitempty"`
	Size      int    `json:"size"`
	Origin    string `json:"origin"`
	CreatedAt int64  `json:"createdAt"`
	CreatedBy string `json:"createdBy"`
	Active    bool   `json:"active"`
}

// Module summarizes one module of the registry.
type Module struct {
	Name string `json:"name"`
	// Active is the active version, 0 when none is.
	Active     int    `json:"active"`
	ActiveHash string `json:"activeHash,omitempty"`
	Latest     int    `json:"latest"`
	Versions   int    `json:"versions"`
	// Origin is where the active (else the latest) version came from.
	Origin    string `json:"origin"`
	UpdatedAt int64  `json:"updatedAt"`
}

// Activation is one change of a module's active version.
type Activation struct {
	Name string `json:"name"`
	// Version is the version made active, 0 for a deactivation.
	Version int    `json:"version"`
	At      int64  `json:"at"`
	By      string `json:"by"`
}

// Hook binds a function of an operator module to an event.
type Hook struct {
	ID       int64  `json:"id"`
	Event    string `json:"event"`
	Module   string `json:"module"`
	Function string `json:"function"`
	Origin   string `json:"origin"`
	// CreatedAt and CreatedBy say who bound it.
	CreatedAt int64  `json:"createdAt"`
	CreatedBy string `json:"createdBy"`
}

// Setting is one stored setting. Scope is "" for the operator's global
// settings, else a provider name. A secret's value is stored sealed.
type Setting struct {
	Scope string
	Key   string
	// Value is the plain value of a non-secret setting.
	Value string
	// Secret settings keep their value in Sealed (AEAD ciphertext).
	Secret    bool
	Sealed    []byte
	UpdatedAt int64
	UpdatedBy string
}

// User is a managed operator user: tokens issued to it carry its ID and
// stop working when it is revoked.
type User struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	CreatedAt int64  `json:"createdAt"`
	CreatedBy string `json:"createdBy"`
	// RevokedAt is when the user was revoked, 0 while active.
	RevokedAt int64 `json:"revokedAt,omitempty"`
}

// SigningKey is a stored operator JWT signing key. Secret-less rows
// record the retirement of keys kept elsewhere (the data directory's
// secret).
type SigningKey struct {
	ID string
	// Sealed is the secret sealed with the settings key; nil for a key
	// kept outside the database.
	Sealed    []byte
	CreatedAt int64
	RetiredAt int64
	Current   bool
}

// Run kinds.
const (
	KindScript = "script" // a lifecycle script (start, stop, refund)
	KindHook   = "hook"   // an operator hook
)

// Run is the stored record of one script or hook run, trimmed.
type Run struct {
	ID   int64  `json:"id"`
	Kind string `json:"kind"`
	// Name is the script step ("start") or the hook's "module.function".
	Name  string `json:"name"`
	Event string `json:"event,omitempty"`
	// Version is the script's hash, or the hook module's "v<n>-<hash>".
	Version   string    `json:"version"`
	OrderID   string    `json:"orderId,omitempty"`
	Provider  string    `json:"provider,omitempty"`
	Started   time.Time `json:"started"`
	Duration  float64   `json:"durationMs"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	ErrorLine int       `json:"errorLine,omitempty"`
	// Limit names the limit that stopped the run, if one did.
	Limit string `json:"limit,omitempty"`
	// Rejected is a before-hook's rejection message.
	Rejected     string   `json:"rejected,omitempty"`
	Logs         []RunLog `json:"logs,omitempty"`
	LogsDropped  int      `json:"logsDropped,omitempty"`
	Result       string   `json:"result,omitempty"`
	Modules      []string `json:"modules,omitempty"`
	Instructions int64    `json:"instructions,omitempty"`
	HTTPRequests int      `json:"httpRequests,omitempty"`
}

// RunLog is one log line of a recorded run.
type RunLog struct {
	Time    time.Time      `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// RunFilter selects recorded runs; empty fields do not filter. From and
// To bound the start time (inclusive; zero is open).
type RunFilter struct {
	Kind     string
	Name     string
	Event    string
	OrderID  string
	Provider string
	// OK filters on success when not nil.
	OK       *bool
	From, To time.Time
	Page     market.Page
}

// Reader reads the operator's state.
type Reader interface {
	// Modules lists the registry's modules by name.
	Modules(ctx context.Context) ([]Module, error)
	// ModuleVersions lists a module's versions, newest first, without
	// sources; an unknown module is an empty list.
	ModuleVersions(ctx context.Context, name string) ([]ModuleVersion, error)
	// ModuleVersion returns one version with its source (KindNotFound
	// when absent).
	ModuleVersion(ctx context.Context, name string, version int) (*ModuleVersion, error)
	// ActiveModules returns the active version of every module, with
	// sources.
	ActiveModules(ctx context.Context) ([]ModuleVersion, error)
	// Activations lists a module's activation history, newest first.
	Activations(ctx context.Context, name string, limit int) ([]Activation, error)
	// Hooks lists the hook bindings in binding order.
	Hooks(ctx context.Context) ([]Hook, error)
	// Settings lists every setting (secrets sealed).
	Settings(ctx context.Context) ([]Setting, error)
	// Users lists the operator users, revoked ones included.
	Users(ctx context.Context) ([]User, error)
	// SigningKeys lists the stored signing keys and retirements.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// Runs lists recorded runs, newest first, and the total matching.
	Runs(ctx context.Context, f RunFilter) ([]Run, int, error)
	// Run returns one recorded run (KindNotFound when absent).
	Run(ctx context.Context, id int64) (*Run, error)
}

// Tx changes the operator's state inside one transaction.
type Tx interface {
	Reader
	// AddModuleVersion stores a new version numbered after the module's
	// latest and sets m.Version.
	AddModuleVersion(ctx context.Context, m *ModuleVersion) error
	// SetActive makes version the active one of module name (0: none)
	// and records the activation.
	SetActive(ctx context.Context, name string, version int, by string, at int64) error
	// DeleteModule removes a module, its versions and history.
	DeleteModule(ctx context.Context, name string) error
	// DeleteModuleVersion removes one version.
	DeleteModuleVersion(ctx context.Context, name string, version int) error
	// AddHook stores a binding and sets h.ID; a duplicate (event,
	// module, function) is a KindConflict error.
	AddHook(ctx context.Context, h *Hook) error
	// DeleteHook removes a binding; false when there was none.
	DeleteHook(ctx context.Context, id int64) (bool, error)
	// DeleteHooksOf removes every binding of an origin.
	DeleteHooksOf(ctx context.Context, origin string) error
	// PutSetting creates or replaces a setting.
	PutSetting(ctx context.Context, s *Setting) error
	// DeleteSetting removes a setting; false when there was none.
	DeleteSetting(ctx context.Context, scope, key string) (bool, error)
	// PutUser creates or replaces a user (by ID).
	PutUser(ctx context.Context, u *User) error
	// PutSigningKey creates or replaces a signing key row (by ID);
	// making one current clears the flag on the others.
	PutSigningKey(ctx context.Context, k *SigningKey) error
}

// Store persists the operator's state: modules, hooks, settings, users,
// signing keys and run records.
type Store interface {
	Reader
	// Update runs fn in one write transaction.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// InsertRuns stores run records in one transaction.
	InsertRuns(ctx context.Context, runs []Run) error
}
