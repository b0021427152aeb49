package market

import "context"

// Page selects one page of a list: Current is 1-based.
type Page struct {
	Current  int
	PageSize int
}

// Pagination limits.
const (
	DefaultPageSize = 10
	MaxPageSize     = 100
)

// Offset is the number of rows before the page.
func (p Page) Offset() int { return (p.Current - 1) * p.PageSize }

// Pagination is the pagination object of list answers.
type Pagination struct {
	Total    int `json:"total"`
	Current  int `json:"current"`
	PageSize int `json:"pageSize"`
}

// ProviderFilter selects providers; empty fields do not filter.
type ProviderFilter struct {
	IDs           []string
	Name          string
	WalletAddress string
	Page          Page
}

// CategoryFilter selects categories; empty fields do not filter.
type CategoryFilter struct {
	IDs      []string
	Provider string
	Name     string
	Page     Page
}

// ServiceTypeFilter selects service types; empty fields do not filter.
// MinPrice and MaxPrice bound the base price (inclusive).
type ServiceTypeFilter struct {
	IDs        []string
	Provider   string
	Category   string
	CategoryID string
	Name       string
	MinPrice   *Decimal
	MaxPrice   *Decimal
	Page       Page
}

// CatalogReader reads the catalog. Single-item lookups return a
// KindNotFound *Error when nothing matches.
type CatalogReader interface {
	Provider(ctx context.Context, id string) (*Provider, error)
	Providers(ctx context.Context, f ProviderFilter) ([]Provider, int, error)
	Category(ctx context.Context, id string) (*Category, error)
	CategoryByName(ctx context.Context, provider, name string) (*Category, error)
	Categories(ctx context.Context, f CategoryFilter) ([]Category, int, error)
	ServiceType(ctx context.Context, id string) (*ServiceType, error)
	ServiceTypeByName(ctx context.Context, categoryID, name string) (*ServiceType, error)
	ServiceTypes(ctx context.Context, f ServiceTypeFilter) ([]ServiceType, int, error)
	// ScriptSource returns the decoded Lua source stored under a hash.
	ScriptSource(ctx context.Context, hash string) (string, error)
}

// CatalogWriter changes the catalog inside a transaction. Creating a
// provider, category or type whose unique name is taken is a KindConflict
// *Error.
type CatalogWriter interface {
	CreateProvider(ctx context.Context, p *Provider) error
	UpdateProvider(ctx context.Context, p *Provider) error
	CreateCategory(ctx context.Context, c *Category) error
	UpdateCategory(ctx context.Context, c *Category) error
	CreateServiceType(ctx context.Context, t *ServiceType) error
	UpdateServiceType(ctx context.Context, t *ServiceType) error
	// PutScript stores decoded Lua source under its hash (idempotent).
	PutScript(ctx context.Context, hash, source string) error
	// MarkBundledTemplate records that a bundled template with this content
	// hash was applied; BundledTemplateHash reads it back ("" if never).
	MarkBundledTemplate(ctx context.Context, name, hash string) error
	BundledTemplateHash(ctx context.Context, name string) (string, error)
}

// OrderFilter selects orders; empty fields do not filter.
type OrderFilter struct {
	// Party limits the list to orders bought by or paid to this address.
	Party           string
	IDs             []string
	ServiceID       string
	Service         string
	Address         string
	Recipient       string
	Statuses        []OrderStatus
	ServiceStatuses []ServiceStatus
	// ServiceActivated filters on the flag when not nil.
	ServiceActivated *bool
	// CreatedFrom/CreatedTo bound createdAt (unix seconds, inclusive, 0 = open).
	CreatedFrom, CreatedTo int64
	// ServiceFrom bounds serviceActivateTS from below, ServiceTo endAt from
	// above (unix seconds, inclusive, 0 = open).
	ServiceFrom, ServiceTo int64
	Page                   Page
}

// OrderReader reads orders and their ledger.
type OrderReader interface {
	Order(ctx context.Context, id string) (*Order, error)
	Orders(ctx context.Context, f OrderFilter) ([]Order, int, error)
	// DistinctOrderValues lists the distinct values of one order field
	// (one IsDistinctField accepts) among the orders f selects (paging ignored).
	DistinctOrderValues(ctx context.Context, field string, f OrderFilter) ([]string, error)
	Payments(ctx context.Context, orderID string) ([]Payment, error)
}

// OrderWriter changes orders and the ledger inside a transaction.
type OrderWriter interface {
	CreateOrder(ctx context.Context, o *Order) error
	UpdateOrder(ctx context.Context, o *Order) error
	// AddPayment appends a ledger entry; it reports false (and changes
	// nothing) when the (source, reference) pair is already recorded.
	AddPayment(ctx context.Context, p *Payment) (bool, error)
	// PaymentByReference returns the entry for (source, reference).
	PaymentByReference(ctx context.Context, source, reference string) (*Payment, error)
}

// IsDistinctField reports whether GET /order/distinct may ask for the
// distinct values of an order field.
func IsDistinctField(name string) bool {
	switch name {
	case "serviceID", "service", "provider", "recipient", "address", "serviceCategoryID", "status", "serviceStatus":
		return true
	}
	return false
}

// Tx is one write transaction: reads see its own writes.
type Tx interface {
	CatalogReader
	CatalogWriter
	OrderReader
	OrderWriter
	JobWriter
}

// Store is vmarket's persistence. Reads outside Update may run
// concurrently; Update runs fn in a single write transaction that commits
// when fn returns nil and rolls back otherwise.
type Store interface {
	CatalogReader
	OrderReader
	JobQueue
	Update(ctx context.Context, fn func(tx Tx) error) error
	Close() error
}
