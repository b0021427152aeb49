// Package vccfake is a loopback fake of the VCC (Towngas gas account)
// open API, for tests. It serves HTTPS on 127.0.0.1 and enforces the rules
// the VCC interface document states and the conventions vmarket defines
// where the document is silent (see scripts/vcc/README.md):
//
//   - GET https://{host}/vcc-openapi/{resource}?{query}; other methods are
//     refused;
//   - the Authorization header must equal the configured API key;
//   - every key and value of the query string must be url-encoded UTF-8:
//     only unreserved characters, '+' and %XX escapes may appear raw, and
//     the decoded text must be valid UTF-8;
//   - required ({}) parameters must be present and non-empty, values are
//     validated;
//   - a gas withdrawal is idempotent on the caller's order number: a
//     repeated withdrawal returns the first result and never withdraws
//     twice; the fake tracks account balances.
//
// Every call is recorded with its decoded parameters, and failures can be
// injected (forced 5xx, rejected authentication, delays). An injected delay
// is applied after the call took effect, before the answer is written: a
// client that times out has still withdrawn, as when an answer is lost.
package vccfake

import (
	"cmp"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vmarket/vmarket/scripts/internal/fakekit"
)

// Default resource names: vmarket's defaults, configurable in the fake and
// in the vcc Lua module.
const (
	DefaultAccountQuery   = "account/query"
	DefaultWithdraw       = "gas/withdraw"
	DefaultWithdrawReport = "gas/withdraw/report"
)

// PathPrefix is the path under which every VCC resource lives.
const PathPrefix = "/vcc-openapi/"

// Result codes of the VCC answer envelope, as vmarket defines them.
const (
	CodeOK                  = "0000" // success
	CodeMissingParam        = "1001" // a required parameter is absent or empty (HTTP 400)
	CodeInvalidParam        = "1002" // a parameter value is malformed (HTTP 400)
	CodeBadEncoding         = "1003" // the query string is not url-encoded UTF-8 (HTTP 400)
	CodeUnknownResource     = "1004" // no such resource (HTTP 404)
	CodeMethodNotAllowed    = "1005" // not a GET (HTTP 405)
	CodeUnauthorized        = "2001" // missing or wrong Authorization (HTTP 401)
	CodeAccountNotFound     = "3001" // unknown account number (HTTP 200)
	CodeInsufficientBalance = "3002" // balance below the amount (HTTP 200)
	CodeOrderConflict       = "3003" // order number reused with other parameters (HTTP 200)
	CodeWithdrawalNotFound  = "3004" // report for an unknown order number (HTTP 200)
	CodeReportConflict      = "3005" // a different result was already reported (HTTP 200)
	CodeAccountFrozen       = "3006" // the account may not withdraw (HTTP 200)
	CodeSystemError         = "9999" // server failure (HTTP 5xx)
)

// Withdrawal statuses.
const (
	StatusWithdrawn = "WITHDRAWN" // taken from the account, result not reported yet
	StatusSuccess   = "SUCCESS"   // the top-up machine wrote the gas to the card
	StatusFailed    = "FAILED"    // the machine failed; the amount went back to the account
)

// ChinaTime is the zone VCC timestamps are written in (UTC+8).
var chinaTime = time.FixedZone("CST", 8*3600)

// ChinaTime returns the fixed UTC+8 zone VCC timestamps are written in.
func ChinaTime() *time.Location { return chinaTime }

// TimeLayout is the layout of VCC timestamps (yyyyMMddHHmmss).
const TimeLayout = "20060102150405"

// Account is one gas account known to the fake. Balance is in fen (0.01
// yuan).
type Account struct {
	AccountNo    string
	CustomerName string
	Address      string
	MeterNo      string
	CardNo       string
	Balance      int64
	// Status is "NORMAL" (the default when empty) or "FROZEN".
	Status string
}

// Resources names the three real-time resources; empty fields take the
// defaults.
type Resources struct {
	AccountQuery   string
	Withdraw       string
	WithdrawReport string
}

