// Package vcpfake is a loopback fake of the VCP energy-site REST
// integration API, for tests. It serves plain HTTP on 127.0.0.1 and
// enforces the documented rules:
//
//   - GET /api/v1/vcp/sites/{siteId}/commands, /config and
//     /telemetry/meter?from=&to=, authorized by the api-key header;
//   - siteId must be a UUID; from is required, to defaults to now, both
//     ISO 8601 date-times (RFC 3339), and the window is at most 48 hours;
//   - errors use the envelope {code, details, error, message, statusCode}
//     with codes VALIDATION_ERROR (400), UNAUTHORIZED (401), FORBIDDEN (403,
//     a key without the endpoint's scope) and INTERNAL_SERVER_ERROR (500);
//     vmarket's fake adds NOT_FOUND (404) for an unknown site and
//     METHOD_NOT_ALLOWED (405);
//   - commands lists pending commands and those applied within the
//     lookback (24 hours by default, ?lookbackHours=1..168).
//
// Every call is recorded, and failures can be injected.
package vcpfake

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmarket/vmarket/scripts/internal/fakekit"
)

// API key scopes, one per endpoint.
const (
	ScopeCommands  = "commands:read"
	ScopeConfig    = "config:read"
	ScopeTelemetry = "telemetry:read"
)

// Error codes of the envelope.
const (
	CodeValidation = "VALIDATION_ERROR"
	CodeUnauth     = "UNAUTHORIZED"
	CodeForbidden  = "FORBIDDEN"
	CodeInternal   = "INTERNAL_SERVER_ERROR"
	CodeNotFound   = "NOT_FOUND"
	CodeMethod     = "METHOD_NOT_ALLOWED"
)

// MaxWindow is the longest meter-reading window a query may ask for.
const MaxWindow = 48 * time.Hour

// DefaultLookback is how far back applied commands are listed.
const DefaultLookback = 24 * time.Hour

// ReadingInterval is the spacing of the fake's synthetic meter readings.
const ReadingInterval = 15 * time.Minute

// PathPrefix is the path every endpoint lives under.
const PathPrefix = "/api/v1/vcp/sites/"

// Command is a command sent to a site.
type Command struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Status    string         `json:"status"` // "pending" or "applied"
	CreatedAt time.Time      `json:"createdAt"`
	AppliedAt *time.Time     `json:"appliedAt,omitempty"`
	Payload   map[string]any `json:"payload,omitempty"`
}

// SiteConfig is a site's current configuration. Nil maps are answered as
// empty objects; pendingCommands and siteId are filled in by the fake.
type SiteConfig struct {
	ActiveSchedule map[string]any
	Constraints    map[string]any
	Fallback       map[string]any
	ModeOverride   map[string]any
	OperatingMode  string
}

// Reading is one meter reading.
type Reading struct {
	Timestamp time.Time `json:"timestamp"`
	MeterID   string    `json:"meterId"`
	PowerKW   float64   `json:"activePowerKw"`
	ImportKWh float64   `json:"importKwh"`
	ExportKWh float64   `json:"exportKwh"`
}

// Config configures a fake.
type Config struct {
	// Keys maps each valid API key to its scopes.
	Keys map[string][]string
	// Now is the fake's clock; time.Now when nil.
	Now func() time.Time
	// Logger receives one debug line per call; discarded when nil.
	Logger *slog.Logger
}

// Call is one request the fake received.
type Call struct {
	Time     time.Time
	Method   string
	Path     string
	SiteID   string
	Endpoint string // "commands", "config", "telemetry/meter" or ""
	Query    map[string][]string
	APIKey   string
	Status   int
	Code     string // empty on success
}

type site struct {
	cfg      SiteConfig
	commands []Command
}

// Server is a running fake. Close it when done.
type Server struct {
	ts   *httptest.Server
	now  func() time.Time
	log  *slog.Logger
	stop chan struct{}
	once sync.Once

	// Faults injects failures; see fakekit.Faults.
	Faults fakekit.Faults
	calls  fakekit.Recorder[Call]

	mu    sync.Mutex
	keys  map[string][]string
	sites map[string]*site
}

