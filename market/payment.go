package market

// PaymentKind tells credits from refunds in the ledger.
type PaymentKind string

// Ledger entry kinds.
const (
	PaymentCredit PaymentKind = "credit"
	PaymentRefund PaymentKind = "refund"
)

// Payment sources.
const (
	SourceMock     = "mock"     // POST /api/v1/order/mock
	SourceOperator = "operator" // operator confirmation endpoint
	SourceRefund   = "refund"   // refunds made by vmarket
)

// Payment is one ledger entry: money in (credit) or back out (refund) for
// an order. (Source, Reference) is unique, which makes confirmations
// idempotent.
type Payment struct {
	ID        int64       `json:"id"`
	OrderID   string      `json:"orderId"`
	Kind      PaymentKind `json:"kind"`
	Amount    Decimal     `json:"amount"`
	Source    string      `json:"source"`
	Reference string      `json:"reference"`
	CreatedAt int64       `json:"createdAt"`
}
