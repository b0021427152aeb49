package market

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// OrderStatus is an order's payment-side status.
type OrderStatus string

// Order statuses, as the V Cloud API names them.
const (
	OrderPending  OrderStatus = "OrderPending"  // created, not fully paid
	OrderPaid     OrderStatus = "OrderPaid"     // fully paid, service starting
	OrderFiled    OrderStatus = "OrderFiled"    // the provider filed the service secret
	OrderComplete OrderStatus = "OrderComplete" // the paid time ran out, service stopped
	OrderRefund   OrderStatus = "OrderRefund"   // refunded
)

// ServiceStatus is the status of the user service an order buys.
type ServiceStatus string

// Service statuses, as the V Cloud API names them.
const (
	ServicePending ServiceStatus = "ServicePending" // not started yet
	ServiceRunning ServiceStatus = "ServiceRunning" // started, usable
	ServiceStop    ServiceStatus = "ServiceStop"    // stopped by the provider, may resume
	ServiceAbort   ServiceStatus = "ServiceAbort"   // ended early: refund or failure
	ServiceDone    ServiceStatus = "ServiceDone"    // ended at its end time
)

// ValidOrderStatus reports whether s names an order status.
func ValidOrderStatus(s string) bool {
	switch OrderStatus(s) {
	case OrderPending, OrderPaid, OrderFiled, OrderComplete, OrderRefund:
		return true
	}
	return false
}

// ValidServiceStatus reports whether s names a service status.
func ValidServiceStatus(s string) bool {
	switch ServiceStatus(s) {
	case ServicePending, ServiceRunning, ServiceStop, ServiceAbort, ServiceDone:
		return true
	}
	return false
}

// Order is one purchase of a service type, and the user service it buys
// (the order id doubles as the user-service id).
type Order struct {
	ID                 string
	CreatedAt          int64
	UpdatedAt          int64
	Duration           int64 // hours bought
	ServiceExpiredDate int64 // user-requested end (unix seconds), 0 if none
	Amount             Decimal
	AmountPaid         Decimal
	AmountRefunded     Decimal
	ServiceID          string
	Service            string // service type name
	ServiceCategoryID  string
	Provider           string
	Address            string // buyer
	Recipient          string // provider wallet address
	ServiceOptions     map[string]string
	Status             OrderStatus
	LastPaymentTS      int64
	PaidTS             int64
	FiledTS            int64
	CompleteTS         int64
	RefundTS           int64
	PublicKey          string // buyer's Curve25519 key the secret is sealed to
	ServiceActivated   bool
	ServiceActivateTS  int64
	EndAt              int64
	ServiceStatus      ServiceStatus
	ServiceRunningTS   int64
	ServiceAbortTS     int64
	ServiceDoneTS      int64
	// Magic is the service secret sealed to PublicKey (base64), "" before
	// the service is filed. Never plain text.
	Magic string
	// UserService is data the start script returned for the buyer.
	UserService map[string]any
	// Scripts are the lifecycle script hashes pinned when the order was
	// created: later catalog changes do not affect it.
	StartHash, StopHash, RefundHash string
	// LastError is the last lifecycle failure, for provider and operator.
	LastError string
}