// New starts a fake on 127.0.0.1.
func New(cfg Config) *Server {
	s := &Server{now: cfg.Now, log: cfg.Logger, stop: make(chan struct{}), keys: map[string][]string{}, sites: map[string]*site{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for k, sc := range cfg.Keys {
		s.keys[k] = slices.Clone(sc)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.ts.URL }

// Close stops the server, cutting injected delays short.
func (s *Server) Close() {
	s.once.Do(func() { close(s.stop) })
	s.ts.Close()
}

// SetKey adds or replaces an API key with its scopes.
func (s *Server) SetKey(key string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = scopes
}

// AddSite adds or replaces a site.
func (s *Server) AddSite(siteID string, cfg SiteConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.sites[strings.ToLower(siteID)]
	st := &site{cfg: cfg}
	if old != nil {
		st.commands = old.commands
	}
	s.sites[strings.ToLower(siteID)] = st
}

// AddCommand adds a command to a site (which must have been added).
func (s *Server) AddCommand(siteID string, c Command) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.sites[strings.ToLower(siteID)]
	if !ok {
		return fmt.Errorf("vcpfake: unknown site %s", siteID)
	}
	st.commands = append(st.commands, c)
	return nil
}

// Calls returns every call received, in order.
func (s *Server) Calls() []Call { return s.calls.All() }

// Count counts the calls that satisfy match (all when match is nil).
func (s *Server) Count(match func(Call) bool) int { return s.calls.Count(match) }

// CallCount counts the calls to an endpoint ("commands", "config",
// "telemetry/meter"; all when empty).
func (s *Server) CallCount(endpoint string) int {
	return s.calls.Count(func(c Call) bool { return endpoint == "" || c.Endpoint == endpoint })
}

// Readings returns the synthetic readings the fake serves for a site and
// window: one per ReadingInterval boundary in [from, to].
func Readings(siteID string, from, to time.Time) []Reading {
	out := []Reading{}
	start := from.UTC().Truncate(ReadingInterval)
	if start.Before(from) {
		start = start.Add(ReadingInterval)
	}
	for t := start; !t.After(to); t = t.Add(ReadingInterval) {
		q := float64(t.Unix()) / ReadingInterval.Seconds()
		out = append(out, Reading{
			Timestamp: t,
			MeterID:   "meter-" + siteID[:8],
			PowerKW:   math.Round((5+3*math.Sin(q/8))*100) / 100,
			ImportKWh: math.Round(q*1.25*100) / 100,
			ExportKWh: math.Round(q*0.5*100) / 100,
		})
	}
	return out
}

type apiError struct {
	Code       string         `json:"code"`
	Details    map[string]any `json:"details"`
	Error      string         `json:"error"`
	Message    string         `json:"message"`
	StatusCode int            `json:"statusCode"`
}

func errorOf(status int, code, msg string, details map[string]any) (int, any) {
	if details == nil {
		details = map[string]any{}
	}
	return status, apiError{Code: code, Details: details, Error: http.StatusText(status), Message: msg, StatusCode: status}
}

func validation(field, reason string) (int, any) {
	return errorOf(http.StatusBadRequest, CodeValidation, "Invalid path or query parameters ("+field+": "+reason+")",
		map[string]any{"field": field, "reason": reason})
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var endpointScopes = map[string]string{
	"commands":        ScopeCommands,
	"config":          ScopeConfig,
	"telemetry/meter": ScopeTelemetry,
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: s.now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), APIKey: r.Header.Get("api-key")}
	status, body := s.handle(r, &call)
	call.Status = status
	if e, ok := body.(apiError); ok {
		call.Code = e.Code
	}
	s.calls.Add(call)
	s.log.Debug("vcpfake call", "path", call.Path, "status", status, "code", call.Code)
	if !s.Faults.Wait(r.Context(), s.stop) {
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) handle(r *http.Request, call *Call) (int, any) {
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	siteID, endpoint, _ := strings.Cut(rest, "/")
	scope, known := endpointScopes[endpoint]
	if !ok || !known {
		return errorOf(http.StatusNotFound, CodeNotFound, "Route not found", nil)
	}
	call.SiteID, call.Endpoint = siteID, endpoint
	if st, bad := s.Faults.TakeFailure(); bad {
		return errorOf(st, CodeInternal, "Internal server error", nil)
	}
	if r.Method != http.MethodGet {
		return errorOf(http.StatusMethodNotAllowed, CodeMethod, "Only GET is allowed", nil)
	}
	key := r.Header.Get("api-key")
	s.mu.Lock()
	scopes, validKey := s.keys[key]
	s.mu.Unlock()
	if key == "" || !validKey || s.Faults.TakeAuthFailure() {
		return errorOf(http.StatusUnauthorized, CodeUnauth, "Missing or invalid API key", nil)
	}
	if !slices.Contains(scopes, scope) {
		return errorOf(http.StatusForbidden, CodeForbidden, "Insufficient API key scope", map[string]any{"required": scope})
	}
	if !uuidRE.MatchString(siteID) {
		return validation("siteId", "must be a UUID")
	}
	q := r.URL.Query()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch endpoint {
	case "commands":
		lookback := DefaultLookback
		if v := q.Get("lookbackHours"); v != "" {
			h, err := strconv.Atoi(v)
			if err != nil || h < 1 || h > 168 {
				return validation("lookbackHours", "must be an integer from 1 to 168")
			}
			lookback = time.Duration(h) * time.Hour
		}
		st, ok := s.sites[strings.ToLower(siteID)]
		if !ok {
			return errorOf(http.StatusNotFound, CodeNotFound, "Site not found", nil)
		}
		cmds := []Command{}
		for _, c := range st.commands {
			if c.Status == "pending" || (c.AppliedAt != nil && !c.AppliedAt.Before(now.Add(-lookback))) {
				cmds = append(cmds, c)
			}
		}
		return http.StatusOK, map[string]any{"commands": cmds}
	case "config":
		st, ok := s.sites[strings.ToLower(siteID)]
		if !ok {
			return errorOf(http.StatusNotFound, CodeNotFound, "Site not found", nil)
		}
		pending := []Command{}
		for _, c := range st.commands {
			if c.Status == "pending" {
				pending = append(pending, c)
			}
		}
		obj := func(m map[string]any) map[string]any {
			if m == nil {
				return map[string]any{}
			}
			return m
		}
		return http.StatusOK, map[string]any{
			"activeSchedule":  obj(st.cfg.ActiveSchedule),
			"constraints":     obj(st.cfg.Constraints),
			"fallback":        obj(st.cfg.Fallback),
			"modeOverride":    obj(st.cfg.ModeOverride),
			"operatingMode":   st.cfg.OperatingMode,
			"pendingCommands": pending,
			"siteId":          siteID,
		}
	default: // telemetry/meter
		fromS := q.Get("from")
		if fromS == "" {
			return validation("from", "is required")
		}
		from, err := time.Parse(time.RFC3339Nano, fromS)
		if err != nil {
			return validation("from", "must be an ISO 8601 date-time")
		}
		to := now
		if toS := q.Get("to"); toS != "" {
			if to, err = time.Parse(time.RFC3339Nano, toS); err != nil {
				return validation("to", "must be an ISO 8601 date-time")
			}
		}
		if to.Before(from) {
			return validation("from", "must not be after to")
		}
		if to.Sub(from) > MaxWindow {
			return validation("from", "window exceeds 48h")
		}
		if _, ok := s.sites[strings.ToLower(siteID)]; !ok {
			return errorOf(http.StatusNotFound, CodeNotFound, "Site not found", nil)
		}
		return http.StatusOK, map[string]any{"readings": Readings(siteID, from, to)}
	}
}
