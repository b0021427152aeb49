package market

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Orders is the order service: buying, paying, refund requests and reads.
// The lifecycle worker carries out the jobs it queues.
type Orders struct {
	store Store
	now   func() time.Time
	// wake nudges the lifecycle worker after a job was queued (optional).
	wake func()
	// validKey checks a buyer public key (base58 Curve25519); nil accepts
	// any non-empty text.
	validKey func(string) error
	hooks    Hooks
}

// OrdersOption configures Orders.
type OrdersOption func(*Orders)

// WithOrdersClock sets the clock (tests).
func WithOrdersClock(now func() time.Time) OrdersOption { return func(o *Orders) { o.now = now } }

// WithWake sets the function called after a job is queued.
func WithWake(f func()) OrdersOption { return func(o *Orders) { o.wake = f } }

// WithPublicKeyValidator sets the buyer public key check.
func WithPublicKeyValidator(f func(string) error) OrdersOption {
	return func(o *Orders) { o.validKey = f }
}

// WithHooks sets the operator hooks told about order events.
func WithHooks(h Hooks) OrdersOption { return func(o *Orders) { o.hooks = h } }

// NewOrders returns the order service over store.
func NewOrders(store Store, opts ...OrdersOption) *Orders {
	o := &Orders{store: store, now: time.Now, wake: func() {}, hooks: NoHooks{}}
	for _, opt := range opts {
		opt(o)
	}
	return o
}

// OrderRequest is the body of POST /api/v1/order/add.
type OrderRequest struct {
	ServiceID      string            `json:"serviceID"`
	ServiceOptions map[string]string `json:"serviceOptions"`
	// Duration is in hours; required unless an expiry date is given.
	Duration *Decimal `json:"duration"`
	// ServiceExpiredDate is the wanted end in unix seconds (seed).
	ServiceExpiredDate int64 `json:"serviceExpiredDate"`
	// ExpiredDate is the wanted end as YYYY-MM-DD (V Cloud client).
	ExpiredDate string  `json:"expiredDate"`
	Amount      Decimal `json:"amount"`
	// Address, when given, must be the signer's.
	Address string `json:"address"`
}

// Create places an order for the signed caller. publicKey is the caller's
// verified public key: the service secret will be sealed to it.
func (s *Orders) Create(ctx context.Context, caller Caller, publicKey string, req OrderRequest) (*Order, error) {
	if caller.Address == "" {
		return nil, Errorf(KindUnauthorized, "creating an order needs a wallet-signed request")
	}
	if req.Address != "" && req.Address != caller.Address {
		return nil, Invalid("address", "must be the signing address %s", caller.Address)
	}
	if strings.TrimSpace(req.ServiceID) == "" {
		return nil, Invalid("serviceID", "is required")
	}
	now := s.now()
	hours, expired, err := orderHours(req, now)
	if err != nil {
		return nil, err
	}
	t, err := s.store.ServiceType(ctx, req.ServiceID)
	if err != nil {
		return nil, fieldNotFound("serviceID", err)
	}
	opts := req.ServiceOptions
	if opts == nil {
		opts = map[string]string{}
	}
	q, err := PriceFor(t, opts, hours)
	if err != nil {
		return nil, err
	}
	if !q.AcceptsAmount(req.Amount) {
		return nil, Invalid("amount", "is %s but the price of %d hours is %s", req.Amount, hours, q.Amount).
			WithDetail("expectedAmount", q.Amount)
	}
	p, err := s.store.Provider(ctx, t.Provider)
	if err != nil {
		return nil, err
	}
	if err := s.hooks.Before(ctx, BeforeOrderCreate, map[string]any{
		"address": caller.Address, "serviceID": t.ID, "service": t.Name, "provider": t.Provider,
		"serviceOptions": opts, "duration": hours, "amount": req.Amount.Float64(),
	}); err != nil {
		return nil, err
	}
	o := &Order{
		ID: uuid.NewString(), CreatedAt: now.Unix(), UpdatedAt: now.Unix(),
		Duration: hours, ServiceExpiredDate: expired, Amount: req.Amount,
		ServiceID: t.ID, Service: t.Name, ServiceCategoryID: t.CategoryID, Provider: t.Provider,
		Address: caller.Address, Recipient: p.WalletAddress, ServiceOptions: opts,
		Status: OrderPending, ServiceStatus: ServicePending, PublicKey: publicKey,
		StartHash: t.ServiceAPI.Start.Hash, StopHash: t.ServiceAPI.Stop.Hash, RefundHash: t.ServiceAPI.Refund.Hash,
	}
	if err := s.store.Update(ctx, func(tx Tx) error { return tx.CreateOrder(ctx, o) }); err != nil {
		return nil, err
	}
	s.hooks.After(ctx, EventOrderCreated, OrderPayload(o))
	return o, nil
}

