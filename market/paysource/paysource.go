// Package paysource confirms vmarket orders from outside payment systems:
// a Poller runs each enabled payment source's Lua script in the sandbox
// on an interval, and records the payments the script reports in the
// order ledger.
//
// # Script contract
//
// A payment source script is a Lua chunk. Its input is
//
//	{source = "<name>", cursor = "<text>" | nil, now = <unix seconds>}
//
// where cursor is what the previous successful poll returned (nil the
// first time). It returns
//
//	{payments = {{orderId = "...", amount = "12.50", reference = "...", ...}, ...},
//	 cursor = "<text>"}
//
// amount is in the source's currency (a dot-decimal string or a number),
// reference identifies the payment at the source (a transaction id).
// Extra fields are ignored.
//
// # Confirmation
//
// Each payment is recorded with market.Orders.Pay under Source = the
// source's name and Reference = the payment's reference: the ledger is
// unique on (source, reference), so a payment read twice (pages re-read,
// overlapping periods, a poll repeated after a crash) is recorded once. The
// amount is converted to coins with the source's rate setting
// ("<name>.rate": coins per one unit of the source's currency, exact
// decimal arithmetic, rounded half away from zero to 1e-8); a source
// without a rate does not poll.
//
// A payment whose order does not exist is logged and skipped, as are
// payments Pay refuses (a non-positive amount, a reference already used
// for another payment). Any other failure (the store) ends the poll
// without moving the cursor, so the next poll reads the same payments
// again. The cursor is stored only after every payment of the poll was
// handled.
//
// # Settings
//
// A source reads its settings from the operator's settings scope named
// SettingsScope(name) ("paysource:<name>"), overlaid on the operator's own
// settings, not from the operator scope alone: operator settings are seen
// by every provider's scripts, and a payment system's credentials must not
// be. The catalog refuses provider names with that prefix
// (market.PaySourceScopePrefix); should a database hold such a provider
// from before, the Poller refuses to poll the source while it exists.
package paysource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/runtime"
)

// Defaults of Config.
const (
	DefaultInterval = time.Minute
	DefaultTimeout  = 30 * time.Second
)

// KVScope is the kv scope in which the Poller keeps each source's cursor
// (key "cursor:<name>"). Provider names cannot contain control characters,
// so no provider's scripts share it.
const KVScope = "\x1fpaysource"

// RunKind names payment source polls in the operator's run records.
const RunKind = "paysource"

// SettingsScope is the settings scope of a source: the operator stores its
// settings as those of this pseudo-provider.
func SettingsScope(source string) string { return market.PaySourceScopePrefix + source }

// Source is one payment source.
type Source struct {
	// Name is the ledger source of its payments ("kassa24"), the prefix of
	// its settings and its name in logs and run records.
	Name string
	// Script is its Lua script (see the package documentation).
	Script string
	// Hosts returns the hosts the script may call, given its settings (the
	// payment system's API host); the operator's allowlist is added.
	Hosts func(settings map[string]string) []string
}

// Payer records payments (*market.Orders).
type Payer interface {
	Pay(ctx context.Context, p market.PaymentRequest) (*market.PaymentResult, error)
}

// ProviderLookup finds a catalog provider by name (the store).
type ProviderLookup interface {
	Provider(ctx context.Context, name string) (*market.Provider, error)
}

// Settings gives the settings of a scope and the keys of the secret ones
// (*operator.Service implements it).
type Settings interface {
	ScriptSettings(provider string) (values map[string]string, secretKeys []string)
}

// Config configures a Poller. Engine, Payer, KV and Providers are
// required.
type Config struct {
	Engine    *runtime.Engine
	Payer     Payer
	KV        runtime.KV
	Providers ProviderLookup
	// Settings gives the sources' settings (nil: none; a source then
	// fails for want of credentials and rate).
	Settings Settings
	// Modules, when set, returns the module resolver of one run (operator
	// modules over the bundled ones).
	Modules func() runtime.ModuleResolver
	// AllowedHosts are added to every source's own hosts.
	AllowedHosts []string
	// RootCAs are extra PEM roots for TLS.
	RootCAs []byte
	// Interval between polls of a source (DefaultInterval).
	Interval time.Duration
	// Timeout bounds one poll's script run (DefaultTimeout).
	Timeout time.Duration
	// Record, when set, is told about every poll.
	Record func(Record)
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives one line per poll and per skipped payment.
	Logger *slog.Logger
}