// OrderJSON is the wire shape of an order: the seed's sample keys
// (including the capitalised PaidTS and FiledTS) plus paidTS and filedTS.
type OrderJSON struct {
	CreatedAt          int64             `json:"createdAt"`
	UpdatedAt          int64             `json:"updatedAt"`
	Duration           int64             `json:"duration"`
	ServiceExpiredDate int64             `json:"serviceExpiredDate"`
	Amount             Decimal           `json:"amount"`
	AmountPaid         Decimal           `json:"amountPaid"`
	ServiceID          string            `json:"serviceID"`
	Service            string            `json:"service"`
	ServiceCategoryID  string            `json:"serviceCategoryID"`
	Provider           string            `json:"provider"`
	Address            string            `json:"address"`
	Recipient          string            `json:"recipient"`
	ID                 string            `json:"id"`
	ServiceOptions     map[string]string `json:"serviceOptions"`
	Status             OrderStatus       `json:"status"`
	LastPaymentTS      int64             `json:"lastPaymentTS"`
	PaidTSCap          int64             `json:"PaidTS"`
	PaidTS             int64             `json:"paidTS"`
	FiledTSCap         int64             `json:"FiledTS"`
	FiledTS            int64             `json:"filedTS"`
	CompleteTS         int64             `json:"completeTS"`
	RefundTS           int64             `json:"refundTS"`
	PublicKey          string            `json:"publicKey"`
	ServiceActivated   bool              `json:"serviceActivated"`
	ServiceActivateTS  int64             `json:"serviceActivateTS"`
	EndAt              int64             `json:"endAt"`
	ServiceStatus      ServiceStatus     `json:"serviceStatus"`
	ServiceRunningTS   int64             `json:"serviceRunningTS"`
	ServiceAbortTS     int64             `json:"serviceAbortTS"`
	ServiceDoneTS      int64             `json:"serviceDoneTS"`
	Magic              string            `json:"magic"`
	AmountRefunded     *Decimal          `json:"amountRefunded,omitempty"`
	LastError          string            `json:"lastError,omitempty"`
}

// OrderView selects what an order's JSON shows to its reader.
type OrderView int

// Order views.
const (
	// ViewPublic shows the seed's fields; magic is empty.
	ViewPublic OrderView = iota
	// ViewOwner adds the sealed magic and the refunded amount.
	ViewOwner
	// ViewProvider adds the refunded amount and the last error.
	ViewProvider
)

// Render returns the order's JSON for a view.
func (o *Order) Render(v OrderView) OrderJSON {
	j := OrderJSON{
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt, Duration: o.Duration, ServiceExpiredDate: o.ServiceExpiredDate,
		Amount: o.Amount, AmountPaid: o.AmountPaid, ServiceID: o.ServiceID, Service: o.Service,
		ServiceCategoryID: o.ServiceCategoryID, Provider: o.Provider, Address: o.Address, Recipient: o.Recipient,
		ID: o.ID, ServiceOptions: o.ServiceOptions, Status: o.Status, LastPaymentTS: o.LastPaymentTS,
		PaidTSCap: o.PaidTS, PaidTS: o.PaidTS, FiledTSCap: o.FiledTS, FiledTS: o.FiledTS,
		CompleteTS: o.CompleteTS, RefundTS: o.RefundTS, PublicKey: o.PublicKey,
		ServiceActivated: o.ServiceActivated, ServiceActivateTS: o.ServiceActivateTS, EndAt: o.EndAt,
		ServiceStatus: o.ServiceStatus, ServiceRunningTS: o.ServiceRunningTS, ServiceAbortTS: o.ServiceAbortTS,
		ServiceDoneTS: o.ServiceDoneTS,
	}
	if j.ServiceOptions == nil {
		j.ServiceOptions = map[string]string{}
	}
	switch v {
	case ViewOwner:
		j.Magic = o.Magic
		r := o.AmountRefunded
		j.AmountRefunded = &r
	case ViewProvider:
		r := o.AmountRefunded
		j.AmountRefunded = &r
		j.LastError = o.LastError
	}
	return j
}

// MarshalJSON renders the public view.
func (o *Order) MarshalJSON() ([]byte, error) { return json.Marshal(o.Render(ViewPublic)) }

// ViewFor returns the view a caller gets of the order.
func (o *Order) ViewFor(c Caller) OrderView {
	switch {
	case c.Address != "" && c.Address == o.Address:
		return ViewOwner
	case c.IsOperator() || (c.Address != "" && c.Address == o.Recipient):
		return ViewProvider
	}
	return ViewPublic
}

// Refundable reports whether the order may be refunded now, given whether
// its type is refundable: the service is pending, running or stopped and
// something was paid and not refunded.
func (o *Order) Refundable(typeRefundable bool) bool {
	if !typeRefundable || o.Status == OrderRefund || o.Status == OrderComplete {
		return false
	}
	switch o.ServiceStatus {
	case ServicePending, ServiceRunning, ServiceStop:
	default:
		return false
	}
	return o.AmountPaid > o.AmountRefunded
}

