// Package kassa24fake is a loopback fake of the Kassa24 payment terminal
// portal API, for tests. It serves plain HTTP on 127.0.0.1 and enforces the
// portal's documented rules and the conventions vmarket defines where the
// document is silent (see scripts/kassa24/README.md):
//
//   - POST /{resource}/{action} with Content-Type: application/json and a
//     body {"Body": {"PageSize", "CurrentPage", "Sort", "Params"}}; tag
//     names are case-insensitive in requests; PageSize defaults to 1000
//     and CurrentPage to 0;
//   - answers are {Code, Message, ResultData} or {Code, Message,
//     QueryData: [{Rows}], Metadata: {PageCount, PageSize, PageIndex,
//     RowCount}}, Code 0 on success; paging is real;
//   - dates are yyyyMMddHHmmss or yyyyMMdd, Kazakhstan time (UTC+5); a
//     date-only period covers whole days, both ends inclusive; decimals
//     use a dot;
//   - authentication (vmarket's choice): Authorization: Bearer {token}.
//
// Resources served: report/payments (QueryData) and payment/info
// (ResultData). Every call is recorded, and failures can be injected.
package kassa24fake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
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

// Answer codes (vmarket's choice: HTTP-like numbers, 0 for success).
const (
	CodeOK           = 0
	CodeBadRequest   = 400 // malformed JSON or envelope, bad parameter (HTTP 400)
	CodeUnauthorized = 401 // missing or wrong token (HTTP 401)
	CodeNotFound     = 404 // unknown resource/action or record (HTTP 404)
	CodeMethod       = 405 // not a POST (HTTP 405)
	CodeContentType  = 415 // not application/json (HTTP 415)
	CodeInternal     = 500 // server failure (HTTP 5xx)
)

// DefaultPageSize and DefaultCurrentPage are the documented defaults.
const (
	DefaultPageSize    = 1000
	DefaultCurrentPage = 0
)

// Date layouts: full and date-only.
const (
	LayoutDateTime = "20060102150405"
	LayoutDate     = "20060102"
)

var kzTime = time.FixedZone("UTC+5", 5*3600)

// Zone returns the zone Kassa24 dates are written in (UTC+5).
func Zone() *time.Location { return kzTime }

// Payment is one terminal payment in the fake's report.
type Payment struct {
	TransactionID string
	TerminalID    int64
	// Amount and Commission are in tiyn (0.01 tenge).
	Amount     int64
	Commission int64
	Date       time.Time
	// Account is what the payer entered: vmarket's order id.
	Account string
	// Status is "success" or "cancelled"; "success" when empty.
	Status string
}

// Config configures a fake.
type Config struct {
	// Token is the bearer token requests must carry.
	Token string
	// Payments are the payments known at start.
	Payments []Payment
	// Logger receives one debug line per call; discarded when nil.
	Logger *slog.Logger
}

// Call is one request the fake received, with its envelope decoded.
type Call struct {
	Time          time.Time
	Method        string
	Resource      string
	Action        string
	Authorization string
	Body          []byte
	PageSize      int
	CurrentPage   int
	Sort          string
	// Params has lower-cased keys and string values.
	Params map[string]string
	Status int
	Code   int
}

// Server is a running fake. Close it when done.
type Server struct {
	ts    *httptest.Server
	token string
	log   *slog.Logger
	stop  chan struct{}
	once  sync.Once

	// Faults injects failures; see fakekit.Faults.
	Faults fakekit.Faults
	calls  fakekit.Recorder[Call]

	mu       sync.Mutex
	payments []Payment
}