// orderHours works out the bought hours from duration or an expiry date.
func orderHours(req OrderRequest, now time.Time) (hours, expired int64, err error) {
	if req.ExpiredDate != "" {
		end, err := ParseExpiredDate(req.ExpiredDate)
		if err != nil {
			return 0, 0, Invalid("expiredDate", "%v", err)
		}
		expired = end.Unix()
	} else if req.ServiceExpiredDate != 0 {
		expired = req.ServiceExpiredDate
	}
	if expired != 0 && expired <= now.Unix() {
		return 0, 0, Invalid("serviceExpiredDate", "is in the past")
	}
	switch {
	case req.Duration != nil:
		d := *req.Duration
		if d%DecimalScale != 0 {
			return 0, 0, Invalid("duration", "must be a whole number of hours")
		}
		hours = int64(d / DecimalScale)
	case expired != 0:
		hours = HoursUntil(time.Unix(expired, 0), now)
	default:
		return 0, 0, Invalid("duration", "duration or serviceExpiredDate is required")
	}
	if hours < 1 {
		return 0, 0, Invalid("duration", "must be at least 1 hour")
	}
	return hours, expired, nil
}

// Order returns one order for a caller allowed to see it: its buyer, the
// provider it is paid to, or an operator.
func (s *Orders) Order(ctx context.Context, caller Caller, id string) (*Order, error) {
	o, err := s.store.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	if caller.IsOperator() || (caller.Address != "" && (caller.Address == o.Address || caller.Address == o.Recipient)) {
		return o, nil
	}
	if caller.Address == "" {
		return nil, Errorf(KindUnauthorized, "reading an order needs a wallet-signed request")
	}
	// Do not tell strangers the order exists.
	return nil, NotFound("order", id)
}

// List lists orders matching f.
func (s *Orders) List(ctx context.Context, f OrderFilter) ([]Order, int, error) {
	return s.store.Orders(ctx, f)
}

// Distinct lists the distinct values of an order field.
func (s *Orders) Distinct(ctx context.Context, field string, f OrderFilter) ([]string, error) {
	if !IsDistinctField(field) {
		return nil, Invalid("distinctField", "%q is not a field that can be listed", field)
	}
	return s.store.DistinctOrderValues(ctx, field, f)
}

// PaymentRequest is money received for an order.
type PaymentRequest struct {
	OrderID string
	Amount  Decimal
	// Source and Reference identify the payment; a repeated pair is the
	// same payment and changes nothing.
	Source    string
	Reference string
	// Recipient, when given, must be the order's recipient.
	Recipient string
	// PublicKey, when given and the order has none, is where the secret
	// will be sealed.
	PublicKey string
}

// PaymentResult is the outcome of recording a payment.
type PaymentResult struct {
	Order *Order `json:"order"`
	// Duplicate is true when the payment was recorded before.
	Duplicate bool `json:"duplicate"`
	// Overpaid is what was paid beyond the amount, if anything.
	Overpaid Decimal `json:"overpaid"`
}

