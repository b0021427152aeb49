package market

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// ScriptCompiler decodes url-encoded Lua and compiles it. A syntax error is
// returned as *ScriptError.
type ScriptCompiler interface {
	CheckScript(chunk, encoded string) (source string, err error)
}

// ScriptError is a Lua syntax error found at upload: its line (0 when
// unknown) and message.
type ScriptError struct {
	Line    int
	Message string
}

// Error implements error.
func (e *ScriptError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Message)
	}
	return e.Message
}

// Catalog is the catalog service: it validates, authorizes and stores
// providers, categories and service types, and applies templates.
type Catalog struct {
	store    Store
	compiler ScriptCompiler
	// validAddress checks wallet address formats; nil accepts any.
	validAddress func(string) error
	now          func() time.Time
	// gen counts committed catalog changes, so readers can cache answers.
	gen   atomic.Int64
	hooks Hooks
}

// CatalogOption configures a Catalog.
type CatalogOption func(*Catalog)

// WithAddressValidator makes the catalog check walletAddress formats.
func WithAddressValidator(f func(string) error) CatalogOption {
	return func(c *Catalog) { c.validAddress = f }
}

// WithCatalogHooks sets the operator hooks told about template uploads.
func WithCatalogHooks(h Hooks) CatalogOption {
	return func(c *Catalog) { c.hooks = h }
}

// WithClock sets the catalog's clock (tests).
func WithClock(now func() time.Time) CatalogOption {
	return func(c *Catalog) { c.now = now }
}

