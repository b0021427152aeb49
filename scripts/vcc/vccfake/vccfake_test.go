package vccfake_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
)

const key = "test-key-圈存"

var fixed = time.Date(2025, 3, 14, 9, 30, 0, 0, vccfake.ChinaTime())

func newFake(t *testing.T) *vccfake.Server {
	t.Helper()
	s := vccfake.New(vccfake.Config{
		APIKey: key,
		Now:    func() time.Time { return fixed },
		Accounts: []vccfake.Account{
			{AccountNo: "880001", CustomerName: "陈大文", Address: "香港九龙旺角弥敦道 88 号 12 楼 B 室", MeterNo: "M-01", CardNo: "C-01", Balance: 50000},
			{AccountNo: "880002", CustomerName: "李小龙", Address: "深圳市南山区", Balance: 100, Status: "FROZEN"},
		},
	})
	t.Cleanup(s.Close)
	return s
}

type answer struct {
	Status    int
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Data      map[string]any `json:"data"`
	RequestID string         `json:"requestId"`
}

// get calls the fake with a raw query string as given.
func get(t *testing.T, s *vccfake.Server, method, resource, rawQuery, auth string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.BaseURL()+resource, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.RawQuery = rawQuery
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	a.Status = resp.StatusCode
	return a
}

func q(kv ...string) string {
	v := url.Values{"timestamp": {"20250314093000"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

func TestRules(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		resource   string
		query      string
		auth       string
		wantStatus int
		wantCode   string
	}{
		{"account ok", "GET", "account/query", q("accountNo", "880001"), key, 200, vccfake.CodeOK},
		{"no auth", "GET", "account/query", q("accountNo", "880001"), "", 401, vccfake.CodeUnauthorized},
		{"wrong auth", "GET", "account/query", q("accountNo", "880001"), "Bearer " + key, 401, vccfake.CodeUnauthorized},
		{"post refused", "POST", "account/query", q("accountNo", "880001"), key, 405, vccfake.CodeMethodNotAllowed},
		{"unknown resource", "GET", "account/delete", q("accountNo", "880001"), key, 404, vccfake.CodeUnknownResource},
		{"missing required", "GET", "account/query", q(), key, 400, vccfake.CodeMissingParam},
		{"empty required", "GET", "account/query", q("accountNo", ""), key, 400, vccfake.CodeMissingParam},
		{"missing timestamp", "GET", "account/query", "accountNo=880001", key, 400, vccfake.CodeMissingParam},
		{"bad timestamp", "GET", "account/query", "accountNo=880001&timestamp=2025-03-14", key, 400, vccfake.CodeInvalidParam},
		{"raw utf-8 not encoded", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o1", "amount", "1") + "&remark=提气", key, 400, vccfake.CodeBadEncoding},
		{"gbk bytes", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o1", "amount", "1") + "&remark=%CC%E1%C6%F8", key, 400, vccfake.CodeBadEncoding},
		{"raw reserved char", "GET", "account/query", q("accountNo", "880001") + "&x=a/b", key, 400, vccfake.CodeBadEncoding},
		{"duplicate key", "GET", "account/query", q("accountNo", "880001") + "&accountNo=880002", key, 400, vccfake.CodeBadEncoding},
		{"unknown account", "GET", "account/query", q("accountNo", "999"), key, 200, vccfake.CodeAccountNotFound},
		{"amount with 3 decimals", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o1", "amount", "1.005"), key, 400, vccfake.CodeInvalidParam},
		{"amount with comma", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o1", "amount", "1,5"), key, 400, vccfake.CodeInvalidParam},
		{"zero amount", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o1", "amount", "0"), key, 400, vccfake.CodeInvalidParam},
		{"insufficient", "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o2", "amount", "500.01"), key, 200, vccfake.CodeInsufficientBalance},
		{"frozen", "GET", "gas/withdraw", q("accountNo", "880002", "orderNo", "o3", "amount", "1"), key, 200, vccfake.CodeAccountFrozen},
		{"report unknown order", "GET", "gas/withdraw/report", q("orderNo", "nope", "result", "SUCCESS"), key, 200, vccfake.CodeWithdrawalNotFound},
		{"report bad result", "GET", "gas/withdraw/report", q("orderNo", "nope", "result", "OK"), key, 400, vccfake.CodeInvalidParam},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			a := get(t, s, tc.method, tc.resource, tc.query, tc.auth)
			if a.Status != tc.wantStatus || a.Code != tc.wantCode {
				t.Fatalf("got %d %s (%s), want %d %s", a.Status, a.Code, a.Message, tc.wantStatus, tc.wantCode)
			}
			if n := s.CallCount(""); n != 1 {
				t.Fatalf("recorded %d calls, want 1", n)
			}
			if b, _ := s.Balance("880001"); b != 50000 {
				t.Fatalf("balance changed to %d", b)
			}
		})
	}
}

func TestChineseRoundTrip(t *testing.T) {
	s := newFake(t)
	a := get(t, s, "GET", "account/query", q("accountNo", "880001", "requestId", "请求-1"), key)
	if a.Code != vccfake.CodeOK || a.Data["customerName"] != "陈大文" || a.Data["address"] != "香港九龙旺角弥敦道 88 号 12 楼 B 室" || a.RequestID != "请求-1" {
		t.Fatalf("answer %+v", a)
	}
	if a.Data["balance"] != "500.00" {
		t.Fatalf("balance %v", a.Data["balance"])
	}
	remark := "圈存机提气 a+b=c&d/é"
	w := get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "o-1", "amount", "12.5", "remark", remark), key)
	if w.Code != vccfake.CodeOK || w.Data["remark"] != remark {
		t.Fatalf("withdraw %+v", w)
	}
	if got := s.Calls()[1].Params["remark"]; got != remark {
		t.Fatalf("recorded remark %q", got)
	}
}

func TestWithdrawIdempotent(t *testing.T) {
	s := newFake(t)
	first := get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "ord-7", "amount", "100"), key)
	if first.Code != vccfake.CodeOK || first.Data["balance"] != "400.00" || first.Data["status"] != vccfake.StatusWithdrawn {
		t.Fatalf("first %+v", first)
	}
	// Another withdrawal moves the balance; the repeat still answers as the first did.
	get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "ord-8", "amount", "50"), key)
	again := get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "ord-7", "amount", "100.00"), key)
	if again.Code != vccfake.CodeOK || again.Data["withdrawNo"] != first.Data["withdrawNo"] || again.Data["balance"] != "400.00" {
		t.Fatalf("repeat %+v, first %+v", again, first)
	}
	if b, _ := s.Balance("880001"); b != 35000 {
		t.Fatalf("balance %d, want 35000", b)
	}
	conflict := get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "ord-7", "amount", "99"), key)
	if conflict.Code != vccfake.CodeOrderConflict {
		t.Fatalf("conflict %+v", conflict)
	}
	if n := s.OrderCalls("gas/withdraw", "ord-7"); n != 3 {
		t.Fatalf("order calls %d", n)
	}
	if n := len(s.Withdrawals()); n != 2 {
		t.Fatalf("withdrawals %d", n)
	}
}

