package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/client"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/reconcile"
	"github.com/vmarket/vmarket/scripts/sftpfake"
	"github.com/vmarket/vmarket/scripts/vcc/vccfake"
)

// TestVCCReconciliationEndToEnd buys and pays gas top-ups of the bundled
// VCC template against vccfake (so VCC withdraws), puts the day's
// reconciliation file on sftpfake with one mismatch of each kind, and
// reconciles through the admin API and the CLI.
func TestVCCReconciliationEndToEnd(t *testing.T) {
	const (
		apiKey   = "vcc-recon-key"
		sftpUser = "vmarket"
		sftpPass = "sftp-recon-password"
	)
	// VCC's clock runs from noon of today (China time), so every
	// withdrawal of the test is on one day however close to midnight it
	// runs; vmarket files the orders on its own clock, within a day of it.
	cn := time.Now().In(reconcile.ChinaTime())
	noon := time.Date(cn.Year(), cn.Month(), cn.Day(), 12, 0, 0, 0, cn.Location())
	offset := time.Until(noon)
	vcc := vccfake.New(vccfake.Config{APIKey: apiKey, Now: func() time.Time { return time.Now().Add(offset) },
		Accounts: []vccfake.Account{{AccountNo: "880001", CustomerName: "陈大文", Balance: 1_000_000_00}}})
	defer vcc.Close()
	sftp, err := sftpfake.New(sftpfake.Config{Users: []sftpfake.User{{Name: sftpUser, Password: sftpPass}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sftp.Close()
	b, base, a := startVCCApp(t, vcc, apiKey, nil)
	const provider = "towngas-vcc"
	b.setting(provider, "vcc.sftp.host", sftp.Host(), false)
	b.setting(provider, "vcc.sftp.port", strconv.Itoa(sftp.Port()), false)
	b.setting(provider, "vcc.sftp.user", sftpUser, false)
	b.setting(provider, "vcc.sftp.password", sftpPass, true)
	b.setting(provider, "vcc.sftp.host_key", sftp.HostKeyLine(), false)

	// Tokens for the CLI: an admin's and a support user's.
	secret, err := operatorSecret("", a.dataDir, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := opauth.NewKeyring(secret)
	adminTok, _ := keys.Issue("recon-admin", market.RoleAdmin, time.Hour, time.Now())
	supportTok, _ := keys.Issue("recon-support", market.RoleSupport, time.Hour, time.Now())
	support, _ := client.New(base, client.Options{Token: supportTok})

	// Six filed top-ups (one refunded after its withdrawal: nothing paid
	// back, still a withdrawal) and one refunded before any withdrawal.
	typeID := b.typeOf(provider)
	buy := func(tier string, coins float64) market.OrderJSON {
		t.Helper()
		o := b.buy(typeID, map[string]string{"accountNo": "880001", "topUpCNY": tier}, 1, coins)
		b.mockPay(o, coins)
		return b.waitFor(o.ID, market.OrderFiled)
	}
	missing := buy("100", 10)
	amount := buy("50", 5)
	failed := buy("200", 20)
	pending := buy("500", 50)
	dup := buy("100", 10)
	refundedLate := buy("50", 5)
	call(t, b.user, "POST", "/api/v1/order/userRefund/"+refundedLate.ID, nil, map[string]any{}, nil)
	if o := b.waitFor(refundedLate.ID, market.OrderRefund); *o.AmountRefunded != 0 {
		t.Fatalf("refund after the withdrawal paid back %s", o.AmountRefunded)
	}
	early := b.buy(typeID, map[string]string{"accountNo": "880001", "topUpCNY": "100"}, 1, 10)
	b.mockPay(early, 5)
	call(t, b.user, "POST", "/api/v1/order/userRefund/"+early.ID, nil, map[string]any{}, nil)
	b.waitFor(early.ID, market.OrderRefund)

	day := noon.Format(reconcile.DayLayout)
	reconcileAPI := func(c *client.Client, body map[string]any) (*reconcile.Report, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var rep reconcile.Report
		b, _, err := c.Do(ctx, "POST", "/api/v1/admin/reconcile/vcc", nil, body)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		return &rep, nil
	}
	apiStatus := func(err error) int {
		var ae *client.APIError
		if errors.As(err, &ae) {
			return ae.Status
		}
		return 0
	}

	// No file yet while orders wait: an error, nothing kept.
	if _, err := reconcileAPI(b.admin, map[string]any{"day": day}); apiStatus(err) != http.StatusNotFound ||
		!strings.Contains(err.Error(), vccfake.ReconciliationPath(noon)) {
		t.Fatalf("reconcile without a file: %v", err)
	}

	// VCC's file: its withdrawals of the day, edited to hold each kind of
	// mismatch once.
	rows := vcc.ReconciliationRows(noon)
	if len(rows) != 6 {
		t.Fatalf("VCC made %d withdrawals, want 6: %+v", len(rows), rows)
	}
	var edited []vccfake.ReconciliationRow
	for _, r := range rows {
		switch r.OrderNo {
		case missing.ID:
			continue // missing_in_vcc
		case amount.ID:
			r.Amount -= 1 // 49.99: amount_mismatch
		case failed.ID:
			r.Status = vccfake.StatusFailed // failed_in_vcc
		case pending.ID:
			r.Status = "PENDING" // status_mismatch
		}
		edited = append(edited, r)
		if r.OrderNo == dup.ID {
			edited = append(edited, r) // duplicate_in_vcc
		}
	}
	edited = append(edited, vccfake.ReconciliationRow{OrderNo: "vm-not-an-order", WithdrawNo: "W999", AccountNo: "880001",
		Amount: 30_00, WithdrawTime: noon, Status: vccfake.StatusSuccess}) // missing_in_vmarket
	sftp.PutFile(vccfake.ReconciliationPath(noon), vccfake.FormatReconciliation(edited))

	want := []reconcile.Mismatch{
		{Kind: reconcile.DuplicateInVCC, OrderNo: dup.ID, Line: 6}, // the header is line 1
		{Kind: reconcile.MissingInVCC, OrderNo: missing.ID, VmarketAmount: "100.00"},
		{Kind: reconcile.AmountMismatch, OrderNo: amount.ID, VmarketAmount: "50.00", VCCAmount: "49.99", Difference: "-0.01"},
		{Kind: reconcile.FailedInVCC, OrderNo: failed.ID, VmarketAmount: "200.00", VCCAmount: "200.00"},
		{Kind: reconcile.StatusMismatch, OrderNo: pending.ID, VmarketStatus: "SUCCESS", VCCStatus: "PENDING"},
		{Kind: reconcile.MissingInVmarket, OrderNo: "vm-not-an-order", VCCAmount: "30.00", VCCStatus: "SUCCESS"},
	}
	check := func(rep *reconcile.Report) {
		t.Helper()
		if rep.OK || !rep.FileFound || rep.Day != day || rep.Provider != provider || rep.File != vccfake.ReconciliationPath(noon) ||
			rep.Rows != 7 || rep.Orders != 6 || rep.Matched != 2 || rep.Mismatched != 6 || len(rep.Skipped) != 0 ||
			rep.TotalVCC != "829.99" || rep.TotalVmarket != "1000.00" {
			t.Fatalf("report summary: %+v", rep.Summary)
		}
		got := slices.Clone(rep.Mismatches)
		sortMismatches(got)
		exp := slices.Clone(want)
		sortMismatches(exp)
		if !slices.Equal(got, exp) {
			t.Fatalf("mismatches:\n got %+v\nwant %+v", got, exp)
		}
		for _, k := range []string{reconcile.MissingInVCC, reconcile.MissingInVmarket, reconcile.AmountMismatch,
			reconcile.FailedInVCC, reconcile.StatusMismatch, reconcile.DuplicateInVCC} {
			if rep.Counts[k] != 1 {
				t.Fatalf("counts %v", rep.Counts)
			}
		}
	}

	// Through the admin API.
	rep, err := reconcileAPI(b.admin, map[string]any{"day": day, "provider": provider})
	if err != nil {
		t.Fatal(err)
	}
	check(rep)
	if rep.RanBy != "integrations" {
		t.Fatalf("ran by %q", rep.RanBy)
	}
	// A support token may read, not run.
	if _, err := reconcileAPI(support, map[string]any{"day": day}); apiStatus(err) != http.StatusForbidden {
		t.Fatalf("support ran a reconciliation: %v", err)
	}
	var kept reconcile.Report
	call(t, support, "GET", "/api/v1/admin/reconcile/vcc/"+day, nil, nil, &kept)
	check(&kept)

	// Through the CLI: the same report, replacing the kept one.
	out, err := runCLI(t, "", "reconcile", "vcc", "--day", day, "--provider", provider, "--server", base, "--token", adminTok)
	if err != nil {
		t.Fatalf("vmarket reconcile vcc: %v\n%s", err, out)
	}
	if !strings.Contains(out, "VCC reconciliation of "+day+", provider "+provider+": MISMATCHES") {
		t.Fatalf("CLI output:\n%s", out)
	}
	for _, m := range want {
		if !strings.Contains(out, m.Kind) || !strings.Contains(out, m.OrderNo) {
			t.Fatalf("CLI output lacks %s %s:\n%s", m.Kind, m.OrderNo, out)
		}
	}
	out, err = runCLI(t, "", "reconcile", "vcc", "--day", day, "--json", "--server", base, "--token", adminTok)
	if err != nil {
		t.Fatal(err)
	}
	var viaCLI reconcile.Report
	if err := json.Unmarshal([]byte(out), &viaCLI); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	check(&viaCLI)
	if viaCLI.RanBy != "recon-admin" {
		t.Fatalf("ran by %q", viaCLI.RanBy)
	}

	// A day with no order and no file: an empty, OK report.
	empty, err := reconcileAPI(b.admin, map[string]any{"day": "20200101"})
	if err != nil {
		t.Fatal(err)
	}
	if !empty.OK || empty.FileFound || empty.Orders != 0 || empty.Rows != 0 || len(empty.Mismatches) != 0 ||
		empty.File != "/reconcile/20200101.csv" || empty.TotalVCC != "0.00" {
		t.Fatalf("empty day: %+v", empty)
	}
	if _, err := reconcileAPI(b.admin, map[string]any{"day": "2020-01-01"}); apiStatus(err) != http.StatusBadRequest {
		t.Fatalf("bad day: %v", err)
	}

	// One report per day, however often it runs; newest day first.
	var page reconcile.ReportPage
	call(t, support, "GET", "/api/v1/admin/reconcile/vcc", url.Values{"provider": {provider}}, nil, &page)
	if page.Pagination.Total != 2 || len(page.List) != 2 || page.List[0].Day != day || page.List[1].Day != "20200101" ||
		page.List[0].RanBy != "recon-admin" || page.List[0].Mismatched != 6 {
		t.Fatalf("kept reports: %+v", page)
	}
	out, err = runCLI(t, "", "reconcile", "vcc", "reports", "--failed", "--server", base, "--token", supportTok)
	if err != nil || !strings.Contains(out, day) || strings.Contains(out, "20200101") {
		t.Fatalf("vmarket reconcile vcc reports --failed: %v\n%s", err, out)
	}
	out, err = runCLI(t, "", "reconcile", "vcc", "show", day, "--server", base, "--token", supportTok)
	if err != nil || !strings.Contains(out, reconcile.DuplicateInVCC) || !strings.Contains(out, "line 6") {
		t.Fatalf("vmarket reconcile vcc show: %v\n%s", err, out)
	}

	// Every run is a run record (the failed one too); no secret in them.
	var runs operator.RunPage
	call(t, b.admin, "GET", "/api/v1/admin/runs", url.Values{"kind": {reconcile.RunKind}, "pageSize": {"100"}}, nil, &runs)
	var ok, failedRuns int
	for _, r := range runs.List {
		if r.Provider != provider || r.Name != reconcile.SourceVCC {
			t.Fatalf("run record %+v", r)
		}
		if r.OK {
			ok++
		} else {
			failedRuns++
			if !strings.Contains(r.Result, `"day":"`+day+`"`) || !strings.Contains(r.Error, "no reconciliation file") {
				t.Fatalf("failed run record %+v", r)
			}
		}
		for _, s := range []string{sftpPass, apiKey} {
			if strings.Contains(r.Result+r.Error, s) {
				t.Fatalf("a secret is in run record %+v", r)
			}
		}
	}
	// OK: API, CLI twice, empty day. Failed: no file, bad day is refused
	// before running (not recorded). The support call never ran.
	if ok != 4 || failedRuns != 1 {
		t.Fatalf("%d ok and %d failed reconcile runs: %+v", ok, failedRuns, runs.List)
	}
	reads := 0
	for _, c := range sftp.Calls() {
		if c.Op == "get" && c.Err == "" {
			reads++
		}
	}
	if reads != 3 {
		t.Fatalf("the file was read %d times, want 3 (API, CLI, CLI --json)", reads)
	}
}

// sortMismatches orders mismatches by kind and order number.
func sortMismatches(ms []reconcile.Mismatch) {
	slices.SortFunc(ms, func(a, b reconcile.Mismatch) int {
		return strings.Compare(a.Kind+" "+a.OrderNo, b.Kind+" "+b.OrderNo)
	})
}

// TestVCCReconcileScheduleFlags checks serve's schedule flags: off by
// default, HH:MM from the flag or VMARKET_VCC_RECONCILE_AT, bad times
// refused before anything starts.
func TestVCCReconcileScheduleFlags(t *testing.T) {
	t.Setenv("VMARKET_VCC_RECONCILE_AT", "")
	t.Setenv("VMARKET_VCC_RECONCILE_PROVIDERS", "")
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want *reconcile.Schedule
		bad  string
	}{
		{name: "off by default"},
		{name: "flag", args: []string{"--vcc-reconcile-at", "02:30"},
			want: &reconcile.Schedule{At: reconcile.Clock{Hour: 2, Minute: 30}, Providers: []string{reconcile.DefaultProvider}}},
		{name: "environment", env: map[string]string{"VMARKET_VCC_RECONCILE_AT": "6:05", "VMARKET_VCC_RECONCILE_PROVIDERS": "a,b"},
			want: &reconcile.Schedule{At: reconcile.Clock{Hour: 6, Minute: 5}, Providers: []string{"a", "b"}}},
		{name: "bad time", args: []string{"--vcc-reconcile-at", "25:00"}, bad: "--vcc-reconcile-at"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var rc reconcileConfig
			cmd := &cobra.Command{Use: "serve"}
			addReconcileFlags(cmd, &rc)
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			got, err := rc.schedule()
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("want an error naming %s, got %v", tc.bad, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && (got.At != tc.want.At || !slices.Equal(got.Providers, tc.want.Providers))) {
				t.Fatalf("schedule %+v, want %+v", got, tc.want)
			}
		})
	}
}
