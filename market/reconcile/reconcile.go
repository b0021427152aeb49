// Package reconcile checks vmarket's orders against a partner's own
// record of them. Its one reconciliation today is VCC's (Towngas gas
// accounts): for a provider selling gas top-ups through the VCC open API
// (the bundled template vcc-gas-topup, provider towngas-vcc) and a day, it
// collects the orders whose withdrawal vmarket filed that day, runs a
// bundled Lua script in the sandbox that fetches VCC's daily
// reconciliation file (按日对账) over SFTP and compares it with them
// (vcc.reconcile of the bundled vcc module), and keeps the report.
//
// # Which orders
//
// The gas top-up start script withdraws serviceOptions.topUpCNY yuan from
// the buyer's gas account under the order id as VCC order number, reports
// the withdrawal SUCCESS, and files the order with the withdrawal in its
// user service data (withdrawTime, VCC's yyyyMMddHHmmss in China time). So
// the orders VCC must have withdrawn for on a day are those of the
// provider's gas top-up types (service types whose serviceOptions declare
// topUpCNY) that
//
//   - were filed (filedTS set): the withdrawal was made and reported;
//   - withdrew on that day, China time (UTC+8): the day of
//     userService.withdrawTime, or of filedTS when the order has none;
//   - paid nothing back (amountRefunded 0). A refund asked after the
//     withdrawal took effect pays back nothing and leaves VCC's SUCCESS in
//     place, so such an order is still expected; an order that paid money
//     back is not (VCC should show its withdrawal FAILED, which is not a
//     mismatch when no order expects it).
//
// Each is compared as {orderNo = order id, amount = topUpCNY as "100.00",
// status = "SUCCESS"}. An order whose topUpCNY is not an amount is listed
// under Skipped and makes the report not OK.
//
// # Reports
//
// A report lists the mismatches vcc.reconcile found (kinds
// missing_in_vcc, missing_in_vmarket, amount_mismatch, failed_in_vcc,
// status_mismatch, duplicate_in_vcc) with the totals. It is stored per
// (source, provider, day): reconciling a day again replaces its report.
// Every run, failed or not, is an operator run record of kind RunKind and
// a log line.
//
// A day with no reconciliation file and no order to reconcile gives an
// OK, empty report (FileFound false): VCC may write no file for a day
// without withdrawals. A missing file while orders wait is a KindNotFound
// error, and no report is stored.
package reconcile

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/runtime"
)

// Names and defaults.
const (
	// SourceVCC names VCC reconciliations in reports.
	SourceVCC = "vcc"
	// DefaultProvider is the provider reconciled when none is named: the
	// bundled VCC gas top-up template's.
	DefaultProvider = "towngas-vcc"
	// RunKind is the kind of reconciliation runs in the operator's run
	// records (name: the source, "vcc").
	RunKind = "reconcile"
	// TopUpOption is the service option holding a gas top-up's amount in
	// yuan; service types declaring it are the provider's gas top-up types.
	TopUpOption = "topUpCNY"
	// DefaultTimeout bounds one reconciliation's script run (within the
	// API's 60 s write timeout).
	DefaultTimeout = 40 * time.Second
	// DayLayout is the layout of days: yyyyMMdd.
	DayLayout = "20060102"
	// VCCTimeLayout is the layout of VCC times: yyyyMMddHHmmss, China time.
	VCCTimeLayout = "20060102150405"
)

// Mismatch kinds, as vcc.reconcile names them.
const (
	MissingInVCC     = "missing_in_vcc"     // vmarket filed the order, VCC has no withdrawal
	MissingInVmarket = "missing_in_vmarket" // VCC withdrew for an order vmarket does not expect
	AmountMismatch   = "amount_mismatch"    // both have it, with other amounts
	FailedInVCC      = "failed_in_vcc"      // VCC reports the withdrawal FAILED (refunded)
	StatusMismatch   = "status_mismatch"    // VCC's status is not SUCCESS (e.g. PENDING)
	DuplicateInVCC   = "duplicate_in_vcc"   // the order number is on several lines of the file
)

// ChinaTime is the zone of VCC days and times (UTC+8, no daylight time).
func ChinaTime() *time.Location { return time.FixedZone("UTC+8", 8*60*60) }

// Yesterday is the day before now's day in China time, as yyyyMMdd.
func Yesterday(now time.Time) string {
	return now.In(ChinaTime()).AddDate(0, 0, -1).Format(DayLayout)
}

