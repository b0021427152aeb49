package vccfake

import (
	"bytes"
	"encoding/csv"
	"time"
)

// ReconciliationHeader is the first line of a daily reconciliation file.
const ReconciliationHeader = "orderNo,withdrawNo,accountNo,amount,withdrawTime,status"

// ReconciliationDir is the folder daily reconciliation files are kept in.
const ReconciliationDir = "/reconcile"

// ReconciliationRow is one line of a daily reconciliation file.
type ReconciliationRow struct {
	OrderNo      string
	WithdrawNo   string
	AccountNo    string
	Amount       int64 // fen, written as yuan with two decimals
	WithdrawTime time.Time
	// Status is SUCCESS, FAILED or PENDING (withdrawn, no result reported).
	Status string
}

// ReconciliationPath is the file path of the given day's reconciliation
// file: /reconcile/YYYYMMDD.csv, the day taken in China time (UTC+8).
func ReconciliationPath(day time.Time) string {
	return ReconciliationDir + "/" + day.In(chinaTime).Format("20060102") + ".csv"
}

// FormatReconciliation writes rows in the reconciliation file format:
// UTF-8 without BOM, comma-separated with RFC 4180 quoting, the header
// line first, "\n" line ends, amounts as yuan with two decimals, times as
// yyyyMMddHHmmss in China time.
func FormatReconciliation(rows []ReconciliationRow) []byte {
	var buf bytes.Buffer
	buf.WriteString(ReconciliationHeader + "\n")
	w := csv.NewWriter(&buf)
	for _, r := range rows {
		_ = w.Write([]string{r.OrderNo, r.WithdrawNo, r.AccountNo, FormatAmount(r.Amount),
			r.WithdrawTime.In(chinaTime).Format(TimeLayout), r.Status})
	}
	w.Flush()
	return buf.Bytes()
}

// ReconciliationRows returns the rows VCC would put in the given day's
// reconciliation file: every withdrawal made that day (China time), in
// the order they were made.
func (s *Server) ReconciliationRows(day time.Time) []ReconciliationRow {
	d := day.In(chinaTime).Format("20060102")
	var rows []ReconciliationRow
	for _, w := range s.Withdrawals() {
		if w.Time.In(chinaTime).Format("20060102") != d {
			continue
		}
		st := w.Status
		if st == StatusWithdrawn {
			st = "PENDING"
		}
		rows = append(rows, ReconciliationRow{
			OrderNo: w.OrderNo, WithdrawNo: w.WithdrawNo, AccountNo: w.AccountNo,
			Amount: w.Amount, WithdrawTime: w.Time, Status: st,
		})
	}
	return rows
}

// ReconciliationFile renders the given day's reconciliation file from the
// fake's withdrawals; put it on an sftpfake server at ReconciliationPath.
func (s *Server) ReconciliationFile(day time.Time) []byte {
	return FormatReconciliation(s.ReconciliationRows(day))
}