// Pay records a payment: partial payments accumulate, a full payment
// marks the order paid and queues its start in the same transaction.
func (s *Orders) Pay(ctx context.Context, p PaymentRequest) (*PaymentResult, error) {
	if p.Amount <= 0 {
		return nil, Invalid("amount", "must be positive")
	}
	if strings.TrimSpace(p.OrderID) == "" {
		return nil, Invalid("orderId", "is required")
	}
	if p.Reference == "" {
		return nil, Invalid("reference", "is required")
	}
	if p.PublicKey != "" && s.validKey != nil {
		if err := s.validKey(p.PublicKey); err != nil {
			return nil, Invalid("pubKey", "%v", err)
		}
	}
	res := &PaymentResult{}
	queued := false
	err := s.store.Update(ctx, func(tx Tx) error {
		*res, queued = PaymentResult{}, false
		o, err := tx.Order(ctx, p.OrderID)
		if err != nil {
			return fieldNotFound("orderId", err)
		}
		if p.Recipient != "" && p.Recipient != o.Recipient {
			return Invalid("providerAddr", "order %s is paid to %s, not %s", o.ID, o.Recipient, p.Recipient)
		}
		now := s.now()
		entry := &Payment{OrderID: o.ID, Kind: PaymentCredit, Amount: p.Amount, Source: p.Source, Reference: p.Reference, CreatedAt: now.Unix()}
		added, err := tx.AddPayment(ctx, entry)
		if err != nil {
			return err
		}
		if !added {
			prev, err := tx.PaymentByReference(ctx, p.Source, p.Reference)
			if err != nil {
				return err
			}
			if prev.OrderID != o.ID || prev.Amount != p.Amount || prev.Kind != PaymentCredit {
				return Errorf(KindConflict, "payment reference %q was already used for a different payment", p.Reference)
			}
			res.Order, res.Duplicate = o, true
			return nil
		}
		sum, ok := o.AmountPaid.add(p.Amount)
		if !ok {
			return Invalid("amount", "total paid overflows")
		}
		o.AmountPaid, o.LastPaymentTS, o.UpdatedAt = sum, now.Unix(), now.Unix()
		if o.PublicKey == "" && p.PublicKey != "" {
			o.PublicKey = p.PublicKey
		}
		if o.Status == OrderPending && o.AmountPaid >= o.Amount {
			o.Status, o.PaidTS = OrderPaid, now.Unix()
			if err := tx.EnqueueJob(ctx, &Job{OrderID: o.ID, Kind: JobStart, RunAt: now}); err != nil {
				return err
			}
			queued = true
		}
		if err := tx.UpdateOrder(ctx, o); err != nil {
			return err
		}
		res.Order = o
		return nil
	})
	if err != nil {
		return nil, err
	}
	if res.Order.AmountPaid > res.Order.Amount {
		res.Overpaid = res.Order.AmountPaid - res.Order.Amount
	}
	if queued {
		s.wake()
		s.hooks.After(ctx, EventOrderPaid, OrderPayload(res.Order))
	}
	return res, nil
}

// add returns d+e and false on overflow.
func (d Decimal) add(e Decimal) (Decimal, bool) {
	s := d + e
	if (e > 0 && s < d) || (e < 0 && s > d) {
		return 0, false
	}
	return s, true
}

// RequestRefund queues a refund of the caller's order. Only the buyer may
// ask, only when the type is refundable and the service is pending,
// running or stopped. Asking again while one is queued, or after it was
// refunded, answers the order as it is: no second refund.
func (s *Orders) RequestRefund(ctx context.Context, caller Caller, id string) (*Order, error) {
	if caller.Address == "" && !caller.IsAdmin() {
		return nil, Errorf(KindUnauthorized, "a refund needs a request signed by the order's owner")
	}
	// Check first, and ask the operator's before-hooks outside the write
	// transaction: a hook may take its whole deadline, and the write
	// connection must not wait for it.
	o, err := s.store.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := refundOwner(caller, o); err != nil {
		return nil, err
	}
	if o.Status == OrderRefund {
		return o, nil
	}
	t, err := s.store.ServiceType(ctx, o.ServiceID)
	if err != nil {
		return nil, err
	}
	if err := refundAllowed(o, t); err != nil {
		return nil, err
	}
	if err := s.hooks.Before(ctx, BeforeOrderRefund, OrderPayload(o)); err != nil {
		return nil, err
	}
	var out *Order
	queued := false
	err = s.store.Update(ctx, func(tx Tx) error {
		queued = false
		cur, err := tx.Order(ctx, id)
		if err != nil {
			return err
		}
		out = cur
		if cur.Status == OrderRefund {
			return nil
		}
		if j, err := tx.QueuedJob(ctx, cur.ID, JobRefund); err != nil {
			return err
		} else if j != nil {
			return nil
		}
		// The order may have moved on while the hooks ran.
		if err := refundAllowed(cur, t); err != nil {
			return err
		}
		queued = true
		return tx.EnqueueJob(ctx, &Job{OrderID: cur.ID, Kind: JobRefund, RunAt: s.now()})
	})
	if err != nil {
		return nil, err
	}
	if queued {
		s.wake()
	}
	return out, nil
}

