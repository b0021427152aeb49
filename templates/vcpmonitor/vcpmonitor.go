// Package vcpmonitor is the provider adapter of the bundled VCP Site
// Monitor template (templates/vcp-site-monitor): the HTTP backend its
// type's apiHost points at, mounted by vmarket serve under
// /providers/vcp-site-monitor.
//
// VCP needs the provider's API key and the site id in the path, which a
// plain forward of the buyer's call cannot add, so the adapter sits in
// between. For each call it
//
//   - authenticates the caller: a vmarket service token (what the user
//     API's secret functions carry, "Authorization: Bearer <JWT>", naming
//     the order) or the order's monitoring token (the start script's
//     secret, for calls made directly), checked against the sha256 the
//     start script kept in the provider's kv;
//   - reads the order: it must be the provider's and running, and its
//     siteId option names the site;
//   - runs the template's api.lua in the sandbox with the provider's
//     settings (vcp.base_url, vcp.api_key) and the operator's host
//     allowlist, so the VCP protocol (validation, retries, error envelope)
//     lives in one place, the vcp Lua module;
//   - answers the script's result as JSON, or its error with a status.
//
// Functions: GET /info (normal: no identity needed, static), GET
// /telemetry, /commands and /config (secret).
package vcpmonitor

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/runtime"
	"github.com/vmarket/vmarket/templates"
)

// Provider is the bundled template's provider name: the audience of the
// service tokens the adapter accepts, the scope of its settings and kv.
const Provider = "vcp-energy"

// ScriptFile is the template's user API script, in templates.FS().
const ScriptFile = "vcp-site-monitor/api.lua"

// TokenKeyPrefix is the kv key prefix (provider scope) under which the
// start script keeps the sha256 of each order's monitoring token.
const TokenKeyPrefix = "monitor-token:"

// RunKind names the adapter's runs in the operator's run records.
const RunKind = "userapi"

// DefaultTimeout bounds one call's script run.
const DefaultTimeout = 10 * time.Second

// OrderReader reads an order without caller checks (the store).
type OrderReader interface {
	Order(ctx context.Context, id string) (*market.Order, error)
}

// Settings gives the provider's script settings and the keys of the
// secret ones (*operator.Service implements it).
type Settings interface {
	ScriptSettings(provider string) (values map[string]string, secretKeys []string)
}

// RunRecord describes one adapter run, for Config.Record.
type RunRecord struct {
	Function string
	OrderID  string
	Result   *runtime.Result
	Err      error
}

// Config configures a Handler. Engine, Orders, KV and ServiceKey are
// required.
type Config struct {
	// Engine runs api.lua.
	Engine *runtime.Engine
	// Orders reads the orders calls name.
	Orders OrderReader
	// KV is the store the start script's kv writes to (monitoring tokens).
	KV runtime.KV
	// ServiceKey returns vmarket's service token public key (base64).
	ServiceKey func() string
	// Settings gives the provider's settings (nil: none, calls fail for
	// want of vcp.base_url).
	Settings Settings
	// Modules, when set, returns the module resolver of one run (operator
	// modules over the bundled ones); nil uses the engine's.
	Modules func() runtime.ModuleResolver
	// AllowedHosts are the hosts api.lua may call (the operator's
	// --script-allow-hosts, which must name the VCP host).
	AllowedHosts []string
	// RootCAs are extra PEM roots for TLS.
	RootCAs []byte
	// Timeout bounds one call's run (DefaultTimeout).
	Timeout time.Duration
	// Script replaces the bundled api.lua (tests).
	Script string
	// Record, when set, is told about every run.
	Record func(RunRecord)
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives call logs (discarded when nil).
	Logger *slog.Logger
}

// Handler is the adapter. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	script runtime.Script
}

// New returns the adapter.
func New(cfg Config) (*Handler, error) {
	if cfg.Engine == nil || cfg.Orders == nil || cfg.KV == nil || cfg.ServiceKey == nil {
		return nil, errors.New("vcpmonitor: Engine, Orders, KV and ServiceKey are required")
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
	src := cfg.Script
	if src == "" {
		b, err := fs.ReadFile(templates.FS(), ScriptFile)
		if err != nil {
			return nil, fmt.Errorf("vcpmonitor: %w", err)
		}
		src = string(b)
	}
	if _, err := runtime.Compile("api", src); err != nil {
		return nil, fmt.Errorf("vcpmonitor: api.lua: %w", err)
	}
	return &Handler{cfg: cfg, script: runtime.Script{Name: "api", Source: src}}, nil
}

// Info is the answer of the normal function info: what the secret
// functions take.
type Info struct {
	Functions        map[string]string `json:"functions"`
	DefaultHours     int               `json:"defaultTelemetryHours"`
	MaxWindowHours   int               `json:"maxTelemetryWindowHours"`
	DefaultLookback  int               `json:"defaultLookbackHours"`
	MaxLookbackHours int               `json:"maxLookbackHours"`
}

func info() Info {
	return Info{
		Functions: map[string]string{
			"telemetry": "meter readings: ?hours=1..48 (default 6) or ?from=&to= (ISO 8601, at most 48 h)",
			"commands":  "pending commands and those applied in the lookback: ?lookbackHours=1..168 (default 24)",
			"config":    "the site's current configuration",
		},
		DefaultHours: 6, MaxWindowHours: 48, DefaultLookback: 24, MaxLookbackHours: 168,
	}
}

// errorBody is the adapter's error answer. It carries "message", which
// vmarket relays to the buyer as the provider's message.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Message: msg})
}