// Config configures a fake. APIKey is required.
type Config struct {
	// APIKey is the value the Authorization header must equal.
	APIKey string
	// Accounts are the accounts known at start.
	Accounts []Account
	// Resources overrides the resource names.
	Resources Resources
	// Now is the fake's clock; time.Now when nil.
	Now func() time.Time
	// Logger receives one debug line per call; discarded when nil.
	Logger *slog.Logger
}

// Call is one request the fake received.
type Call struct {
	Time          time.Time
	Method        string
	Resource      string
	RawQuery      string
	Params        map[string]string
	Authorization string
	// Status is the HTTP status answered; Code the envelope code.
	Status int
	Code   string
}

// Withdrawal is one gas withdrawal the fake performed.
type Withdrawal struct {
	OrderNo    string
	WithdrawNo string
	AccountNo  string
	Amount     int64 // fen
	MachineID  string
	CardNo     string
	Remark     string
	Time       time.Time
	Status     string
	ReportedAt time.Time
	Reason     string
}

// Server is a running fake. Close it when done.
type Server struct {
	ts     *httptest.Server
	apiKey string
	res    Resources
	now    func() time.Time
	log    *slog.Logger
	stop   chan struct{}
	closed sync.Once

	// Faults injects failures; see fakekit.Faults.
	Faults fakekit.Faults
	calls  fakekit.Recorder[Call]

	mu          sync.Mutex
	accounts    map[string]*Account
	withdrawals map[string]*Withdrawal
	balanceAt   map[string]int64 // balance right after each withdrawal
	order       []string
	seq         int
}

// New starts a fake on 127.0.0.1 with a TLS certificate issued by
// httptest's test CA (see CACertPEM).
func New(cfg Config) *Server {
	s := &Server{
		apiKey:      cfg.APIKey,
		res:         cfg.Resources,
		now:         cfg.Now,
		log:         cfg.Logger,
		stop:        make(chan struct{}),
		accounts:    map[string]*Account{},
		withdrawals: map[string]*Withdrawal{},
		balanceAt:   map[string]int64{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.res.AccountQuery = cmp.Or(s.res.AccountQuery, DefaultAccountQuery)
	s.res.Withdraw = cmp.Or(s.res.Withdraw, DefaultWithdraw)
	s.res.WithdrawReport = cmp.Or(s.res.WithdrawReport, DefaultWithdrawReport)
	for _, a := range cfg.Accounts {
		s.AddAccount(a)
	}
	s.ts = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	return s
}

// URL is the server's base URL, e.g. https://127.0.0.1:40123.
func (s *Server) URL() string { return s.ts.URL }

// BaseURL is the URL resources are appended to: URL()+"/vcc-openapi/".
func (s *Server) BaseURL() string { return s.ts.URL + PathPrefix }

// CACertPEM is the PEM of the certificate the server presents (self-signed,
// so it is its own CA); a client that trusts it can call the fake.
func (s *Server) CACertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.ts.Certificate().Raw})
}

// Client returns an HTTP client that trusts the fake's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Close stops the server, cutting injected delays short.
func (s *Server) Close() {
	s.closed.Do(func() { close(s.stop) })
	s.ts.Close()
}

// AddAccount adds or replaces an account.
func (s *Server) AddAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a.Status = cmp.Or(a.Status, "NORMAL")
	s.accounts[a.AccountNo] = &a
}

// Balance returns an account's balance in fen, and whether it exists.
func (s *Server) Balance(accountNo string) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[accountNo]
	if !ok {
		return 0, false
	}
	return a.Balance, true
}

// Withdrawals returns every withdrawal performed, in order.
func (s *Server) Withdrawals() []Withdrawal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Withdrawal, 0, len(s.order))
	for _, no := range s.order {
		out = append(out, *s.withdrawals[no])
	}
	return out
}