func TestReport(t *testing.T) {
	tests := []struct {
		name        string
		results     []string
		wantCodes   []string
		wantBalance int64
		wantStatus  string
	}{
		{"success", []string{"SUCCESS"}, []string{vccfake.CodeOK}, 40000, vccfake.StatusSuccess},
		{"failed refunds", []string{"FAILED"}, []string{vccfake.CodeOK}, 50000, vccfake.StatusFailed},
		{"repeat is idempotent", []string{"FAILED", "FAILED"}, []string{vccfake.CodeOK, vccfake.CodeOK}, 50000, vccfake.StatusFailed},
		{"conflicting result", []string{"SUCCESS", "FAILED"}, []string{vccfake.CodeOK, vccfake.CodeReportConflict}, 40000, vccfake.StatusSuccess},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			w := get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "r1", "amount", "100"), key)
			for i, res := range tc.results {
				a := get(t, s, "GET", "gas/withdraw/report", q("orderNo", "r1", "result", res, "withdrawNo", w.Data["withdrawNo"].(string), "reason", "读卡失败"), key)
				if a.Code != tc.wantCodes[i] {
					t.Fatalf("report %d: %+v", i, a)
				}
			}
			if b, _ := s.Balance("880001"); b != tc.wantBalance {
				t.Fatalf("balance %d", b)
			}
			if wd, _ := s.Withdrawal("r1"); wd.Status != tc.wantStatus {
				t.Fatalf("status %s", wd.Status)
			}
		})
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t)
	s.Faults.FailNext(2, 503)
	for range 2 {
		if a := get(t, s, "GET", "account/query", q("accountNo", "880001"), key); a.Status != 503 || a.Code != vccfake.CodeSystemError {
			t.Fatalf("forced failure: %+v", a)
		}
	}
	if a := get(t, s, "GET", "account/query", q("accountNo", "880001"), key); a.Code != vccfake.CodeOK {
		t.Fatalf("after failures: %+v", a)
	}
	s.Faults.RejectAuthNext(1)
	if a := get(t, s, "GET", "account/query", q("accountNo", "880001"), key); a.Code != vccfake.CodeUnauthorized {
		t.Fatalf("forced auth failure: %+v", a)
	}
	// A delay longer than the client's patience: the client gives up.
	s.Faults.SetDelay(time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.BaseURL()+"account/query?"+q("accountNo", "880001"), nil)
	req.Header.Set("Authorization", key)
	_, err := s.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed call: %v", err)
	}
	s.Faults.SetDelay(0)
}

func TestCACertPEM(t *testing.T) {
	s := newFake(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("CA PEM not parsable")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", s.BaseURL()+"account/query?"+q("accountNo", "880001"), nil)
	req.Header.Set("Authorization", key)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestReconciliationFile(t *testing.T) {
	s := newFake(t)
	get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "a1", "amount", "10.5"), key)
	get(t, s, "GET", "gas/withdraw", q("accountNo", "880001", "orderNo", "a2", "amount", "3"), key)
	get(t, s, "GET", "gas/withdraw/report", q("orderNo", "a1", "result", "SUCCESS"), key)
	got := string(s.ReconciliationFile(fixed))
	want := vccfake.ReconciliationHeader + "\n" +
		"a1,W20250314000001,880001,10.50,20250314093000,SUCCESS\n" +
		"a2,W20250314000002,880001,3.00,20250314093000,PENDING\n"
	if got != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
	if p := vccfake.ReconciliationPath(fixed); p != "/reconcile/20250314.csv" {
		t.Fatalf("path %s", p)
	}
	if rows := s.ReconciliationRows(fixed.AddDate(0, 0, 1)); len(rows) != 0 {
		t.Fatalf("next day rows %v", rows)
	}
}

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 100, true}, {"1.5", 150, true}, {"1.05", 105, true},
		{"1.", 0, false}, {".5", 0, false}, {"1,5", 0, false}, {"-1", 0, false}, {"1.234", 0, false},
	}
	for _, tc := range tests {
		got, err := vccfake.ParseAmount(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v", tc.in, got, err)
		}
	}
}