// NewCatalog returns a catalog service over store. store may be nil for
// offline validation (CheckTemplate).
func NewCatalog(store Store, compiler ScriptCompiler, opts ...CatalogOption) *Catalog {
	c := &Catalog{store: store, compiler: compiler, now: time.Now, hooks: NoHooks{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Generation is a counter bumped by every committed catalog change; an
// answer computed at one generation stays valid while it does not move.
func (c *Catalog) Generation() int64 { return c.gen.Load() }

// update runs fn in a write transaction and bumps the generation when it
// commits.
func (c *Catalog) update(ctx context.Context, fn func(Tx) error) error {
	// Bump before and after: a reader that cached an answer during the
	// transaction (seeing old data under the new number) is invalidated by
	// the second bump.
	c.gen.Add(1)
	err := c.store.Update(ctx, fn)
	c.gen.Add(1)
	return err
}

// CreateProvider creates a provider. Any admin operator or any signed
// caller may create one; a signed caller's address becomes its
// signAddress.
func (c *Catalog) CreateProvider(ctx context.Context, caller Caller, p *Provider) (*Provider, error) {
	if !caller.IsAdmin() && caller.Address == "" {
		return nil, Denied(caller, "creating a provider needs a signed request or an operator token")
	}
	if err := c.checkProvider(p); err != nil {
		return nil, err
	}
	if caller.Address != "" {
		p.SignAddress = caller.Address
	}
	now := c.now().Unix()
	p.CreatedAt, p.UpdatedAt = now, now
	p.Normalize()
	err := c.update(ctx, func(tx Tx) error { return tx.CreateProvider(ctx, p) })
	if err != nil {
		return nil, err
	}
	return c.store.Provider(ctx, p.ID)
}

func (c *Catalog) checkProvider(p *Provider) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if c.validAddress != nil {
		if err := c.validAddress(p.WalletAddress); err != nil {
			return Invalid("walletAddress", "%v", err)
		}
	}
	return nil
}

// Denied is a 401 error for anonymous callers and a 403 for known ones
// who lack the right.
func Denied(caller Caller, format string, args ...any) error {
	if !caller.IsOperator() && caller.Address == "" {
		return Errorf(KindUnauthorized, format, args...)
	}
	return Errorf(KindForbidden, format, args...)
}

// authorize checks that caller may change provider's catalog.
func authorize(caller Caller, p *Provider) error {
	if caller.CanManage(p) {
		return nil
	}
	return Denied(caller, "only provider %q's sign address or an operator may change it", p.Name)
}

// CreateCategory creates a category under an existing provider.
func (c *Catalog) CreateCategory(ctx context.Context, caller Caller, cat *Category) (*Category, error) {
	if !caller.IsAdmin() && caller.Address == "" {
		return nil, Denied(caller, "creating a category needs a signed request or an operator token")
	}
	if err := cat.Validate(); err != nil {
		return nil, err
	}
	now := c.now().Unix()
	cat.ID = uuid.NewString()
	cat.CreatedAt, cat.UpdatedAt = now, now
	cat.Normalize()
	err := c.update(ctx, func(tx Tx) error {
		p, err := tx.Provider(ctx, cat.Provider)
		if err != nil {
			return fieldNotFound("provider", err)
		}
		if err := authorize(caller, p); err != nil {
			return err
		}
		return tx.CreateCategory(ctx, cat)
	})
	if err != nil {
		return nil, err
	}
	return c.store.Category(ctx, cat.ID)
}

// fieldNotFound turns a not-found lookup of a referenced object into a
// validation error of the referring field.
func fieldNotFound(field string, err error) error {
	if KindOf(err) == KindNotFound {
		return &Error{Kind: KindInvalid, Field: field, Message: AsError(err).Message, Err: err}
	}
	return err
}

// CreateServiceType creates a service type under an existing category,
// given by categoryID or by category name (both must agree when both are
// given). Its scripts must decode and compile.
func (c *Catalog) CreateServiceType(ctx context.Context, caller Caller, t *ServiceType) (*ServiceType, error) {
	if !caller.IsAdmin() && caller.Address == "" {
		return nil, Denied(caller, "creating a service type needs a signed request or an operator token")
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	scripts, err := c.compileScripts(t)
	if err != nil {
		return nil, err
	}
	now := c.now().Unix()
	t.ID = uuid.NewString()
	t.CreatedAt, t.UpdatedAt = now, now
	t.Normalize()
	err = c.update(ctx, func(tx Tx) error {
		p, err := tx.Provider(ctx, t.Provider)
		if err != nil {
			return fieldNotFound("provider", err)
		}
		if err := authorize(caller, p); err != nil {
			return err
		}
		cat, err := resolveCategory(ctx, tx, t)
		if err != nil {
			return err
		}
		t.CategoryID, t.Category = cat.ID, cat.Name
		if err := putScripts(ctx, tx, scripts); err != nil {
			return err
		}
		return tx.CreateServiceType(ctx, t)
	})
	if err != nil {
		return nil, err
	}
	return c.store.ServiceType(ctx, t.ID)
}

// resolveCategory finds t's category from categoryID and/or name and checks
// it belongs to t's provider.
func resolveCategory(ctx context.Context, r CatalogReader, t *ServiceType) (*Category, error) {
	var cat *Category
	var err error
	if t.CategoryID != "" {
		cat, err = r.Category(ctx, t.CategoryID)
		if err != nil {
			return nil, fieldNotFound("categoryID", err)
		}
		if t.Category != "" && t.Category != cat.Name {
			return nil, Invalid("category", "%q does not match categoryID %s (named %q)", t.Category, cat.ID, cat.Name)
		}
	} else {
		cat, err = r.CategoryByName(ctx, t.Provider, t.Category)
		if err != nil {
			return nil, fieldNotFound("category", err)
		}
	}
	if cat.Provider != t.Provider {
		return nil, Invalid("categoryID", "category %s belongs to provider %q, not %q", cat.ID, cat.Provider, t.Provider)
	}
	return cat, nil
}

// compiledScript is a decoded script ready to store.
type compiledScript struct{ hash, source string }

// compileScripts decodes and compiles t's lifecycle scripts, setting their
// hashes, and returns the sources to store.
func (c *Catalog) compileScripts(t *ServiceType) ([]compiledScript, error) {
	var out []compiledScript
	for _, s := range t.ServiceAPI.Scripts() {
		s.Script.Hash = ""
		if s.Script.Encoded == "" {
			continue
		}
		src, err := c.compiler.CheckScript(s.Name, s.Script.Encoded)
		if err != nil {
			field := "serviceAPI." + s.Name
			var se *ScriptError
			if errors.As(err, &se) {
				e := Invalid(field, "service type %q: script %s: %s", t.Name, s.Name, se.Error())
				e.WithDetail("serviceType", t.Name).WithDetail("script", s.Name)
				if se.Line > 0 {
					e.WithDetail("line", se.Line)
				}
				return nil, e
			}
			return nil, Invalid(field, "service type %q: script %s: %v", t.Name, s.Name, err)
		}
		sum := sha256.Sum256([]byte(src))
		s.Script.Hash = hex.EncodeToString(sum[:])
		out = append(out, compiledScript{s.Script.Hash, src})
	}
	return out, nil
}

func putScripts(ctx context.Context, tx Tx, scripts []compiledScript) error {
	for _, s := range scripts {
		if err := tx.PutScript(ctx, s.hash, s.source); err != nil {
			return err
		}
	}
	return nil
}

// Provider returns one provider.
func (c *Catalog) Provider(ctx context.Context, id string) (*Provider, error) {
	return c.store.Provider(ctx, id)
}

// Providers lists providers.
func (c *Catalog) Providers(ctx context.Context, f ProviderFilter) ([]Provider, int, error) {
	return c.store.Providers(ctx, f)
}

// Category returns one category.
func (c *Catalog) Category(ctx context.Context, id string) (*Category, error) {
	return c.store.Category(ctx, id)
}

// Categories lists categories.
func (c *Catalog) Categories(ctx context.Context, f CategoryFilter) ([]Category, int, error) {
	return c.store.Categories(ctx, f)
}

// ServiceType returns one service type; script bodies only for callers who
// may read them (operators and the provider's sign address).
func (c *Catalog) ServiceType(ctx context.Context, caller Caller, id string) (*ServiceType, error) {
	t, err := c.store.ServiceType(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.canReadScripts(ctx, caller, t.Provider) {
		pub := t.Public()
		t = &pub
	}
	return t, nil
}

// ServiceTypes lists service types; script bodies only for callers who may
// read them.
func (c *Catalog) ServiceTypes(ctx context.Context, caller Caller, f ServiceTypeFilter) ([]ServiceType, int, error) {
	list, total, err := c.store.ServiceTypes(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	readable := map[string]bool{}
	for i := range list {
		p := list[i].Provider
		ok, seen := readable[p]
		if !seen {
			ok = c.canReadScripts(ctx, caller, p)
			readable[p] = ok
		}
		if !ok {
			list[i] = list[i].Public()
		}
	}
	return list, total, nil
}

func (c *Catalog) canReadScripts(ctx context.Context, caller Caller, provider string) bool {
	if caller.IsOperator() {
		return true
	}
	if caller.Address == "" {
		return false
	}
	p, err := c.store.Provider(ctx, provider)
	return err == nil && caller.CanRead(p)
}
