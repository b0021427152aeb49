package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmarket/vmarket/market"
)

const orderCols = `id, created_at, updated_at, duration, service_expired_date, amount, amount_paid, amount_refunded,
	service_id, service, service_category_id, provider, address, recipient, service_options, status,
	last_payment_ts, paid_ts, filed_ts, complete_ts, refund_ts, public_key, service_activated, service_activate_ts,
	end_at, service_status, service_running_ts, service_abort_ts, service_done_ts, magic, user_service,
	start_hash, stop_hash, refund_hash, last_error`

// orderArgs lists o's columns in orderCols order.
func orderArgs(o *market.Order) []any {
	us := "{}"
	if len(o.UserService) > 0 {
		us = mustJSON(o.UserService)
	}
	opts := o.ServiceOptions
	if opts == nil {
		opts = map[string]string{}
	}
	return []any{o.ID, o.CreatedAt, o.UpdatedAt, o.Duration, o.ServiceExpiredDate, int64(o.Amount), int64(o.AmountPaid), int64(o.AmountRefunded),
		o.ServiceID, o.Service, o.ServiceCategoryID, o.Provider, o.Address, o.Recipient, mustJSON(opts), string(o.Status),
		o.LastPaymentTS, o.PaidTS, o.FiledTS, o.CompleteTS, o.RefundTS, o.PublicKey, o.ServiceActivated, o.ServiceActivateTS,
		o.EndAt, string(o.ServiceStatus), o.ServiceRunningTS, o.ServiceAbortTS, o.ServiceDoneTS, o.Magic, us,
		o.StartHash, o.StopHash, o.RefundHash, o.LastError}
}

func scanOrder(s interface{ Scan(...any) error }) (market.Order, error) {
	var o market.Order
	var amount, paid, refunded int64
	var opts, us, status, sstatus string
	err := s.Scan(&o.ID, &o.CreatedAt, &o.UpdatedAt, &o.Duration, &o.ServiceExpiredDate, &amount, &paid, &refunded,
		&o.ServiceID, &o.Service, &o.ServiceCategoryID, &o.Provider, &o.Address, &o.Recipient, &opts, &status,
		&o.LastPaymentTS, &o.PaidTS, &o.FiledTS, &o.CompleteTS, &o.RefundTS, &o.PublicKey, &o.ServiceActivated, &o.ServiceActivateTS,
		&o.EndAt, &sstatus, &o.ServiceRunningTS, &o.ServiceAbortTS, &o.ServiceDoneTS, &o.Magic, &us,
		&o.StartHash, &o.StopHash, &o.RefundHash, &o.LastError)
	if err != nil {
		return o, err
	}
	o.Amount, o.AmountPaid, o.AmountRefunded = market.Decimal(amount), market.Decimal(paid), market.Decimal(refunded)
	o.Status, o.ServiceStatus = market.OrderStatus(status), market.ServiceStatus(sstatus)
	if err := json.Unmarshal([]byte(opts), &o.ServiceOptions); err != nil {
		return o, fmt.Errorf("order %s options: %w", o.ID, err)
	}
	if us != "{}" {
		if err := json.Unmarshal([]byte(us), &o.UserService); err != nil {
			return o, fmt.Errorf("order %s user service: %w", o.ID, err)
		}
	}
	return o, nil
}

// Order implements market.OrderReader.
func (q queries) Order(ctx context.Context, id string) (*market.Order, error) {
	o, err := scanOrder(q.q.QueryRowContext(ctx, "SELECT "+orderCols+" FROM orders WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("order", id)
	}
	if err != nil {
		return nil, storageErr(err, "read order")
	}
	return &o, nil
}

// orderWhere turns an order filter into conditions.
func orderWhere(f market.OrderFilter) *where {
	var w where
	if f.Party != "" {
		// Two indexed lookups joined, rather than an OR the planner may scan.
		w.add("seq IN (SELECT seq FROM orders WHERE address = ? UNION SELECT seq FROM orders WHERE recipient = ?)", f.Party, f.Party)
	}
	w.in("id", f.IDs)
	for _, c := range []struct{ col, v string }{
		{"service_id", f.ServiceID}, {"service", f.Service}, {"address", f.Address}, {"recipient", f.Recipient},
	} {
		if c.v != "" {
			w.add(c.col+" = ?", c.v)
		}
	}
	if len(f.Statuses) > 0 {
		s := make([]string, len(f.Statuses))
		for i, v := range f.Statuses {
			s[i] = string(v)
		}
		w.in("status", s)
	}
	if len(f.ServiceStatuses) > 0 {
		s := make([]string, len(f.ServiceStatuses))
		for i, v := range f.ServiceStatuses {
			s[i] = string(v)
		}
		w.in("service_status", s)
	}
	if f.ServiceActivated != nil {
		w.add("service_activated = ?", *f.ServiceActivated)
	}
	for _, c := range []struct {
		cond string
		v    int64
	}{
		{"created_at >= ?", f.CreatedFrom}, {"created_at <= ?", f.CreatedTo},
		{"service_activate_ts >= ?", f.ServiceFrom}, {"end_at <= ?", f.ServiceTo},
	} {
		if c.v != 0 {
			w.add(c.cond, c.v)
		}
	}
	return &w
}

// Orders implements market.OrderReader: newest first.
func (q queries) Orders(ctx context.Context, f market.OrderFilter) ([]market.Order, int, error) {
	w := orderWhere(f)
	total, err := q.count(ctx, "orders", w)
	if err != nil {
		return nil, 0, err
	}
	rows, err := q.q.QueryContext(ctx, "SELECT "+orderCols+" FROM orders"+w.sql()+" ORDER BY seq DESC LIMIT ? OFFSET ?", pageArgs(w, f.Page)...)
	if err != nil {
		return nil, 0, storageErr(err, "list orders")
	}
	defer rows.Close()
	list := []market.Order{}
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, 0, storageErr(err, "list orders")
		}
		list = append(list, o)
	}
	return list, total, storageErr(rows.Err(), "list orders")
}