// ParseDay reads a yyyyMMdd day and returns its first instant (midnight,
// China time).
func ParseDay(day string) (time.Time, error) {
	if len(day) != len(DayLayout) {
		return time.Time{}, market.Invalid("day", "must be yyyyMMdd (got %q)", day)
	}
	t, err := time.ParseInLocation(DayLayout, day, ChinaTime())
	if err != nil {
		return time.Time{}, market.Invalid("day", "must be yyyyMMdd (got %q)", day)
	}
	return t, nil
}

// Mismatch is one difference between VCC's file and vmarket's orders.
// Amounts are yuan with two decimals.
type Mismatch struct {
	Kind          string `json:"kind"`
	OrderNo       string `json:"orderNo"`
	VCCAmount     string `json:"vccAmount,omitempty"`
	VmarketAmount string `json:"vmarketAmount,omitempty"`
	// Difference is VCC's amount minus vmarket's (amount_mismatch).
	Difference    string `json:"difference,omitempty"`
	VCCStatus     string `json:"vccStatus,omitempty"`
	VmarketStatus string `json:"vmarketStatus,omitempty"`
	// Line is the file line of a duplicate.
	Line int `json:"line,omitempty"`
}

// Skipped is an order vmarket could not compare.
type Skipped struct {
	OrderID string `json:"orderId"`
	Reason  string `json:"reason"`
}

// Summary is a report without its lists: what GET of past reports lists.
type Summary struct {
	Source   string `json:"source"`
	Provider string `json:"provider"`
	Day      string `json:"day"`
	// File is VCC's file the report compared ("/reconcile/20250314.csv");
	// FileFound is false when there was none.
	File      string `json:"file"`
	FileFound bool   `json:"fileFound"`
	// OK is true when nothing is mismatched or skipped.
	OK bool `json:"ok"`
	// Rows are the lines of VCC's file; Orders the vmarket orders
	// compared; Matched those that agree.
	Rows    int `json:"rows"`
	Orders  int `json:"orders"`
	Matched int `json:"matched"`
	// Mismatched counts the mismatches, Counts them by kind.
	Mismatched int            `json:"mismatched"`
	Counts     map[string]int `json:"counts"`
	// TotalVCC sums VCC's rows that are not FAILED, TotalVmarket the
	// orders' amounts (yuan).
	TotalVCC     string `json:"totalVCC"`
	TotalVmarket string `json:"totalVmarket"`
	// SkippedOrders counts Report.Skipped.
	SkippedOrders int       `json:"skippedOrders"`
	RanAt         time.Time `json:"ranAt"`
	RanBy         string    `json:"ranBy"`
}

// Report is the outcome of one reconciliation.
type Report struct {
	Summary
	Mismatches []Mismatch `json:"mismatches"`
	Skipped    []Skipped  `json:"skipped"`
}

// Filter selects stored reports; empty fields do not filter. From and To
// bound the day (yyyyMMdd, inclusive).
type Filter struct {
	Source   string
	Provider string
	From, To string
	// OK filters on the outcome when not nil.
	OK   *bool
	Page market.Page
}

// ReportPage is one page of stored reports, newest day first.
type ReportPage struct {
	List       []Summary         `json:"list"`
	Pagination market.Pagination `json:"pagination"`
}

// Store keeps reports.
type Store interface {
	// PutReport stores a report, replacing the one of the same source,
	// provider and day.
	PutReport(ctx context.Context, r *Report) error
	// Report reads one report; a KindNotFound *market.Error when none.
	Report(ctx context.Context, source, provider, day string) (*Report, error)
	// Reports lists summaries, newest day first, and counts all that match.
	Reports(ctx context.Context, f Filter) ([]Summary, int, error)
}

// Market reads the catalog and the orders (the market store).
type Market interface {
	Provider(ctx context.Context, id string) (*market.Provider, error)
	ServiceTypes(ctx context.Context, f market.ServiceTypeFilter) ([]market.ServiceType, int, error)
	Orders(ctx context.Context, f market.OrderFilter) ([]market.Order, int, error)
}

// Settings gives the settings of a provider's scripts and the keys of the
// secret ones (*operator.Service implements it).
type Settings interface {
	ScriptSettings(provider string) (values map[string]string, secretKeys []string)
}

// Recorder records runs (*operator.Service implements it); Record must
// not block.
type Recorder interface {
	Record(run operator.Run)
}

