package kassa24fake_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/vmarket/vmarket/scripts/kassa24/kassa24fake"
)

const token = "tok-123"

func day(d, h, m, s int) time.Time {
	return time.Date(2025, 1, d, h, m, s, 0, kassa24fake.Zone())
}

func newFake(t *testing.T) *kassa24fake.Server {
	t.Helper()
	s := kassa24fake.New(kassa24fake.Config{Token: token})
	t.Cleanup(s.Close)
	// 25 payments on Jan 2, one a minute from 10:00, two terminals.
	for i := range 25 {
		s.AddPayment(kassa24fake.Payment{
			TransactionID: fmt.Sprintf("T%03d", i),
			TerminalID:    int64(100 + i%2),
			Amount:        int64(1000*(i+1) + 50),
			Date:          day(2, 10, i, 0),
			Account:       fmt.Sprintf("order-%d", i),
		})
	}
	s.AddPayment(kassa24fake.Payment{TransactionID: "E1", TerminalID: 100, Amount: 1, Date: day(1, 23, 59, 59), Account: "edge-before"})
	s.AddPayment(kassa24fake.Payment{TransactionID: "E2", TerminalID: 100, Amount: 1, Date: day(3, 0, 0, 0), Account: "edge-after"})
	s.AddPayment(kassa24fake.Payment{TransactionID: "E3", TerminalID: 100, Amount: 1, Date: day(2, 23, 59, 59), Account: "edge-end"})
	return s
}

type answer struct {
	status     int
	Code       int
	Message    string
	ResultData map[string]any
	QueryData  []struct{ Rows []map[string]any }
	Metadata   *struct{ PageCount, PageSize, PageIndex, RowCount int }
}