// distinctColumns maps API field names to columns.
func distinctColumn(field string) (string, bool) {
	switch field {
	case "serviceID":
		return "service_id", true
	case "service":
		return "service", true
	case "provider":
		return "provider", true
	case "recipient":
		return "recipient", true
	case "address":
		return "address", true
	case "serviceCategoryID":
		return "service_category_id", true
	case "status":
		return "status", true
	case "serviceStatus":
		return "service_status", true
	}
	return "", false
}

// DistinctOrderValues implements market.OrderReader.
func (q queries) DistinctOrderValues(ctx context.Context, field string, f market.OrderFilter) ([]string, error) {
	col, ok := distinctColumn(field)
	if !ok {
		return nil, market.Invalid("distinctField", "%q is not a field that can be listed", field)
	}
	w := orderWhere(f)
	rows, err := q.q.QueryContext(ctx, "SELECT DISTINCT "+col+" FROM orders"+w.sql()+" ORDER BY 1 LIMIT 10000", w.args...)
	if err != nil {
		return nil, storageErr(err, "distinct order values")
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, storageErr(err, "distinct order values")
		}
		out = append(out, v)
	}
	return out, storageErr(rows.Err(), "distinct order values")
}

const paymentCols = "id, order_id, kind, amount, source, reference, created_at"

func scanPayment(s interface{ Scan(...any) error }) (market.Payment, error) {
	var p market.Payment
	var kind string
	var amount int64
	err := s.Scan(&p.ID, &p.OrderID, &kind, &amount, &p.Source, &p.Reference, &p.CreatedAt)
	p.Kind, p.Amount = market.PaymentKind(kind), market.Decimal(amount)
	return p, err
}

// Payments implements market.OrderReader.
func (q queries) Payments(ctx context.Context, orderID string) ([]market.Payment, error) {
	rows, err := q.q.QueryContext(ctx, "SELECT "+paymentCols+" FROM payments WHERE order_id = ? ORDER BY id", orderID)
	if err != nil {
		return nil, storageErr(err, "read payments")
	}
	defer rows.Close()
	out := []market.Payment{}
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, storageErr(err, "read payments")
		}
		out = append(out, p)
	}
	return out, storageErr(rows.Err(), "read payments")
}

// CreateOrder implements market.OrderWriter.
func (t *tx) CreateOrder(ctx context.Context, o *market.Order) error {
	_, err := t.q.ExecContext(ctx, "INSERT INTO orders ("+orderCols+") VALUES ("+placeholders(35)+")", orderArgs(o)...)
	return storageErr(err, "create order")
}

// UpdateOrder implements market.OrderWriter.
func (t *tx) UpdateOrder(ctx context.Context, o *market.Order) error {
	args := orderArgs(o)
	return t.exec1(ctx, "order", o.ID, `UPDATE orders SET updated_at = ?, duration = ?, service_expired_date = ?, amount = ?,
		amount_paid = ?, amount_refunded = ?, service_options = ?, status = ?, last_payment_ts = ?, paid_ts = ?, filed_ts = ?,
		complete_ts = ?, refund_ts = ?, public_key = ?, service_activated = ?, service_activate_ts = ?, end_at = ?,
		service_status = ?, service_running_ts = ?, service_abort_ts = ?, service_done_ts = ?, magic = ?, user_service = ?,
		last_error = ? WHERE id = ?`,
		args[2], args[3], args[4], args[5], args[6], args[7], args[14], args[15], args[16], args[17], args[18],
		args[19], args[20], args[21], args[22], args[23], args[24], args[25], args[26], args[27], args[28], args[29], args[30],
		args[34], o.ID)
}

// AddPayment implements market.OrderWriter.
func (t *tx) AddPayment(ctx context.Context, p *market.Payment) (bool, error) {
	res, err := t.q.ExecContext(ctx, `INSERT INTO payments (order_id, kind, amount, source, reference, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, reference) DO NOTHING`,
		p.OrderID, string(p.Kind), int64(p.Amount), p.Source, p.Reference, p.CreatedAt)
	if err != nil {
		return false, storageErr(err, "record payment")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, storageErr(err, "record payment")
	}
	if n == 1 {
		p.ID, _ = res.LastInsertId()
	}
	return n == 1, nil
}

// PaymentByReference implements market.OrderWriter.
func (t *tx) PaymentByReference(ctx context.Context, source, reference string) (*market.Payment, error) {
	p, err := scanPayment(t.q.QueryRowContext(ctx, "SELECT "+paymentCols+" FROM payments WHERE source = ? AND reference = ?", source, reference))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("payment", source+"/"+reference)
	}
	if err != nil {
		return nil, storageErr(err, "read payment")
	}
	return &p, nil
}