// New starts a fake on 127.0.0.1.
func New(cfg Config) *Server {
	s := &Server{token: cfg.Token, log: cfg.Logger, stop: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.Payments {
		s.AddPayment(p)
	}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL with a trailing slash, like the portal's
// documented hosts (e.g. http://127.0.0.1:40123/).
func (s *Server) URL() string { return s.ts.URL + "/" }

// Close stops the server, cutting injected delays short.
func (s *Server) Close() {
	s.once.Do(func() { close(s.stop) })
	s.ts.Close()
}

// AddPayment adds a payment to the report.
func (s *Server) AddPayment(p Payment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.Status = cmp.Or(p.Status, "success")
	s.payments = append(s.payments, p)
}

// Calls returns every call received, in order.
func (s *Server) Calls() []Call { return s.calls.All() }

// CallCount counts calls to resource/action (all when both are empty).
func (s *Server) CallCount(resource, action string) int {
	return s.calls.Count(func(c Call) bool {
		return (resource == "" || strings.EqualFold(c.Resource, resource)) && (action == "" || strings.EqualFold(c.Action, action))
	})
}

type answer struct {
	Code       int       `json:"Code"`
	Message    string    `json:"Message"`
	ResultData any       `json:"ResultData,omitempty"`
	QueryData  []rows    `json:"QueryData,omitempty"`
	Metadata   *metadata `json:"Metadata,omitempty"`
}

type rows struct {
	Rows []map[string]any `json:"Rows"`
}

type metadata struct {
	PageCount int `json:"PageCount"`
	PageSize  int `json:"PageSize"`
	PageIndex int `json:"PageIndex"`
	RowCount  int `json:"RowCount"`
}

func fail(status, code int, msg string) (int, answer) {
	return status, answer{Code: code, Message: msg}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{Time: time.Now(), Method: r.Method, Authorization: r.Header.Get("Authorization")}
	call.Resource, call.Action, _ = strings.Cut(strings.Trim(r.URL.Path, "/"), "/")
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	call.Body = body
	status, ans := s.handle(r, body, &call)
	call.Status, call.Code = status, ans.Code
	s.calls.Add(call)
	s.log.Debug("kassa24fake call", "resource", call.Resource, "action", call.Action, "status", status, "code", ans.Code)
	if !s.Faults.Wait(r.Context(), s.stop) {
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ans)
}

// field finds a key in a JSON object case-insensitively.
func field(m map[string]any, name string) (any, bool) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return nil, false
}

func intTag(m map[string]any, name string, def int) (int, error) {
	v, ok := field(m, name)
	if !ok || v == nil {
		return def, nil
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, fmt.Errorf("%s must be an integer", name)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s must be an integer", name)
	}
	return n, nil
}

func (s *Server) handle(r *http.Request, body []byte, call *Call) (int, answer) {
	if st, bad := s.Faults.TakeFailure(); bad {
		return fail(st, CodeInternal, "Internal server error")
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, CodeMethod, "Only POST is allowed")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, CodeContentType, "Content-Type must be application/json")
	}
	if tok, ok := strings.CutPrefix(call.Authorization, "Bearer "); !ok || tok == "" || tok != s.token || s.Faults.TakeAuthFailure() {
		return fail(http.StatusUnauthorized, CodeUnauthorized, "Unauthorized")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var env map[string]any
	if err := dec.Decode(&env); err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "Malformed JSON: "+err.Error())
	}
	b, ok := field(env, "Body")
	bm, isObj := b.(map[string]any)
	if !ok || !isObj {
		return fail(http.StatusBadRequest, CodeBadRequest, "Body is required")
	}
	var err error
	if call.PageSize, err = intTag(bm, "PageSize", DefaultPageSize); err != nil || call.PageSize < 1 {
		return fail(http.StatusBadRequest, CodeBadRequest, "PageSize must be a positive integer")
	}
	if call.CurrentPage, err = intTag(bm, "CurrentPage", DefaultCurrentPage); err != nil || call.CurrentPage < 0 {
		return fail(http.StatusBadRequest, CodeBadRequest, "CurrentPage must be a non-negative integer")
	}
	if v, ok := field(bm, "Sort"); ok && v != nil {
		str, isStr := v.(string)
		if !isStr {
			return fail(http.StatusBadRequest, CodeBadRequest, "Sort must be a string")
		}
		call.Sort = str
	}
	call.Params = map[string]string{}
	if v, ok := field(bm, "Params"); ok && v != nil {
		pm, isObj := v.(map[string]any)
		if !isObj {
			return fail(http.StatusBadRequest, CodeBadRequest, "Params must be an object")
		}
		for k, pv := range pm {
			switch x := pv.(type) {
			case string:
				call.Params[strings.ToLower(k)] = x
			case json.Number:
				call.Params[strings.ToLower(k)] = x.String()
			case bool:
				call.Params[strings.ToLower(k)] = strconv.FormatBool(x)
			case nil:
			default:
				return fail(http.StatusBadRequest, CodeBadRequest, "Params."+k+" must be a string or a number")
			}
		}
	}
	switch strings.ToLower(call.Resource) + "/" + strings.ToLower(call.Action) {
	case "report/payments":
		return s.report(call)
	case "payment/info":
		return s.info(call)
	default:
		return fail(http.StatusNotFound, CodeNotFound, "Unknown resource or action: "+call.Resource+"/"+call.Action)
	}
}

