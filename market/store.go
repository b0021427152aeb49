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

// Tx is one write transaction: reads see its own writes.
type Tx interface {
	CatalogReader
	CatalogWriter
}

// Store is vmarket's persistence. Reads outside Update may run
// concurrently; Update runs fn in a single write transaction that commits
// when fn returns nil and rolls back otherwise.
type Store interface {
	CatalogReader
	Update(ctx context.Context, fn func(tx Tx) error) error
	Close() error
}