// Withdrawal returns the withdrawal made for an order number.
func (s *Server) Withdrawal(orderNo string) (Withdrawal, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.withdrawals[orderNo]
	if !ok {
		return Withdrawal{}, false
	}
	return *w, true
}

// Calls returns every call received, in order.
func (s *Server) Calls() []Call { return s.calls.All() }

// CallCount counts the calls made to a resource (all calls when resource is
// empty).
func (s *Server) CallCount(resource string) int {
	return s.calls.Count(func(c Call) bool { return resource == "" || c.Resource == resource })
}

// Count counts the calls that satisfy match (all when match is nil).
func (s *Server) Count(match func(Call) bool) int { return s.calls.Count(match) }

// OrderCalls counts the calls to a resource that carried the given order
// number.
func (s *Server) OrderCalls(resource, orderNo string) int {
	return s.calls.Count(func(c Call) bool { return c.Resource == resource && c.Params["orderNo"] == orderNo })
}

// Resources returns the resource names in force.
func (s *Server) Resources() Resources { return s.res }

// envelope is the VCC answer shape.
type envelope struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Data      any    `json:"data"`
	RequestID string `json:"requestId,omitempty"`
}

// paramSpec lists a resource's required ({}) and optional ([]) parameters.
type paramSpec struct {
	required []string
	optional []string
}

// Common parameters every resource takes.
var (
	commonRequired = []string{"timestamp"}
	commonOptional = []string{"requestId"}
)