var (
	dateTimeRE = regexp.MustCompile(`^\d{14}$`)
	dateRE     = regexp.MustCompile(`^\d{8}$`)
	decimalRE  = regexp.MustCompile(`^-?\d+(\.\d{1,2})?$`)
)

// ParseDate parses a Kassa24 date, yyyyMMddHHmmss or yyyyMMdd, in UTC+5.
// For a date-only value, endOfPeriod picks the last instant of the day
// (the "to" end of a period) instead of its start.
func ParseDate(s string, endOfPeriod bool) (time.Time, error) {
	switch {
	case dateTimeRE.MatchString(s):
		return time.ParseInLocation(LayoutDateTime, s, kzTime)
	case dateRE.MatchString(s):
		t, err := time.ParseInLocation(LayoutDate, s, kzTime)
		if err != nil {
			return time.Time{}, err
		}
		if endOfPeriod {
			t = t.AddDate(0, 0, 1).Add(-time.Nanosecond)
		}
		return t, nil
	default:
		return time.Time{}, fmt.Errorf("date %q: want yyyyMMddHHmmss or yyyyMMdd", s)
	}
}

// ParseDecimal turns a dot decimal with at most two decimals into hundredths
// (tiyn); a comma is refused.
func ParseDecimal(s string) (int64, error) {
	if !decimalRE.MatchString(s) {
		return 0, fmt.Errorf("decimal %q: use a dot and at most 2 decimals", s)
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decimal %q: %w", s, err)
	}
	f, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	v := w*100 + f
	if neg {
		v = -v
	}
	return v, nil
}

// FormatDecimal renders hundredths as a dot decimal with two decimals.
func FormatDecimal(v int64) string {
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf("%s%d.%02d", sign, v/100, v%100)
}

func paymentRow(p Payment) map[string]any {
	return map[string]any{
		"idTransaction": p.TransactionID,
		"idTerminal":    p.TerminalID,
		"amount":        json.Number(FormatDecimal(p.Amount)),
		"commission":    json.Number(FormatDecimal(p.Commission)),
		"date":          p.Date.In(kzTime).Format(LayoutDateTime),
		"account":       p.Account,
		"status":        p.Status,
	}
}

// sortable lists the report's row fields Sort may name, with their
// comparison.
var sortable = map[string]func(a, b Payment) int{
	"idtransaction": func(a, b Payment) int { return strings.Compare(a.TransactionID, b.TransactionID) },
	"idterminal":    func(a, b Payment) int { return cmp.Compare(a.TerminalID, b.TerminalID) },
	"amount":        func(a, b Payment) int { return cmp.Compare(a.Amount, b.Amount) },
	"commission":    func(a, b Payment) int { return cmp.Compare(a.Commission, b.Commission) },
	"date":          func(a, b Payment) int { return a.Date.Compare(b.Date) },
	"account":       func(a, b Payment) int { return strings.Compare(a.Account, b.Account) },
	"status":        func(a, b Payment) int { return strings.Compare(a.Status, b.Status) },
}