// Quote is the price of buying a service type for some hours with some
// options.
type Quote struct {
	PriceSet PriceSet
	Hours    int64
	Factor   Decimal // the discount applied
	Amount   Decimal // price × hours × factor, exact
}

// AcceptsAmount reports whether a client's amount agrees with the quote:
// the exact amount, or the exact amount rounded up to a whole coin, which
// is what the V Cloud client computes (math.ceil).
func (q Quote) AcceptsAmount(a Decimal) bool {
	if a == q.Amount {
		return true
	}
	ceil := (q.Amount + DecimalScale - 1) / DecimalScale * DecimalScale
	return q.Amount > 0 && a == ceil
}

// PriceFor finds the price set whose charging options are all among the
// chosen options, checks the options are allowed and the hours reach the
// set's smallest duration key, and computes the amount.
func PriceFor(t *ServiceType, options map[string]string, hours int64) (Quote, error) {
	if hours < 1 {
		return Quote{}, Invalid("duration", "must be at least 1 hour")
	}
	if hours > MaxOrderHours {
		return Quote{}, Invalid("duration", "must be at most %d hours", MaxOrderHours)
	}
	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		allowed, ok := t.ServiceOptions[k]
		if !ok {
			return Quote{}, Invalid("serviceOptions."+k, "is not an option of service type %q", t.Name)
		}
		if err := checkOptionValue("serviceOptions."+k, allowed, options[k]); err != nil {
			return Quote{}, err
		}
	}
	var ps *PriceSet
	for i := range t.DurationToPrice {
		cand := &t.DurationToPrice[i]
		match := true
		for k, v := range cand.ChargingOptions {
			if options[k] != v {
				match = false
				break
			}
		}
		// Prefer the most specific matching set.
		if match && (ps == nil || len(cand.ChargingOptions) > len(ps.ChargingOptions)) {
			ps = cand
		}
	}
	if ps == nil {
		return Quote{}, Invalid("serviceOptions", "no price set of service type %q matches these options", t.Name)
	}
	if len(ps.Duration) == 0 {
		return Quote{}, Invalid("serviceOptions", "the matching price set has no durations")
	}
	if hours < ps.Duration[0].Hours {
		return Quote{}, Invalid("duration", "must be at least %d hours for these options", ps.Duration[0].Hours).
			WithDetail("minimumHours", ps.Duration[0].Hours)
	}
	factor := ps.Duration[0].Factor
	for _, d := range ps.Duration {
		if d.Hours <= hours {
			factor = d.Factor
		}
	}
	perHours, ok := ps.Price.MulInt(hours)
	if !ok {
		return Quote{}, Invalid("duration", "amount overflows")
	}
	amount, ok := MulDecimal(perHours, factor)
	if !ok {
		return Quote{}, Invalid("duration", "amount overflows")
	}
	return Quote{PriceSet: *ps, Hours: hours, Factor: factor, Amount: amount}, nil
}

// checkOptionValue checks a chosen option value: one of the allowed values,
// or, when the type lists none (a free-form option such as an account
// number), any non-empty printable text up to MaxNameLen bytes.
func checkOptionValue(field string, allowed []string, v string) error {
	if len(allowed) == 0 {
		return checkName(field, v)
	}
	if !contains(allowed, v) {
		return Invalid(field, "%q is not one of %v", v, allowed)
	}
	return nil
}

// MaxOrderHours bounds one order's duration (ten years).
const MaxOrderHours = 24 * 366 * 10

// HoursUntil converts an end time into whole hours from now, rounding up.
func HoursUntil(end, now time.Time) int64 {
	d := end.Sub(now)
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Hours()))
}

// ParseExpiredDate reads the client's expiredDate: "YYYY-MM-DD" (the end of
// that day, UTC) or unix seconds.
func ParseExpiredDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Second), nil
	}
	var sec int64
	if _, err := fmt.Sscanf(s, "%d", &sec); err == nil && sec > 0 {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD) or unix time", s)
}

// String returns the status name.
func (s OrderStatus) String() string { return string(s) }