var (
	rawComponentRE = regexp.MustCompile(`^(?:[A-Za-z0-9\-_.~+]|%[0-9A-Fa-f]{2})*$`)
	amountRE       = regexp.MustCompile(`^[0-9]{1,8}(?:\.[0-9]{1,2})?$`)
	orderNoRE      = regexp.MustCompile(`^[A-Za-z0-9_\-.:]{1,64}$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	call := Call{
		Time:          s.now(),
		Method:        r.Method,
		Resource:      strings.TrimPrefix(r.URL.Path, PathPrefix),
		RawQuery:      r.URL.RawQuery,
		Authorization: r.Header.Get("Authorization"),
	}
	status, env := s.handle(r, &call)
	call.Status, call.Code = status, env.Code
	s.calls.Add(call)
	s.log.Debug("vccfake call", "resource", call.Resource, "status", status, "code", env.Code)
	if !s.Faults.Wait(r.Context(), s.stop) {
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(env)
}

func fail(status int, code, msg string) (int, envelope) {
	return status, envelope{Code: code, Message: msg}
}

func (s *Server) handle(r *http.Request, call *Call) (int, envelope) {
	// A lenient decoding first, so that refused calls are recorded with
	// their parameters too; the strict one below decides.
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil {
		call.Params = map[string]string{}
		for k, v := range q {
			call.Params[k] = v[0]
		}
	}
	if st, bad := s.Faults.TakeFailure(); bad {
		return fail(st, CodeSystemError, "系统繁忙，请稍后再试")
	}
	if r.Method != http.MethodGet {
		return fail(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "只支持GET请求")
	}
	if !strings.HasPrefix(r.URL.Path, PathPrefix) {
		return fail(http.StatusNotFound, CodeUnknownResource, "资源不存在")
	}
	key := r.Header.Get("Authorization")
	if key == "" || key != s.apiKey || s.Faults.TakeAuthFailure() {
		return fail(http.StatusUnauthorized, CodeUnauthorized, "鉴权失败：API key 无效")
	}
	params, err := parseStrictQuery(r.URL.RawQuery)
	if err != nil {
		return fail(http.StatusBadRequest, CodeBadEncoding, "参数编码错误："+err.Error())
	}
	call.Params = params
	var spec paramSpec
	var h func(map[string]string) (int, envelope)
	switch call.Resource {
	case s.res.AccountQuery:
		spec = paramSpec{required: []string{"accountNo"}, optional: []string{"cardNo"}}
		h = s.accountQuery
	case s.res.Withdraw:
		spec = paramSpec{required: []string{"accountNo", "orderNo", "amount"}, optional: []string{"machineId", "cardNo", "remark"}}
		h = s.withdraw
	case s.res.WithdrawReport:
		spec = paramSpec{required: []string{"orderNo", "result"}, optional: []string{"withdrawNo", "reason", "reportTime"}}
		h = s.report
	default:
		return fail(http.StatusNotFound, CodeUnknownResource, "资源不存在："+call.Resource)
	}
	for _, k := range slices.Concat(commonRequired, spec.required) {
		if params[k] == "" {
			return fail(http.StatusBadRequest, CodeMissingParam, "缺少必填参数："+k)
		}
	}
	if _, err := time.ParseInLocation(TimeLayout, params["timestamp"], chinaTime); err != nil {
		return fail(http.StatusBadRequest, CodeInvalidParam, "参数格式错误：timestamp 应为 yyyyMMddHHmmss")
	}
	status, env := h(params)
	env.RequestID = params["requestId"]
	return status, env
}

// parseStrictQuery decodes a raw query string, refusing anything that is
// not url-encoded UTF-8 and duplicate keys.
func parseStrictQuery(raw string) (map[string]string, error) {
	out := map[string]string{}
	if raw == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		if k == "" {
			return nil, fmt.Errorf("empty key in %q", part)
		}
		for _, c := range []string{k, v} {
			if !rawComponentRE.MatchString(c) {
				return nil, fmt.Errorf("%q is not url-encoded", c)
			}
		}
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k, err)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("value of %q: %w", dk, err)
		}
		if !utf8.ValidString(dk) || !utf8.ValidString(dv) {
			return nil, fmt.Errorf("parameter %q is not UTF-8", k)
		}
		if _, dup := out[dk]; dup {
			return nil, fmt.Errorf("parameter %q given twice", dk)
		}
		out[dk] = dv
	}
	return out, nil
}

// ParseAmount turns a yuan decimal with at most two decimals ("12.5",
// "12.50", "12") into fen.
func ParseAmount(s string) (int64, error) {
	if !amountRE.MatchString(s) {
		return 0, fmt.Errorf("amount %q: want a decimal with at most 2 decimals", s)
	}
	whole, frac, _ := strings.Cut(s, ".")
	frac = (frac + "00")[:2]
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*100 + f, nil
}

// FormatAmount renders fen as a yuan decimal with two decimals.
func FormatAmount(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

func ok(data any) (int, envelope) {
	return http.StatusOK, envelope{Code: CodeOK, Message: "成功", Data: data}
}

func (s *Server) accountQuery(p map[string]string) (int, envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.accounts[p["accountNo"]]
	if !found {
		return fail(http.StatusOK, CodeAccountNotFound, "账户不存在")
	}
	if c := p["cardNo"]; c != "" && c != a.CardNo {
		return fail(http.StatusOK, CodeAccountNotFound, "卡号与账户不匹配")
	}
	return ok(map[string]any{
		"accountNo":    a.AccountNo,
		"customerName": a.CustomerName,
		"address":      a.Address,
		"meterNo":      a.MeterNo,
		"cardNo":       a.CardNo,
		"balance":      FormatAmount(a.Balance),
		"status":       a.Status,
	})
}

func withdrawalData(w *Withdrawal, balance int64) map[string]any {
	d := map[string]any{
		"orderNo":      w.OrderNo,
		"withdrawNo":   w.WithdrawNo,
		"accountNo":    w.AccountNo,
		"amount":       FormatAmount(w.Amount),
		"balance":      FormatAmount(balance),
		"withdrawTime": w.Time.In(chinaTime).Format(TimeLayout),
		"status":       w.Status,
	}
	if w.Remark != "" {
		d["remark"] = w.Remark
	}
	if !w.ReportedAt.IsZero() {
		d["reportTime"] = w.ReportedAt.In(chinaTime).Format(TimeLayout)
	}
	return d
}

func (s *Server) withdraw(p map[string]string) (int, envelope) {
	if !orderNoRE.MatchString(p["orderNo"]) {
		return fail(http.StatusBadRequest, CodeInvalidParam, "参数格式错误：orderNo")
	}
	amount, err := ParseAmount(p["amount"])
	if err != nil || amount <= 0 {
		return fail(http.StatusBadRequest, CodeInvalidParam, "参数格式错误：amount 应为大于0且最多两位小数的金额")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, found := s.accounts[p["accountNo"]]
	if !found {
		return fail(http.StatusOK, CodeAccountNotFound, "账户不存在")
	}
	if prev, dup := s.withdrawals[p["orderNo"]]; dup {
		if prev.AccountNo != p["accountNo"] || prev.Amount != amount {
			return fail(http.StatusOK, CodeOrderConflict, "订单号已存在且参数不一致")
		}
		// Idempotent repeat: the first result, balance as it stood then.
		return ok(withdrawalData(prev, s.balanceAfter(prev)))
	}
	if a.Status != "NORMAL" {
		return fail(http.StatusOK, CodeAccountFrozen, "账户状态异常，不能提气")
	}
	if c := p["cardNo"]; c != "" && c != a.CardNo {
		return fail(http.StatusOK, CodeAccountNotFound, "卡号与账户不匹配")
	}
	if a.Balance < amount {
		return fail(http.StatusOK, CodeInsufficientBalance, "账户余额不足")
	}
	a.Balance -= amount
	s.seq++
	w := &Withdrawal{
		OrderNo:    p["orderNo"],
		WithdrawNo: fmt.Sprintf("W%s%06d", s.now().In(chinaTime).Format("20060102"), s.seq),
		AccountNo:  a.AccountNo,
		Amount:     amount,
		MachineID:  p["machineId"],
		CardNo:     p["cardNo"],
		Remark:     p["remark"],
		Time:       s.now(),
		Status:     StatusWithdrawn,
	}
	s.withdrawals[w.OrderNo] = w
	s.order = append(s.order, w.OrderNo)
	s.balanceAt[w.OrderNo] = a.Balance
	return ok(withdrawalData(w, a.Balance))
}

func (s *Server) balanceAfter(w *Withdrawal) int64 { return s.balanceAt[w.OrderNo] }

func (s *Server) report(p map[string]string) (int, envelope) {
	result := p["result"]
	if result != StatusSuccess && result != StatusFailed {
		return fail(http.StatusBadRequest, CodeInvalidParam, "参数格式错误：result 应为 SUCCESS 或 FAILED")
	}
	reported := s.now()
	if rt := p["reportTime"]; rt != "" {
		t, err := time.ParseInLocation(TimeLayout, rt, chinaTime)
		if err != nil {
			return fail(http.StatusBadRequest, CodeInvalidParam, "参数格式错误：reportTime 应为 yyyyMMddHHmmss")
		}
		reported = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, found := s.withdrawals[p["orderNo"]]
	if !found {
		return fail(http.StatusOK, CodeWithdrawalNotFound, "提气记录不存在")
	}
	if no := p["withdrawNo"]; no != "" && no != w.WithdrawNo {
		return fail(http.StatusBadRequest, CodeInvalidParam, "参数错误：withdrawNo 与订单不匹配")
	}
	a := s.accounts[w.AccountNo]
	switch w.Status {
	case StatusWithdrawn:
		w.Status, w.ReportedAt, w.Reason = result, reported, p["reason"]
		if result == StatusFailed {
			a.Balance += w.Amount
		}
	case result:
		// Same result reported again: idempotent.
	default:
		return fail(http.StatusOK, CodeReportConflict, "该订单已上报不同的结果")
	}
	return ok(map[string]any{
		"orderNo":    w.OrderNo,
		"withdrawNo": w.WithdrawNo,
		"status":     w.Status,
		"balance":    FormatAmount(a.Balance),
		"reportTime": w.ReportedAt.In(chinaTime).Format(TimeLayout),
	})
}