// Config configures a Service. Engine, Market and Store are required.
type Config struct {
	Engine *runtime.Engine
	Market Market
	Store  Store
	// Settings gives the provider's settings (vcc.sftp.*); nil: none, and
	// every run fails for want of the SFTP host.
	Settings Settings
	// Modules, when set, returns the module resolver of one run (operator
	// modules over the bundled ones); nil uses the engine's.
	Modules func() runtime.ModuleResolver
	// AllowedHosts are added to the SFTP host the settings name.
	AllowedHosts []string
	// RootCAs are extra PEM roots for TLS.
	RootCAs []byte
	// Timeout bounds one run's script (DefaultTimeout).
	Timeout time.Duration
	// Recorder, when set, records every run.
	Recorder Recorder
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives a line per run (discarded when nil).
	Logger *slog.Logger
}

// Service reconciles and keeps the reports. Create it with New.
type Service struct {
	cfg     Config
	script  runtime.Script
	version string
	// sem serializes reconciliations: two runs of one day must not race
	// to store their reports.
	sem chan struct{}
	// wait sleeps for d or until ctx ends (false then) and run
	// reconciles, for RunDaily; tests replace them.
	wait func(ctx context.Context, d time.Duration) bool
	run  func(ctx context.Context, caller market.Caller, req Request) (*Report, error)
}