// Record describes one poll, for Config.Record.
type Record struct {
	Source string
	// Result is the script run's result (nil when the script did not run).
	Result *runtime.Result
	// Poll is the outcome (nil when the poll failed before confirming).
	Poll *Poll
	Err  error
}

// Outcome statuses of one reported payment.
const (
	StatusPaid      = "paid"          // recorded now
	StatusDuplicate = "duplicate"     // recorded before (same source and reference)
	StatusUnknown   = "unknown_order" // no such order: skipped
	StatusRejected  = "rejected"      // refused by Pay (amount, reference conflict): skipped
)

// Outcome is what happened to one reported payment.
type Outcome struct {
	OrderID   string         `json:"orderId"`
	Reference string         `json:"reference"`
	Amount    string         `json:"amount"` // in the source's currency, as reported
	Coins     market.Decimal `json:"coins"`
	Status    string         `json:"status"`
	Error     string         `json:"error,omitempty"`
}

// Poll is the outcome of one poll of a source.
type Poll struct {
	Source string `json:"source"`
	// Cursor is the cursor the poll started from; Next the one stored.
	Cursor   string    `json:"cursor"`
	Next     string    `json:"next"`
	Payments []Outcome `json:"payments"`
	// Counts by status.
	Paid       int `json:"paid"`
	Duplicates int `json:"duplicates"`
	Unknown    int `json:"unknown"`
	Rejected   int `json:"rejected"`
}

// Poller polls payment sources. Create it with New.
type Poller struct {
	cfg     Config
	sources []Source
	scripts map[string]runtime.Script
	// mu serializes polls: a poll reads, confirms and stores the cursor as
	// one unit.
	mu sync.Mutex
}