// ServeHTTP routes GET /info, /telemetry, /commands and /config.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fn := strings.Trim(r.URL.Path, "/")
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "only GET is served")
		return
	}
	switch fn {
	case "info":
		writeJSON(w, http.StatusOK, info())
	case "telemetry", "commands", "config":
		h.call(w, r, fn)
	default:
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such function: "+fn)
	}
}

// call authenticates a secret function call, finds the site and runs
// api.lua.
func (h *Handler) call(w http.ResponseWriter, r *http.Request, fn string) {
	ctx := r.Context()
	q := r.URL.Query()
	orderID, err := h.authenticate(ctx, r.Header.Get("Authorization"), q.Get("userServiceId"))
	if errors.Is(err, errBackend) {
		h.cfg.Logger.Error("vcp monitor: token check failed", "function", fn, "err", err)
		writeError(w, http.StatusServiceUnavailable, "BUSY", "cannot check the token now")
		return
	}
	if err != nil {
		h.cfg.Logger.Info("vcp monitor: call refused", "function", fn, "err", err)
		writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
		return
	}
	o, err := h.cfg.Orders.Order(ctx, orderID)
	if err != nil || o.Provider != Provider {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such user service: "+orderID)
		return
	}
	if o.ServiceStatus != market.ServiceRunning {
		writeError(w, http.StatusConflict, "CONFLICT", fmt.Sprintf("user service %s is %s, not running", o.ID, o.ServiceStatus))
		return
	}
	site := o.ServiceOptions["siteId"]
	query := map[string]any{}
	for k, vs := range q {
		if k != "userServiceId" && len(vs) > 0 {
			query[k] = vs[0]
		}
	}
	opts := runtime.RunOptions{
		Timeout: h.cfg.Timeout, AllowedHosts: h.cfg.AllowedHosts, RootCAs: h.cfg.RootCAs, KVScope: Provider,
		Logger: h.cfg.Logger.With("order", o.ID, "script", "api", "function", fn, "provider", Provider),
	}
	if h.cfg.Settings != nil {
		opts.Settings, opts.SecretKeys = h.cfg.Settings.ScriptSettings(Provider)
	}
	if h.cfg.Modules != nil {
		opts.Resolver = h.cfg.Modules()
	}
	input := map[string]any{"fn": fn, "siteId": site, "query": query, "now": h.cfg.Now().Unix()}
	res, err := h.cfg.Engine.Run(ctx, h.script, input, opts)
	if h.cfg.Record != nil {
		h.cfg.Record(RunRecord{Function: fn, OrderID: o.ID, Result: res, Err: err})
	}
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, runtime.ErrBusy) {
			status = http.StatusServiceUnavailable
		}
		h.cfg.Logger.Warn("vcp monitor: api.lua failed", "function", fn, "order", o.ID, "err", err)
		writeError(w, status, "UPSTREAM", "the site monitor failed: "+err.Error())
		return
	}
	out := res.Value
	if m, ok := out.(map[string]any); ok {
		if e, ok := m["error"].(map[string]any); ok {
			status := http.StatusBadGateway
			if s, ok := e["status"].(int64); ok && s >= 400 && s <= 599 {
				status = int(s)
			}
			code, _ := e["code"].(string)
			msg, _ := e["message"].(string)
			writeJSON(w, status, errorBody{Code: code, Message: msg, Details: e["details"]})
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// errBackend marks a failure to check a token (the kv store), as opposed
// to a refused token.
var errBackend = errors.New("token store unavailable")

// authenticate returns the order a call may read: the one a valid
// service token names (and userServiceId, when given, must match), or
// userServiceId when the bearer is that order's monitoring token.
func (h *Handler) authenticate(ctx context.Context, header, userServiceID string) (string, error) {
	tok, ok := strings.CutPrefix(header, "Bearer ")
	tok = strings.TrimSpace(tok)
	if !ok || tok == "" {
		return "", errors.New("a bearer token is required: call through vmarket's secret user API, or send the order's monitoring token")
	}
	if strings.Count(tok, ".") == 2 {
		claims, err := opauth.VerifyService(tok, h.cfg.ServiceKey(), Provider, h.cfg.Now())
		if err != nil {
			return "", fmt.Errorf("service token: %w", err)
		}
		if userServiceID != "" && userServiceID != claims.Order {
			return "", errors.New("the service token names another user service")
		}
		return claims.Order, nil
	}
	if userServiceID == "" {
		return "", errors.New("userServiceId is required with a monitoring token")
	}
	want, found, err := h.cfg.KV.Get(ctx, Provider, TokenKeyPrefix+userServiceID)
	if err != nil {
		return "", fmt.Errorf("%w: monitoring token: %w", errBackend, err)
	}
	sum := sha256.Sum256([]byte(tok))
	got := hex.EncodeToString(sum[:])
	if !found || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return "", errors.New("the monitoring token is not valid for this user service")
	}
	return userServiceID, nil
}