//go:embed vcc.lua
var vccScript string

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil || cfg.Market == nil || cfg.Store == nil {
		return nil, errors.New("reconcile: Engine, Market and Store are required")
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
	if _, err := runtime.Compile("reconcile.vcc", vccScript); err != nil {
		return nil, fmt.Errorf("reconcile: vcc script: %w", err)
	}
	sum := sha256.Sum256([]byte(vccScript))
	s := &Service{
		cfg:     cfg,
		script:  runtime.Script{Name: "reconcile.vcc", Source: vccScript},
		version: hex.EncodeToString(sum[:6]),
		sem:     make(chan struct{}, 1),
		wait:    sleep,
	}
	s.run = s.VCC
	return s, nil
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Request names what to reconcile.
type Request struct {
	// Provider defaults to DefaultProvider.
	Provider string `json:"provider"`
	// Day is yyyyMMdd (China time); the day before today by default.
	Day string `json:"day"`
}

// VCC reconciles one provider's gas top-ups of one day with VCC's
// reconciliation file, stores the report (replacing the day's previous
// one) and returns it. The caller must be an admin operator.
func (s *Service) VCC(ctx context.Context, caller market.Caller, req Request) (*Report, error) {
	if !caller.IsAdmin() {
		return nil, market.Denied(caller, "running a reconciliation needs an admin operator token")
	}
	if req.Provider == "" {
		req.Provider = DefaultProvider
	}
	if req.Day == "" {
		req.Day = Yesterday(s.cfg.Now())
	}
	start, err := ParseDay(req.Day)
	if err != nil {
		return nil, err
	}
	if start.After(s.cfg.Now()) {
		return nil, market.Invalid("day", "%s has not begun yet (China time)", req.Day)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return nil, fmt.Errorf("reconcile: wait for the running reconciliation: %w", ctx.Err())
	}
	ranBy := caller.OperatorName
	if ranBy == "" {
		ranBy = caller.OperatorRole
	}
	started := s.cfg.Now()
	rep, res, err := s.vcc(ctx, req.Provider, req.Day, start, ranBy, started)
	s.record(req.Provider, req.Day, rep, res, err)
	log := s.cfg.Logger.With("source", SourceVCC, "provider", req.Provider, "day", req.Day, "by", ranBy)
	if err != nil {
		log.Warn("reconciliation failed", "err", err)
		return nil, err
	}
	level := slog.LevelInfo
	if !rep.OK {
		level = slog.LevelWarn
	}
	log.Log(ctx, level, "reconciled", "ok", rep.OK, "file", rep.File, "file_found", rep.FileFound,
		"rows", rep.Rows, "orders", rep.Orders, "matched", rep.Matched, "mismatched", rep.Mismatched,
		"counts", rep.Counts, "skipped", rep.SkippedOrders, "total_vcc", rep.TotalVCC,
		"total_vmarket", rep.TotalVmarket, "duration", s.cfg.Now().Sub(started))
	return rep, nil
}

// record writes the run record of one reconciliation: its summary as the
// result (the mismatches are in the stored report).
func (s *Service) record(provider, day string, rep *Report, res *runtime.Result, err error) {
	if s.cfg.Recorder == nil {
		return
	}
	var rec *runtime.Result
	if res != nil {
		cp := *res
		cp.Value = nil
		if rep != nil {
			cp.Value = rep.Summary
		}
		rec = &cp
	}
	run := operator.RunOf(RunKind, SourceVCC, rec, err)
	if rep == nil {
		// A failed run still says which day it was for.
		b, _ := json.Marshal(map[string]string{"source": SourceVCC, "provider": provider, "day": day})
		run.Result = string(b)
	}
	run.Provider, run.Version = provider, s.version
	s.cfg.Recorder.Record(run)
}

// vcc does one reconciliation.
func (s *Service) vcc(ctx context.Context, provider, day string, start time.Time, ranBy string, now time.Time) (*Report, *runtime.Result, error) {
	if _, err := s.cfg.Market.Provider(ctx, provider); err != nil {
		if market.KindOf(err) == market.KindNotFound {
			return nil, nil, market.NotFound("provider", provider)
		}
		return nil, nil, fmt.Errorf("reconcile: look up provider %s: %w", provider, err)
	}
	var settings map[string]string
	var secretKeys []string
	if s.cfg.Settings != nil {
		settings, secretKeys = s.cfg.Settings.ScriptSettings(provider)
	}
	host, err := sftpHost(settings)
	if err != nil {
		return nil, nil, err
	}
	expected, skipped, err := s.collect(ctx, provider, start)
	if err != nil {
		return nil, nil, err
	}
	orders := make([]any, len(expected))
	for i, o := range expected {
		orders[i] = map[string]any{"orderNo": o.OrderNo, "amount": o.Amount, "status": o.Status}
	}
	opts := runtime.RunOptions{
		Timeout: s.cfg.Timeout, AllowedHosts: append([]string{host}, s.cfg.AllowedHosts...), RootCAs: s.cfg.RootCAs,
		Settings: settings, SecretKeys: secretKeys,
		Logger: s.cfg.Logger.With("source", SourceVCC, "provider", provider, "day", day),
	}
	if s.cfg.Modules != nil {
		opts.Resolver = s.cfg.Modules()
	}
	input := map[string]any{"provider": provider, "day": day, "orders": orders}
	res, err := s.cfg.Engine.Run(ctx, s.script, input, opts)
	if err != nil {
		if errors.Is(err, runtime.ErrBusy) {
			return nil, res, &market.Error{Kind: market.KindBusy, Message: "script engine busy, retry", Err: err}
		}
		return nil, res, &market.Error{Kind: market.KindUpstream, Message: "VCC reconciliation of " + day + ": " + err.Error(), Err: err}
	}
	rep, err := reportOf(res.Value)
	if err != nil {
		return nil, res, fmt.Errorf("reconcile: vcc script: %w", err)
	}
	if !rep.FileFound && (len(expected) > 0 || len(skipped) > 0) {
		return nil, res, (&market.Error{Kind: market.KindNotFound,
			Message: fmt.Sprintf("VCC has no reconciliation file %s for %s (not written yet?) while vmarket has %d orders to reconcile",
				rep.File, day, len(expected)+len(skipped))}).WithDetail("file", rep.File)
	}
	rep.Source, rep.Provider, rep.Day = SourceVCC, provider, day
	rep.Orders, rep.Skipped, rep.SkippedOrders = len(expected), skipped, len(skipped)
	rep.OK = rep.OK && len(skipped) == 0
	rep.RanAt, rep.RanBy = now.UTC(), ranBy
	if err := s.cfg.Store.PutReport(ctx, rep); err != nil {
		return nil, res, fmt.Errorf("reconcile: store the report: %w", err)
	}
	return rep, res, nil
}

// sftpHost is the allowlist entry of the SFTP server the settings name:
// vcc.sftp.host and vcc.sftp.port (22).
func sftpHost(settings map[string]string) (string, error) {
	host := strings.Trim(strings.TrimSpace(settings["vcc.sftp.host"]), "[]")
	if host == "" {
		return "", market.Invalid("vcc.sftp.host", "the provider's setting naming VCC's reconciliation SFTP server is not set")
	}
	port := 22
	if p := strings.TrimSpace(settings["vcc.sftp.port"]); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", market.Invalid("vcc.sftp.port", "must be a port number (got %q)", p)
		}
		port = n
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// scriptReport is the script's result, as vcc.reconcile names it.
type scriptReport struct {
	OK           bool   `json:"ok"`
	FileFound    bool   `json:"file_found"`
	File         string `json:"file"`
	Rows         int    `json:"rows"`
	Matched      int    `json:"matched"`
	TotalVCC     string `json:"total_vcc"`
	TotalVmarket string `json:"total_vmarket"`
	Mismatches   []struct {
		Kind          string `json:"kind"`
		OrderNo       string `json:"orderNo"`
		VCCAmount     string `json:"vcc_amount"`
		VmarketAmount string `json:"vmarket_amount"`
		Difference    string `json:"difference"`
		VCCStatus     string `json:"vcc_status"`
		VmarketStatus string `json:"vmarket_status"`
		Line          int    `json:"line"`
	} `json:"mismatches"`
}

// reportOf reads the script's result.
func reportOf(v any) (*Report, error) {
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("must return a report table, not %T", v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	var sr scriptReport
	if err := json.Unmarshal(b, &sr); err != nil {
		return nil, fmt.Errorf("result: %w", err)
	}
	rep := &Report{Mismatches: []Mismatch{}, Skipped: []Skipped{}}
	rep.File, rep.FileFound, rep.Rows, rep.Matched = sr.File, sr.FileFound, sr.Rows, sr.Matched
	rep.TotalVCC, rep.TotalVmarket = sr.TotalVCC, sr.TotalVmarket
	rep.OK = sr.OK
	if !sr.FileFound {
		rep.OK, rep.TotalVCC, rep.TotalVmarket = true, "0.00", "0.00"
	}
	rep.Counts = map[string]int{}
	for _, m := range sr.Mismatches {
		rep.Mismatches = append(rep.Mismatches, Mismatch{Kind: m.Kind, OrderNo: m.OrderNo, VCCAmount: m.VCCAmount,
			VmarketAmount: m.VmarketAmount, Difference: m.Difference, VCCStatus: m.VCCStatus,
			VmarketStatus: m.VmarketStatus, Line: m.Line})
		rep.Counts[m.Kind]++
	}
	rep.Mismatched = len(rep.Mismatches)
	if rep.Mismatched > 0 {
		rep.OK = false
	}
	return rep, nil
}

// Report returns the stored report of a day; any operator may read it.
// Source defaults to SourceVCC, provider to DefaultProvider.
func (s *Service) Report(ctx context.Context, caller market.Caller, source, provider, day string) (*Report, error) {
	if !caller.IsOperator() {
		return nil, market.Denied(caller, "reconciliation reports need an operator token")
	}
	if source == "" {
		source = SourceVCC
	}
	if provider == "" {
		provider = DefaultProvider
	}
	if _, err := ParseDay(day); err != nil {
		return nil, err
	}
	r, err := s.cfg.Store.Report(ctx, source, provider, day)
	if market.KindOf(err) == market.KindNotFound {
		return nil, market.NotFound("reconciliation report", source+" "+provider+" "+day)
	}
	if err != nil {
		return nil, fmt.Errorf("reconcile: read report: %w", err)
	}
	return r, nil
}

// Reports lists stored reports, newest day first; any operator may read
// them.
func (s *Service) Reports(ctx context.Context, caller market.Caller, f Filter) (*ReportPage, error) {
	if !caller.IsOperator() {
		return nil, market.Denied(caller, "reconciliation reports need an operator token")
	}
	for _, d := range []struct{ name, v string }{{"from", f.From}, {"to", f.To}} {
		if d.v == "" {
			continue
		}
		if _, err := ParseDay(d.v); err != nil {
			return nil, market.Invalid(d.name, "must be yyyyMMdd (got %q)", d.v)
		}
	}
	if f.Page.Current < 1 {
		f.Page.Current = 1
	}
	if f.Page.PageSize < 1 {
		f.Page.PageSize = market.DefaultPageSize
	}
	f.Page.PageSize = min(f.Page.PageSize, market.MaxPageSize)
	list, total, err := s.cfg.Store.Reports(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("reconcile: list reports: %w", err)
	}
	if list == nil {
		list = []Summary{}
	}
	return &ReportPage{List: list, Pagination: market.Pagination{Total: total, Current: f.Page.Current, PageSize: f.Page.PageSize}}, nil
}