// refundOwner checks that caller may ask for o's refund: its buyer or an
// admin. Strangers are told the order does not exist.
func refundOwner(caller Caller, o *Order) error {
	if caller.IsAdmin() || caller.Address == o.Address {
		return nil
	}
	if caller.Address == o.Recipient {
		return Errorf(KindForbidden, "only the order's owner may ask for its refund")
	}
	return NotFound("order", o.ID)
}

// refundAllowed checks that o of type t may be refunded now.
func refundAllowed(o *Order, t *ServiceType) error {
	if !t.Refundable {
		return Errorf(KindConflict, "service type %q is not refundable", t.Name)
	}
	if !o.Refundable(true) {
		if o.AmountPaid == 0 {
			return Errorf(KindConflict, "order %s has not been paid", o.ID)
		}
		return Errorf(KindConflict, "order %s cannot be refunded in status %s / %s", o.ID, o.Status, o.ServiceStatus)
	}
	return nil
}

// UserService returns the user service of an order to its buyer: the order
// with its sealed secret.
func (s *Orders) UserService(ctx context.Context, caller Caller, id string) (*Order, error) {
	if caller.Address == "" {
		return nil, Errorf(KindUnauthorized, "reading a user service needs a request signed by its owner")
	}
	o, err := s.store.Order(ctx, id)
	if err != nil {
		return nil, err
	}
	if caller.Address != o.Address {
		return nil, NotFound("user service", id)
	}
	return o, nil
}

// Payments returns an order's ledger to its buyer, provider or operators.
func (s *Orders) Payments(ctx context.Context, caller Caller, id string) ([]Payment, error) {
	if _, err := s.Order(ctx, caller, id); err != nil {
		return nil, err
	}
	return s.store.Payments(ctx, id)
}

// String renders a status pair for messages.
func (o *Order) String() string {
	return fmt.Sprintf("order %s (%s/%s)", o.ID, o.Status, o.ServiceStatus)
}

// UserAPITarget is where a user API call goes.
type UserAPITarget struct {
	Order *Order
	Type  *ServiceType
	// BaseURL is the type's apiHost, else its category's backup host.
	BaseURL string
	// Path is the function's path from the type's serviceAPI map.
	Path string
}

// UserAPI resolves a user API call: kind "normal" or "secret", the function
// name from the type's serviceAPI maps, and the user service (order) id,
// which must belong to the signed caller and be usable.
func (s *Orders) UserAPI(ctx context.Context, caller Caller, kind, fn, id string) (*UserAPITarget, error) {
	if kind != "normal" && kind != "secret" {
		return nil, NotFound("user API kind", kind)
	}
	o, err := s.UserService(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	t, err := s.store.ServiceType(ctx, o.ServiceID)
	if err != nil {
		return nil, err
	}
	m := t.ServiceAPI.Normal
	if kind == "secret" {
		m = t.ServiceAPI.Secret
	}
	path, ok := m[fn]
	if !ok {
		return nil, NotFound(kind+" API function", fn)
	}
	if o.ServiceStatus != ServiceRunning {
		return nil, Errorf(KindConflict, "user service %s is %s, not running", o.ID, o.ServiceStatus)
	}
	base := HostURL(t.APIHost)
	if base == "" {
		c, err := s.store.Category(ctx, t.CategoryID)
		if err != nil {
			return nil, err
		}
		base = HostURL(c.APIHost)
	}
	if base == "" {
		return nil, Errorf(KindUpstream, "service type %q has no apiHost to call", t.Name)
	}
	return &UserAPITarget{Order: o, Type: t, BaseURL: base, Path: path}, nil
}
