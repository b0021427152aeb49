package main

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmarket/vmarket/market/reconcile"
)

// reconcileTimeout is the default --timeout of the reconcile commands:
// more than the server's script deadline (reconcile.DefaultTimeout).
const reconcileTimeout = time.Minute

func newReconcileCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Reconcile vmarket's orders with a partner's records",
		Long: `Reconcile vmarket's orders with a partner's own records of them. "vmarket
reconcile vcc" compares the VCC gas top-ups vmarket filed on a day with
VCC's daily reconciliation file, fetched over SFTP on the server.`,
	}
	cmd.AddCommand(newReconcileVCCCmd())
	return cmd
}

func newReconcileVCCCmd() *cobra.Command {
	var f adminFlags
	var day, provider string
	cmd := &cobra.Command{
		Use:   "vcc",
		Short: "Reconcile a day's VCC gas top-ups with VCC's reconciliation file",
		Long: `Run a reconciliation on the server: it collects the provider's gas top-ups
whose withdrawal was made on the day (China time, UTC+8), fetches VCC's
reconciliation file of that day over SFTP (the provider's vcc.sftp.*
settings) and lists the mismatches: missing_in_vcc, missing_in_vmarket,
amount_mismatch, failed_in_vcc, status_mismatch, duplicate_in_vcc.

The report is kept on the server, replacing the day's previous one: list
them with "vmarket reconcile vcc reports", show one with "vmarket
reconcile vcc show DAY". Running needs an admin token, reading a support
token.`,
		Example: `  vmarket reconcile vcc                     # yesterday, provider towngas-vcc
  vmarket reconcile vcc --day 20250314 --provider towngas-vcc
  vmarket reconcile vcc reports --from 20250301
  vmarket reconcile vcc show 20250314`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rep reconcile.Report
			body := map[string]string{"day": day, "provider": provider}
			if printed, err := f.call(cmd, "POST", "/reconcile/vcc", nil, body, &rep); err != nil || printed {
				return err
			}
			return printReport(cmd, &rep)
		},
	}
	addAdminFlags(cmd, &f)
	// A run fetches VCC's file on the server: give it more than the
	// admin commands' usual 30 s.
	if fl := cmd.PersistentFlags().Lookup("timeout"); fl != nil {
		_ = fl.Value.Set(reconcileTimeout.String())
		fl.DefValue = reconcileTimeout.String()
	}
	cmd.Flags().StringVar(&day, "day", "", "day to reconcile, yyyyMMdd in China time (default yesterday)")
	cmd.PersistentFlags().StringVar(&provider, "provider", "", "provider (default "+reconcile.DefaultProvider+")")

	var from, to string
	var failed bool
	var page, pageSize int
	reports := &cobra.Command{
		Use:   "reports",
		Short: "List the kept reports, newest day first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{"current": {strconv.Itoa(page)}, "pageSize": {strconv.Itoa(pageSize)}}
			for k, v := range map[string]string{"provider": provider, "from": from, "to": to} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if failed {
				q.Set("ok", "false")
			}
			var ans reconcile.ReportPage
			if printed, err := f.call(cmd, "GET", "/reconcile/vcc", q, nil, &ans); err != nil || printed {
				return err
			}
			var rows [][]string
			for _, r := range ans.List {
				result := "ok"
				if !r.OK {
					result = countsText(r.Counts, r.SkippedOrders)
				}
				if !r.FileFound {
					result += " (no file)"
				}
				rows = append(rows, []string{r.Day, r.Provider, strconv.Itoa(r.Rows), strconv.Itoa(r.Orders),
					strconv.Itoa(r.Matched), r.TotalVCC, r.TotalVmarket, r.RanAt.UTC().Format("2006-01-02 15:04:05"), r.RanBy, result})
			}
			if err := table(cmd.OutOrStdout(), "DAY\tPROVIDER\tVCC ROWS\tORDERS\tMATCHED\tVCC TOTAL\tVMARKET TOTAL\tRAN (UTC)\tBY\tRESULT", rows); err != nil {
				return err
			}
			p := ans.Pagination
			fmt.Fprintf(cmd.ErrOrStderr(), "page %d of %d reports (%d per page)\n", p.Current, p.Total, p.PageSize)
			return nil
		},
	}
	rf := reports.Flags()
	rf.StringVar(&from, "from", "", "first day, yyyyMMdd")
	rf.StringVar(&to, "to", "", "last day, yyyyMMdd")
	rf.BoolVar(&failed, "failed", false, "only reports with mismatches")
	rf.IntVar(&page, "page", 1, "page number")
	rf.IntVar(&pageSize, "page-size", 20, "reports per page (at most 100)")
	show := &cobra.Command{
		Use:   "show DAY",
		Short: "Show the kept report of a day",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var q url.Values
			if provider != "" {
				q = url.Values{"provider": {provider}}
			}
			var rep reconcile.Report
			if printed, err := f.call(cmd, "GET", "/reconcile/vcc/"+url.PathEscape(args[0]), q, nil, &rep); err != nil || printed {
				return err
			}
			return printReport(cmd, &rep)
		},
	}
	cmd.AddCommand(reports, show)
	return cmd
}

// countsText is "2 missing_in_vcc, 1 amount_mismatch".
func countsText(counts map[string]int, skipped int) string {
	kinds := make([]string, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	if skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", skipped))
	}
	return strings.Join(parts, ", ")
}

// printReport writes a report: a summary, then one line per mismatch and
// per skipped order.
func printReport(cmd *cobra.Command, r *reconcile.Report) error {
	w := cmd.OutOrStdout()
	result := "OK"
	if !r.OK {
		result = "MISMATCHES: " + countsText(r.Counts, r.SkippedOrders)
	}
	fmt.Fprintf(w, "VCC reconciliation of %s, provider %s: %s\n", r.Day, r.Provider, result)
	if r.FileFound {
		fmt.Fprintf(w, "VCC file %s: %d rows; vmarket: %d orders, %d matched\n", r.File, r.Rows, r.Orders, r.Matched)
	} else {
		fmt.Fprintf(w, "VCC has no file %s and vmarket no order for the day\n", r.File)
	}
	fmt.Fprintf(w, "totals (yuan): VCC %s, vmarket %s\n", r.TotalVCC, r.TotalVmarket)
	if len(r.Mismatches) > 0 {
		var rows [][]string
		for _, m := range r.Mismatches {
			var detail []string
			if m.Difference != "" {
				detail = append(detail, "difference "+m.Difference)
			}
			if m.VmarketStatus != "" {
				detail = append(detail, "vmarket "+m.VmarketStatus)
			}
			if m.VCCStatus != "" {
				detail = append(detail, "VCC "+m.VCCStatus)
			}
			if m.Line > 0 {
				detail = append(detail, "line "+strconv.Itoa(m.Line))
			}
			rows = append(rows, []string{m.Kind, m.OrderNo, dash(m.VmarketAmount), dash(m.VCCAmount), strings.Join(detail, ", ")})
		}
		if err := table(w, "KIND\tORDER\tVMARKET\tVCC\tDETAIL", rows); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped order %s: %s\n", s.OrderID, s.Reason)
	}
	return nil
}

// dash is s, or "-" when empty.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