func parseSort(spec string) (func(a, b Payment) int, error) {
	type key struct {
		cmp  func(a, b Payment) int
		desc bool
	}
	var keys []key
	for part := range strings.SplitSeq(spec, ",") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		c, ok := sortable[strings.ToLower(f[0])]
		if !ok || len(f) > 2 {
			return nil, fmt.Errorf("cannot sort by %q", strings.TrimSpace(part))
		}
		k := key{cmp: c}
		if len(f) == 2 {
			switch strings.ToLower(f[1]) {
			case "asc":
			case "desc":
				k.desc = true
			default:
				return nil, fmt.Errorf("sort direction %q: want asc or desc", f[1])
			}
		}
		keys = append(keys, k)
	}
	keys = append(keys, key{cmp: sortable["date"]}, key{cmp: sortable["idtransaction"]})
	return func(a, b Payment) int {
		for _, k := range keys {
			if c := k.cmp(a, b); c != 0 {
				if k.desc {
					return -c
				}
				return c
			}
		}
		return 0
	}, nil
}

func (s *Server) report(call *Call) (int, answer) {
	p := call.Params
	if p["from"] == "" || p["to"] == "" {
		return fail(http.StatusBadRequest, CodeBadRequest, "Params from and to are required")
	}
	from, err := ParseDate(p["from"], false)
	if err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "from: "+err.Error())
	}
	to, err := ParseDate(p["to"], true)
	if err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "to: "+err.Error())
	}
	if to.Before(from) {
		return fail(http.StatusBadRequest, CodeBadRequest, "from must not be after to")
	}
	var terminal int64
	if v := p["idterminal"]; v != "" {
		if terminal, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fail(http.StatusBadRequest, CodeBadRequest, "idTerminal must be an integer")
		}
	}
	minAmount := int64(-1)
	if v := p["minamount"]; v != "" {
		if minAmount, err = ParseDecimal(v); err != nil {
			return fail(http.StatusBadRequest, CodeBadRequest, "minAmount: "+err.Error())
		}
	}
	order, err := parseSort(call.Sort)
	if err != nil {
		return fail(http.StatusBadRequest, CodeBadRequest, "Sort: "+err.Error())
	}
	s.mu.Lock()
	var match []Payment
	for _, pay := range s.payments {
		if pay.Date.Before(from) || pay.Date.After(to) ||
			(terminal != 0 && pay.TerminalID != terminal) ||
			(p["account"] != "" && pay.Account != p["account"]) ||
			(minAmount >= 0 && pay.Amount < minAmount) {
			continue
		}
		match = append(match, pay)
	}
	s.mu.Unlock()
	slices.SortStableFunc(match, order)
	size, page := call.PageSize, call.CurrentPage
	start := min(page*size, len(match))
	end := min(start+size, len(match))
	out := make([]map[string]any, 0, end-start)
	for _, pay := range match[start:end] {
		out = append(out, paymentRow(pay))
	}
	return http.StatusOK, answer{
		Code: CodeOK, Message: "OK",
		QueryData: []rows{{Rows: out}},
		Metadata: &metadata{
			PageCount: (len(match) + size - 1) / size,
			PageSize:  len(out),
			PageIndex: page,
			RowCount:  len(match),
		},
	}
}

func (s *Server) info(call *Call) (int, answer) {
	id, account := call.Params["idtransaction"], call.Params["account"]
	if id == "" && account == "" {
		return fail(http.StatusBadRequest, CodeBadRequest, "Params idTransaction or account is required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.payments {
		if (id != "" && p.TransactionID == id) || (id == "" && p.Account == account) {
			return http.StatusOK, answer{Code: CodeOK, Message: "Success!", ResultData: paymentRow(p)}
		}
	}
	return fail(http.StatusNotFound, CodeNotFound, "Payment not found")
}
