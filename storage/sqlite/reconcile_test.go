package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/reconcile"
)

func TestReconcileReports(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "r.db"))
	defer db.Close()
	st := db.Reconcile()
	report := func(provider, day string, mismatches ...reconcile.Mismatch) *reconcile.Report {
		r := &reconcile.Report{Summary: reconcile.Summary{Source: reconcile.SourceVCC, Provider: provider, Day: day,
			OK: len(mismatches) == 0, Mismatched: len(mismatches), RanAt: time.UnixMilli(1_700_000_000_123).UTC()},
			Mismatches: mismatches, Skipped: []reconcile.Skipped{}}
		return r
	}
	miss := reconcile.Mismatch{Kind: reconcile.MissingInVCC, OrderNo: "o1", VmarketAmount: "100.00"}
	for _, r := range []*reconcile.Report{
		report("towngas-vcc", "20250313"),
		report("towngas-vcc", "20250314", miss),
		report("other", "20250314"),
		// The same day again replaces the first report.
		report("towngas-vcc", "20250313", miss, miss),
	} {
		if err := st.PutReport(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.Report(ctx, reconcile.SourceVCC, "towngas-vcc", "20250313")
	if err != nil {
		t.Fatal(err)
	}
	if got.Mismatched != 2 || len(got.Mismatches) != 2 || got.Mismatches[0] != miss || !got.RanAt.Equal(time.UnixMilli(1_700_000_000_123)) {
		t.Fatalf("report %+v", got)
	}
	if _, err := st.Report(ctx, reconcile.SourceVCC, "towngas-vcc", "20250101"); market.KindOf(err) != market.KindNotFound {
		t.Fatalf("absent report: %v", err)
	}
	no := false
	tests := []struct {
		name  string
		f     reconcile.Filter
		total int
		days  []string
	}{
		{"all, newest first", reconcile.Filter{}, 3, []string{"20250314/other", "20250314/towngas-vcc", "20250313/towngas-vcc"}},
		{"provider", reconcile.Filter{Provider: "towngas-vcc"}, 2, []string{"20250314/towngas-vcc", "20250313/towngas-vcc"}},
		{"days", reconcile.Filter{From: "20250314", To: "20250314"}, 2, []string{"20250314/other", "20250314/towngas-vcc"}},
		{"not ok", reconcile.Filter{OK: &no}, 2, []string{"20250314/towngas-vcc", "20250313/towngas-vcc"}},
		{"page 2", reconcile.Filter{Page: market.Page{Current: 2, PageSize: 2}}, 3, []string{"20250313/towngas-vcc"}},
		{"other source", reconcile.Filter{Source: "kassa24"}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.f.Page.PageSize == 0 {
				tc.f.Page = market.Page{Current: 1, PageSize: 10}
			}
			list, total, err := st.Reports(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var days []string
			for _, s := range list {
				days = append(days, s.Day+"/"+s.Provider)
			}
			if total != tc.total || len(days) != len(tc.days) {
				t.Fatalf("total %d, days %v; want %d, %v", total, days, tc.total, tc.days)
			}
			for i := range days {
				if days[i] != tc.days[i] {
					t.Fatalf("days %v, want %v", days, tc.days)
				}
			}
		})
	}
}