func post(t *testing.T, s *kassa24fake.Server, method, path, contentType, auth, body string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.URL()+path, bytes.NewBufferString(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	a.status = resp.StatusCode
	return a
}

func report(t *testing.T, s *kassa24fake.Server, body string) answer {
	t.Helper()
	return post(t, s, "POST", "report/payments", "application/json", "Bearer "+token, body)
}

func TestErrors(t *testing.T) {
	const okBody = `{"Body":{"Params":{"from":"20250102","to":"20250102"}}}`
	tests := []struct {
		name, method, path, ctype, auth, body string
		status, code                          int
	}{
		{"no token", "POST", "report/payments", "application/json", "", okBody, 401, kassa24fake.CodeUnauthorized},
		{"wrong token", "POST", "report/payments", "application/json", "Bearer nope", okBody, 401, kassa24fake.CodeUnauthorized},
		{"token without scheme", "POST", "report/payments", "application/json", token, okBody, 401, kassa24fake.CodeUnauthorized},
		{"get", "GET", "report/payments", "application/json", "Bearer " + token, okBody, 405, kassa24fake.CodeMethod},
		{"form body", "POST", "report/payments", "application/x-www-form-urlencoded", "Bearer " + token, okBody, 415, kassa24fake.CodeContentType},
		{"malformed json", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":`, 400, kassa24fake.CodeBadRequest},
		{"no Body", "POST", "report/payments", "application/json", "Bearer " + token, `{"Params":{}}`, 400, kassa24fake.CodeBadRequest},
		{"unknown action", "POST", "report/refunds", "application/json", "Bearer " + token, okBody, 404, kassa24fake.CodeNotFound},
		{"missing to", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"Params":{"from":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"iso date", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"Params":{"from":"2025-01-02","to":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"from after to", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"Params":{"from":"20250103","to":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"comma decimal", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"Params":{"from":"20250102","to":"20250102","minAmount":"10,5"}}}`, 400, kassa24fake.CodeBadRequest},
		{"zero page size", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"PageSize":0,"Params":{"from":"20250102","to":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"negative page", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"CurrentPage":-1,"Params":{"from":"20250102","to":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"bad sort field", "POST", "report/payments", "application/json", "Bearer " + token, `{"Body":{"Sort":"color asc","Params":{"from":"20250102","to":"20250102"}}}`, 400, kassa24fake.CodeBadRequest},
		{"info not found", "POST", "payment/info", "application/json", "Bearer " + token, `{"Body":{"Params":{"idTransaction":"nope"}}}`, 404, kassa24fake.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newFake(t)
			a := post(t, s, tc.method, tc.path, tc.ctype, tc.auth, tc.body)
			if a.status != tc.status || a.Code != tc.code || a.Message == "" {
				t.Fatalf("got %d %d %q", a.status, a.Code, a.Message)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	s := newFake(t)
	var ids []string
	for page := 0; page < 4; page++ {
		a := report(t, s, fmt.Sprintf(`{"Body":{"PageSize":10,"CurrentPage":%d,"Params":{"from":"20250102100000","to":"20250102110000"}}}`, page))
		want := []int{10, 10, 5, 0}[page]
		if a.Code != 0 || a.Metadata == nil || a.Metadata.PageCount != 3 || a.Metadata.RowCount != 25 || a.Metadata.PageIndex != page || a.Metadata.PageSize != want || len(a.QueryData) != 1 || len(a.QueryData[0].Rows) != want {
			t.Fatalf("page %d: %+v", page, a)
		}
		for _, r := range a.QueryData[0].Rows {
			ids = append(ids, r["idTransaction"].(string))
		}
	}
	if len(ids) != 25 || ids[0] != "T000" || ids[24] != "T024" {
		t.Fatalf("ids %v", ids)
	}
}

func TestDefaultsAndCase(t *testing.T) {
	s := newFake(t)
	a := report(t, s, `{"body":{"params":{"FROM":"20250102","To":"20250102"}}}`)
	if a.Code != 0 || a.Metadata.RowCount != 26 || a.Metadata.PageCount != 1 || a.Metadata.PageSize != 26 {
		t.Fatalf("%+v", a.Metadata)
	}
	c := s.Calls()[0]
	if c.PageSize != 1000 || c.CurrentPage != 0 || c.Params["from"] != "20250102" {
		t.Fatalf("call %+v", c)
	}
	a = report(t, s, `{"BODY":{"pagesize":"5","CURRENTPAGE":1,"SORT":"amount DESC","Params":{"from":"20250102","to":"20250102","IDTERMINAL":101}}}`)
	if a.Code != 0 || a.Metadata.RowCount != 12 || a.Metadata.PageCount != 3 || len(a.QueryData[0].Rows) != 5 {
		t.Fatalf("%+v", a)
	}
	first := a.QueryData[0].Rows[0]
	if first["idTerminal"] != float64(101) || first["idTransaction"] != "T013" || first["amount"] != 140.5 {
		t.Fatalf("first row %v", first)
	}
}

func TestPeriods(t *testing.T) {
	tests := []struct {
		from, to string
		want     int
	}{
		{"20250102", "20250102", 26},             // whole day, 23:59:59 included
		{"20250101", "20250102", 27},             // two whole days
		{"20250102", "20250103", 27},             // midnight of the 3rd included
		{"20250102000000", "20250102235959", 26}, // explicit
		{"20250102100000", "20250102100000", 1},  // one instant
		{"20250101235959", "20250101235959", 1},
	}
	for _, tc := range tests {
		s := newFake(t)
		a := report(t, s, fmt.Sprintf(`{"Body":{"Params":{"from":%q,"to":%q}}}`, tc.from, tc.to))
		if a.Code != 0 || a.Metadata.RowCount != tc.want {
			t.Errorf("%s..%s: %d rows (%s), want %d", tc.from, tc.to, a.Metadata.RowCount, a.Message, tc.want)
		}
	}
}

func TestInfo(t *testing.T) {
	s := newFake(t)
	a := post(t, s, "POST", "payment/info", "application/json", "Bearer "+token, `{"Body":{"Params":{"account":"order-3"}}}`)
	if a.Code != 0 || a.ResultData["idTransaction"] != "T003" || a.ResultData["amount"] != 40.5 || a.ResultData["date"] != "20250102100300" || a.QueryData != nil || a.Metadata != nil {
		t.Fatalf("%+v", a)
	}
}

func TestFaults(t *testing.T) {
	s := newFake(t)
	s.Faults.FailNext(1, 502)
	if a := report(t, s, `{"Body":{"Params":{"from":"20250102","to":"20250102"}}}`); a.status != 502 || a.Code != kassa24fake.CodeInternal {
		t.Fatalf("%+v", a)
	}
	s.Faults.RejectAuthNext(1)
	if a := report(t, s, `{"Body":{"Params":{"from":"20250102","to":"20250102"}}}`); a.Code != kassa24fake.CodeUnauthorized {
		t.Fatalf("%+v", a)
	}
	if a := report(t, s, `{"Body":{"Params":{"from":"20250102","to":"20250102"}}}`); a.Code != 0 {
		t.Fatalf("%+v", a)
	}
	if n := s.CallCount("report", "payments"); n != 3 {
		t.Fatalf("calls %d", n)
	}
}

func TestDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10", 1000, true}, {"10.5", 1050, true}, {"10.05", 1005, true}, {"-1.5", -150, true},
		{"10,5", 0, false}, {"10.", 0, false}, {"1e3", 0, false}, {"10.555", 0, false},
	}
	for _, tc := range tests {
		got, err := kassa24fake.ParseDecimal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDecimal(%q) = %d, %v", tc.in, got, err)
		}
	}
}