// New returns a Poller of the given sources; their scripts must compile.
func New(cfg Config, sources ...Source) (*Poller, error) {
	if cfg.Engine == nil || cfg.Payer == nil || cfg.KV == nil || cfg.Providers == nil {
		return nil, errors.New("paysource: Engine, Payer, KV and Providers are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Poller{cfg: cfg, scripts: map[string]runtime.Script{}}
	for _, s := range sources {
		if s.Name == "" || strings.ContainsAny(s.Name, ": \t") {
			return nil, fmt.Errorf("paysource: bad source name %q", s.Name)
		}
		if _, dup := p.scripts[s.Name]; dup {
			return nil, fmt.Errorf("paysource: source %s given twice", s.Name)
		}
		if _, err := runtime.Compile(s.Name, s.Script); err != nil {
			return nil, fmt.Errorf("paysource: %s script: %w", s.Name, err)
		}
		p.scripts[s.Name] = runtime.Script{Name: "paysource." + s.Name, Source: s.Script}
		p.sources = append(p.sources, s)
	}
	return p, nil
}

// Sources lists the names of the Poller's sources.
func (p *Poller) Sources() []string {
	out := make([]string, len(p.sources))
	for i, s := range p.sources {
		out[i] = s.Name
	}
	return out
}

// Run polls every source at once and then every Interval until ctx ends.
// Failed polls are logged and recorded; the next tick tries again.
func (p *Poller) Run(ctx context.Context) error {
	if len(p.sources) == 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		for _, s := range p.sources {
			if ctx.Err() != nil {
				return nil
			}
			if _, err := p.PollOnce(ctx, s.Name); err != nil && ctx.Err() == nil {
				p.cfg.Logger.Warn("payment source poll failed", "source", s.Name, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// cursorKey is the kv key of a source's cursor.
func cursorKey(source string) string { return "cursor:" + source }

// PollOnce polls one source now: runs its script from the stored cursor,
// confirms the payments it reports and stores the new cursor.
func (p *Poller) PollOnce(ctx context.Context, name string) (*Poll, error) {
	var src *Source
	for i := range p.sources {
		if p.sources[i].Name == name {
			src = &p.sources[i]
		}
	}
	if src == nil {
		return nil, fmt.Errorf("paysource: no source %q", name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	started := p.cfg.Now()
	poll, res, err := p.poll(ctx, src)
	if p.cfg.Record != nil {
		p.cfg.Record(Record{Source: name, Result: res, Poll: poll, Err: err})
	}
	if err != nil {
		return nil, err
	}
	p.cfg.Logger.Info("payment source polled", "source", name, "cursor", poll.Cursor, "next", poll.Next,
		"reported", len(poll.Payments), "paid", poll.Paid, "duplicates", poll.Duplicates,
		"unknown", poll.Unknown, "rejected", poll.Rejected, "duration", p.cfg.Now().Sub(started))
	return poll, nil
}

func (p *Poller) poll(ctx context.Context, src *Source) (*Poll, *runtime.Result, error) {
	scope := SettingsScope(src.Name)
	if _, err := p.cfg.Providers.Provider(ctx, scope); err == nil {
		return nil, nil, fmt.Errorf("paysource: a catalog provider is named %q, which would see this source's settings; rename it", scope)
	} else if market.KindOf(err) != market.KindNotFound {
		return nil, nil, fmt.Errorf("paysource: look up provider %q: %w", scope, err)
	}
	var settings map[string]string
	var secretKeys []string
	if p.cfg.Settings != nil {
		settings, secretKeys = p.cfg.Settings.ScriptSettings(scope)
	}
	rate, err := rateOf(settings, src.Name)
	if err != nil {
		return nil, nil, err
	}
	cursor, _, err := p.cfg.KV.Get(ctx, KVScope, cursorKey(src.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("paysource: read %s cursor: %w", src.Name, err)
	}
	hosts := append([]string{}, p.cfg.AllowedHosts...)
	if src.Hosts != nil {
		hosts = append(hosts, src.Hosts(settings)...)
	}
	opts := runtime.RunOptions{
		Timeout: p.cfg.Timeout, AllowedHosts: hosts, RootCAs: p.cfg.RootCAs,
		Settings: settings, SecretKeys: secretKeys,
		Logger: p.cfg.Logger.With("script", "paysource", "source", src.Name),
	}
	if p.cfg.Modules != nil {
		opts.Resolver = p.cfg.Modules()
	}
	input := map[string]any{"source": src.Name, "now": p.cfg.Now().Unix()}
	if cursor != "" {
		input["cursor"] = cursor
	}
	res, err := p.cfg.Engine.Run(ctx, p.scripts[src.Name], input, opts)
	if err != nil {
		return nil, res, fmt.Errorf("paysource: %s script: %w", src.Name, err)
	}
	reported, next, err := parseResult(res.Value)
	if err != nil {
		return nil, res, fmt.Errorf("paysource: %s script: %w", src.Name, err)
	}
	poll := &Poll{Source: src.Name, Cursor: cursor, Next: next, Payments: make([]Outcome, 0, len(reported))}
	for _, rp := range reported {
		out, err := p.confirm(ctx, src.Name, rate, rp)
		if err != nil {
			return nil, res, err
		}
		poll.Payments = append(poll.Payments, out)
		switch out.Status {
		case StatusPaid:
			poll.Paid++
		case StatusDuplicate:
			poll.Duplicates++
		case StatusUnknown:
			poll.Unknown++
		case StatusRejected:
			poll.Rejected++
		}
	}
	if next != "" && next != cursor {
		if err := p.cfg.KV.Set(ctx, KVScope, cursorKey(src.Name), next); err != nil {
			return nil, res, fmt.Errorf("paysource: store %s cursor: %w", src.Name, err)
		}
	}
	return poll, res, nil
}

// rateOf reads "<source>.rate": coins per unit of the source's currency.
func rateOf(settings map[string]string, source string) (market.Decimal, error) {
	key := source + ".rate"
	v := strings.TrimSpace(settings[key])
	if v == "" {
		return 0, fmt.Errorf("paysource: setting %s (coins per unit of the %s currency) is required in settings scope %q", key, source, SettingsScope(source))
	}
	rate, err := market.ParseDecimal(v)
	if err != nil || rate <= 0 {
		return 0, fmt.Errorf("paysource: setting %s must be a positive decimal, got %q", key, v)
	}
	return rate, nil
}

// reportedPayment is one payment a script reported.
type reportedPayment struct {
	orderID, reference, amount string
	value                      market.Decimal // in the source's currency
	bad                        string         // why it cannot be confirmed
}

// parseResult reads {payments = {...}, cursor = "..."}.
func parseResult(v any) ([]reportedPayment, string, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, "", errors.New("must return a table {payments = {...}, cursor = ...}")
	}
	var next string
	switch c := m["cursor"].(type) {
	case nil:
	case string:
		next = c
	case int64:
		next = strconv.FormatInt(c, 10)
	default:
		return nil, "", fmt.Errorf("cursor must be a string, not %T", c)
	}
	var list []any
	switch ps := m["payments"].(type) {
	case nil:
	case []any:
		list = ps
	case map[string]any:
		if len(ps) != 0 {
			return nil, "", errors.New("payments must be a list")
		}
	default:
		return nil, "", fmt.Errorf("payments must be a list, not %T", ps)
	}
	out := make([]reportedPayment, 0, len(list))
	for i, e := range list {
		pm, ok := e.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("payments[%d] must be a table", i+1)
		}
		rp := reportedPayment{}
		rp.orderID, _ = pm["orderId"].(string)
		rp.reference, _ = pm["reference"].(string)
		switch a := pm["amount"].(type) {
		case string:
			rp.amount = strings.TrimSpace(a)
		case int64:
			rp.amount = strconv.FormatInt(a, 10)
		case float64:
			rp.amount = strconv.FormatFloat(a, 'f', -1, 64)
		}
		var err error
		switch {
		case rp.reference == "":
			return nil, "", fmt.Errorf("payments[%d] has no reference", i+1)
		case rp.orderID == "":
			rp.bad = "no orderId"
		case rp.amount == "":
			rp.bad = "no amount"
		default:
			if rp.value, err = market.ParseDecimal(rp.amount); err != nil {
				rp.bad = "amount: " + err.Error()
			}
		}
		out = append(out, rp)
	}
	return out, next, nil
}

// confirm records one payment. Only failures that may pass (the store)
// are returned as errors; everything else is an outcome.
func (p *Poller) confirm(ctx context.Context, source string, rate market.Decimal, rp reportedPayment) (Outcome, error) {
	out := Outcome{OrderID: rp.orderID, Reference: rp.reference, Amount: rp.amount}
	log := p.cfg.Logger.With("source", source, "reference", rp.reference, "order", rp.orderID, "amount", rp.amount)
	if rp.bad != "" {
		out.Status, out.Error = StatusRejected, rp.bad
		log.Warn("payment skipped", "reason", rp.bad)
		return out, nil
	}
	coins, ok := market.MulDecimal(rp.value, rate)
	if !ok {
		out.Status, out.Error = StatusRejected, "amount overflows"
		log.Warn("payment skipped", "reason", out.Error)
		return out, nil
	}
	out.Coins = coins
	res, err := p.cfg.Payer.Pay(ctx, market.PaymentRequest{OrderID: rp.orderID, Amount: coins, Source: source, Reference: rp.reference})
	if unknownOrder(err) {
		out.Status, out.Error = StatusUnknown, "no such order"
		log.Warn("payment for an unknown order skipped")
		return out, nil
	}
	switch market.KindOf(err) {
	case "":
		if res.Duplicate {
			out.Status = StatusDuplicate
		} else {
			out.Status = StatusPaid
			log.Info("payment confirmed", "coins", coins, "order_status", res.Order.Status, "overpaid", res.Overpaid)
		}
		return out, nil
	case market.KindInvalid, market.KindConflict:
		out.Status, out.Error = StatusRejected, err.Error()
		log.Error("payment refused", "err", err)
		return out, nil
	}
	return out, fmt.Errorf("paysource: confirm %s payment %s: %w", source, rp.reference, err)
}

// unknownOrder reports whether Pay failed because the order does not
// exist (Pay reports it as an invalid orderId wrapping the not-found).
func unknownOrder(err error) bool {
	var e *market.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Kind == market.KindNotFound || (e.Err != nil && market.KindOf(e.Err) == market.KindNotFound)
}
