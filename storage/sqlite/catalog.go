package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vmarket/vmarket/market"
)

// where accumulates SQL conditions and their arguments.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	w.add(col+" IN ("+placeholders(len(vals))+")", args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// count runs SELECT COUNT(*) with the given FROM clause and conditions.
func (q queries) count(ctx context.Context, from string, w *where) (int, error) {
	var n int
	err := q.q.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+from+w.sql(), w.args...).Scan(&n)
	if err != nil {
		return 0, storageErr(err, "count")
	}
	return n, nil
}

func pageArgs(w *where, p market.Page) []any {
	return append(append([]any{}, w.args...), p.PageSize, p.Offset())
}

const providerCols = "id, wallet_address, sign_address, api_host, created_at, updated_at"

func scanProvider(s interface{ Scan(...any) error }) (market.Provider, error) {
	var p market.Provider
	err := s.Scan(&p.ID, &p.WalletAddress, &p.SignAddress, &p.APIHost, &p.CreatedAt, &p.UpdatedAt)
	p.Name = p.ID
	return p, err
}

// Provider implements market.CatalogReader.
func (q queries) Provider(ctx context.Context, id string) (*market.Provider, error) {
	p, err := scanProvider(q.q.QueryRowContext(ctx, "SELECT "+providerCols+" FROM providers WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("provider", id)
	}
	if err != nil {
		return nil, storageErr(err, "read provider")
	}
	list := []market.Provider{p}
	if err := q.fillCategory2ID(ctx, list); err != nil {
		return nil, err
	}
	return &list[0], nil
}

// Providers implements market.CatalogReader.
func (q queries) Providers(ctx context.Context, f market.ProviderFilter) ([]market.Provider, int, error) {
	var w where
	w.in("id", f.IDs)
	if f.Name != "" {
		w.add("id = ?", f.Name)
	}
	if f.WalletAddress != "" {
		w.add("wallet_address = ?", f.WalletAddress)
	}
	total, err := q.count(ctx, "providers", &w)
	if err != nil {
		return nil, 0, err
	}
	rows, err := q.q.QueryContext(ctx, "SELECT "+providerCols+" FROM providers"+w.sql()+" ORDER BY seq LIMIT ? OFFSET ?", pageArgs(&w, f.Page)...)
	if err != nil {
		return nil, 0, storageErr(err, "list providers")
	}
	defer rows.Close()
	list := []market.Provider{}
	for rows.Next() {
		p, err := scanProvider(rows)
		if err != nil {
			return nil, 0, storageErr(err, "list providers")
		}
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, storageErr(err, "list providers")
	}
	if err := q.fillCategory2ID(ctx, list); err != nil {
		return nil, 0, err
	}
	return list, total, nil
}

// fillCategory2ID sets each provider's category name → id map.
func (q queries) fillCategory2ID(ctx context.Context, list []market.Provider) error {
	if len(list) == 0 {
		return nil
	}
	idx := make(map[string]int, len(list))
	ids := make([]string, len(list))
	for i := range list {
		list[i].Category2ID = map[string]string{}
		idx[list[i].ID] = i
		ids[i] = list[i].ID
	}
	var w where
	w.in("provider_id", ids)
	rows, err := q.q.QueryContext(ctx, "SELECT provider_id, name, id FROM categories"+w.sql(), w.args...)
	if err != nil {
		return storageErr(err, "read category names")
	}
	defer rows.Close()
	for rows.Next() {
		var pid, name, id string
		if err := rows.Scan(&pid, &name, &id); err != nil {
			return storageErr(err, "read category names")
		}
		list[idx[pid]].Category2ID[name] = id
	}
	return storageErr(rows.Err(), "read category names")
}

const categoryCols = "id, provider_id, name, description, service_options, api_host, created_at, updated_at"

func scanCategory(s interface{ Scan(...any) error }) (market.Category, error) {
	var c market.Category
	var opts string
	if err := s.Scan(&c.ID, &c.Provider, &c.Name, &c.Description, &opts, &c.APIHost, &c.CreatedAt, &c.UpdatedAt); err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(opts), &c.ServiceOptions); err != nil {
		return c, fmt.Errorf("category %s service options: %w", c.ID, err)
	}
	c.Normalize()
	return c, nil
}

// Category implements market.CatalogReader.
func (q queries) Category(ctx context.Context, id string) (*market.Category, error) {
	return q.oneCategory(ctx, "id = ?", id)
}

// CategoryByName implements market.CatalogReader.
func (q queries) CategoryByName(ctx context.Context, provider, name string) (*market.Category, error) {
	c, err := q.oneCategory(ctx, "provider_id = ? AND name = ?", provider, name)
	if market.KindOf(err) == market.KindNotFound {
		return nil, market.NotFound("category", provider+"/"+name)
	}
	return c, err
}

func (q queries) oneCategory(ctx context.Context, cond string, args ...any) (*market.Category, error) {
	c, err := scanCategory(q.q.QueryRowContext(ctx, "SELECT "+categoryCols+" FROM categories WHERE "+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("category", fmt.Sprint(args[0]))
	}
	if err != nil {
		return nil, storageErr(err, "read category")
	}
	list := []market.Category{c}
	if err := q.fillName2ID(ctx, list); err != nil {
		return nil, err
	}
	return &list[0], nil
}

// Categories implements market.CatalogReader.
func (q queries) Categories(ctx context.Context, f market.CategoryFilter) ([]market.Category, int, error) {
	var w where
	w.in("id", f.IDs)
	if f.Provider != "" {
		w.add("provider_id = ?", f.Provider)
	}
	if f.Name != "" {
		w.add("name = ?", f.Name)
	}
	total, err := q.count(ctx, "categories", &w)
	if err != nil {
		return nil, 0, err
	}
	rows, err := q.q.QueryContext(ctx, "SELECT "+categoryCols+" FROM categories"+w.sql()+" ORDER BY seq LIMIT ? OFFSET ?", pageArgs(&w, f.Page)...)
	if err != nil {
		return nil, 0, storageErr(err, "list categories")
	}
	defer rows.Close()
	list := []market.Category{}
	for rows.Next() {
		c, err := scanCategory(rows)
		if err != nil {
			return nil, 0, storageErr(err, "list categories")
		}
		list = append(list, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, storageErr(err, "list categories")
	}
	if err := q.fillName2ID(ctx, list); err != nil {
		return nil, 0, err
	}
	return list, total, nil
}

// fillName2ID sets each category's type name → id map.
func (q queries) fillName2ID(ctx context.Context, list []market.Category) error {
	if len(list) == 0 {
		return nil
	}
	idx := make(map[string]int, len(list))
	ids := make([]string, len(list))
	for i := range list {
		idx[list[i].ID] = i
		ids[i] = list[i].ID
	}
	var w where
	w.in("category_id", ids)
	rows, err := q.q.QueryContext(ctx, "SELECT category_id, name, id FROM service_types"+w.sql(), w.args...)
	if err != nil {
		return storageErr(err, "read type names")
	}
	defer rows.Close()
	for rows.Next() {
		var cid, name, id string
		if err := rows.Scan(&cid, &name, &id); err != nil {
			return storageErr(err, "read type names")
		}
		list[idx[cid]].Name2ID[name] = id
	}
	return storageErr(rows.Err(), "read type names")
}

// typeCols reads the category name with a correlated subquery rather than
// a join: with a bound id, SQLite runs the joined form several times slower.
const typeCols = `t.id, t.name, t.duration_to_price, t.provider_id, t.refundable, t.category_id,
	(SELECT c.name FROM categories c WHERE c.id = t.category_id),
	t.service_options, t.normal_api, t.secret_api,
	t.start_script, COALESCE(t.start_hash, ''), t.stop_script, COALESCE(t.stop_hash, ''), t.refund_script, COALESCE(t.refund_hash, ''),
	t.description, t.api_host, t.created_at, t.updated_at`

const typeFrom = "service_types t JOIN categories c ON c.id = t.category_id"

func (q queries) scanType(s interface{ Scan(...any) error }) (market.ServiceType, error) {
	var t market.ServiceType
	var prices, opts, normal, secret string
	a := &t.ServiceAPI
	err := s.Scan(&t.ID, &t.Name, &prices, &t.Provider, &t.Refundable, &t.CategoryID, &t.Category,
		&opts, &normal, &secret,
		&a.Start.Encoded, &a.Start.Hash, &a.Stop.Encoded, &a.Stop.Hash, &a.Refund.Encoded, &a.Refund.Hash,
		&t.Description, &t.APIHost, &t.CreatedAt, &t.UpdatedAt)
	if err != nil {
		return t, err
	}
	if t.DurationToPrice, err = decodeCached[[]market.PriceSet](q.decoded, "p", prices); err == nil {
		// A fresh slice header: the cached sets stay untouched.
		t.DurationToPrice = append([]market.PriceSet(nil), t.DurationToPrice...)
		t.ServiceOptions, err = decodeCached[market.Options](q.decoded, "o", opts)
	}
	if err == nil {
		a.Normal, err = decodeCached[map[string]string](q.decoded, "m", normal)
	}
	if err == nil {
		a.Secret, err = decodeCached[map[string]string](q.decoded, "m", secret)
	}
	if err != nil {
		return t, fmt.Errorf("service type %s: %w", t.ID, err)
	}
	t.Normalize()
	return t, nil
}

// ServiceType implements market.CatalogReader.
func (q queries) ServiceType(ctx context.Context, id string) (*market.ServiceType, error) {
	return q.oneType(ctx, "t.id = ?", id)
}

// ServiceTypeByName implements market.CatalogReader.
func (q queries) ServiceTypeByName(ctx context.Context, categoryID, name string) (*market.ServiceType, error) {
	t, err := q.oneType(ctx, "t.category_id = ? AND t.name = ?", categoryID, name)
	if market.KindOf(err) == market.KindNotFound {
		return nil, market.NotFound("service type", categoryID+"/"+name)
	}
	return t, err
}

func (q queries) oneType(ctx context.Context, cond string, args ...any) (*market.ServiceType, error) {
	t, err := q.scanType(q.q.QueryRowContext(ctx, "SELECT "+typeCols+" FROM service_types t WHERE "+cond, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, market.NotFound("service type", fmt.Sprint(args[0]))
	}
	if err != nil {
		return nil, storageErr(err, "read service type")
	}
	return &t, nil
}

// ServiceTypes implements market.CatalogReader.
func (q queries) ServiceTypes(ctx context.Context, f market.ServiceTypeFilter) ([]market.ServiceType, int, error) {
	var w where
	w.in("t.id", f.IDs)
	if f.Provider != "" {
		w.add("t.provider_id = ?", f.Provider)
	}
	if f.Category != "" {
		w.add("c.name = ?", f.Category)
	}
	if f.CategoryID != "" {
		w.add("t.category_id = ?", f.CategoryID)
	}
	if f.Name != "" {
		w.add("t.name = ?", f.Name)
	}
	if f.MinPrice != nil {
		w.add("t.base_price >= ?", int64(*f.MinPrice))
	}
	if f.MaxPrice != nil {
		w.add("t.base_price <= ?", int64(*f.MaxPrice))
	}
	from := "service_types t"
	if f.Category != "" {
		from = typeFrom
	}
	total, err := q.count(ctx, from, &w)
	if err != nil {
		return nil, 0, err
	}
	// Page over the narrow table first, then join and read only the page's
	// rows: deep OFFSETs then skip index entries, not joined rows.
	rows, err := q.q.QueryContext(ctx, "SELECT "+typeCols+" FROM service_types t WHERE t.seq IN (SELECT t.seq FROM "+from+w.sql()+
		" ORDER BY t.seq LIMIT ? OFFSET ?) ORDER BY t.seq", pageArgs(&w, f.Page)...)
	if err != nil {
		return nil, 0, storageErr(err, "list service types")
	}
	defer rows.Close()
	list := []market.ServiceType{}
	for rows.Next() {
		t, err := q.scanType(rows)
		if err != nil {
			return nil, 0, storageErr(err, "list service types")
		}
		list = append(list, t)
	}
	return list, total, storageErr(rows.Err(), "list service types")
}

// ScriptSource implements market.CatalogReader.
func (q queries) ScriptSource(ctx context.Context, hash string) (string, error) {
	var src string
	err := q.q.QueryRowContext(ctx, "SELECT source FROM scripts WHERE hash = ?", hash).Scan(&src)
	if errors.Is(err, sql.ErrNoRows) {
		return "", market.NotFound("script", hash)
	}
	return src, storageErr(err, "read script")
}

// CreateProvider implements market.CatalogWriter.
func (t *tx) CreateProvider(ctx context.Context, p *market.Provider) error {
	_, err := t.q.ExecContext(ctx, "INSERT INTO providers ("+providerCols+") VALUES (?, ?, ?, ?, ?, ?)",
		p.Name, p.WalletAddress, p.SignAddress, p.APIHost, p.CreatedAt, p.UpdatedAt)
	if market.KindOf(storageErr(err, "")) == market.KindConflict {
		return &market.Error{Kind: market.KindConflict, Field: "name", Message: fmt.Sprintf("provider %q already exists", p.Name), Err: err}
	}
	return storageErr(err, "create provider")
}

// UpdateProvider implements market.CatalogWriter.
func (t *tx) UpdateProvider(ctx context.Context, p *market.Provider) error {
	return t.exec1(ctx, "provider", p.ID,
		"UPDATE providers SET wallet_address = ?, sign_address = ?, api_host = ?, updated_at = ? WHERE id = ?",
		p.WalletAddress, p.SignAddress, p.APIHost, p.UpdatedAt, p.ID)
}

// exec1 runs an UPDATE that must change exactly one row.
func (t *tx) exec1(ctx context.Context, what, id, query string, args ...any) error {
	res, err := t.q.ExecContext(ctx, query, args...)
	if err != nil {
		return storageErr(err, "update "+what)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return market.NotFound(what, id)
	}
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own map and slice types get here; they always encode.
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return string(b)
}

// CreateCategory implements market.CatalogWriter.
func (t *tx) CreateCategory(ctx context.Context, c *market.Category) error {
	_, err := t.q.ExecContext(ctx, "INSERT INTO categories ("+categoryCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.Provider, c.Name, c.Description, mustJSON(c.ServiceOptions), c.APIHost, c.CreatedAt, c.UpdatedAt)
	if market.KindOf(storageErr(err, "")) == market.KindConflict {
		return &market.Error{Kind: market.KindConflict, Field: "name", Message: fmt.Sprintf("category %q already exists under provider %q", c.Name, c.Provider), Err: err}
	}
	return storageErr(err, "create category")
}

// UpdateCategory implements market.CatalogWriter.
func (t *tx) UpdateCategory(ctx context.Context, c *market.Category) error {
	return t.exec1(ctx, "category", c.ID,
		"UPDATE categories SET description = ?, service_options = ?, api_host = ?, updated_at = ? WHERE id = ?",
		c.Description, mustJSON(c.ServiceOptions), c.APIHost, c.UpdatedAt, c.ID)
}

func nullHash(h string) any {
	if h == "" {
		return nil
	}
	return h
}

// CreateServiceType implements market.CatalogWriter.
func (t *tx) CreateServiceType(ctx context.Context, s *market.ServiceType) error {
	a := &s.ServiceAPI
	_, err := t.q.ExecContext(ctx, `INSERT INTO service_types (id, category_id, provider_id, name, refundable, base_price,
		duration_to_price, service_options, normal_api, secret_api, start_script, start_hash, stop_script, stop_hash,
		refund_script, refund_hash, description, api_host, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.CategoryID, s.Provider, s.Name, s.Refundable, int64(s.BasePrice()),
		mustJSON(s.DurationToPrice), mustJSON(s.ServiceOptions), mustJSON(a.Normal), mustJSON(a.Secret),
		a.Start.Encoded, nullHash(a.Start.Hash), a.Stop.Encoded, nullHash(a.Stop.Hash), a.Refund.Encoded, nullHash(a.Refund.Hash),
		s.Description, s.APIHost, s.CreatedAt, s.UpdatedAt)
	if market.KindOf(storageErr(err, "")) == market.KindConflict {
		return &market.Error{Kind: market.KindConflict, Field: "name", Message: fmt.Sprintf("service type %q already exists in category %q", s.Name, s.Category), Err: err}
	}
	return storageErr(err, "create service type")
}

// UpdateServiceType implements market.CatalogWriter.
func (t *tx) UpdateServiceType(ctx context.Context, s *market.ServiceType) error {
	a := &s.ServiceAPI
	return t.exec1(ctx, "service type", s.ID, `UPDATE service_types SET refundable = ?, base_price = ?, duration_to_price = ?,
		service_options = ?, normal_api = ?, secret_api = ?, start_script = ?, start_hash = ?, stop_script = ?, stop_hash = ?,
		refund_script = ?, refund_hash = ?, description = ?, api_host = ?, updated_at = ? WHERE id = ?`,
		s.Refundable, int64(s.BasePrice()), mustJSON(s.DurationToPrice), mustJSON(s.ServiceOptions),
		mustJSON(a.Normal), mustJSON(a.Secret), a.Start.Encoded, nullHash(a.Start.Hash), a.Stop.Encoded, nullHash(a.Stop.Hash),
		a.Refund.Encoded, nullHash(a.Refund.Hash), s.Description, s.APIHost, s.UpdatedAt, s.ID)
}

// PutScript implements market.CatalogWriter.
func (t *tx) PutScript(ctx context.Context, hash, source string) error {
	_, err := t.q.ExecContext(ctx, "INSERT INTO scripts (hash, source, created_at) VALUES (?, ?, strftime('%s','now')) ON CONFLICT (hash) DO NOTHING", hash, source)
	return storageErr(err, "store script")
}

// MarkBundledTemplate implements market.CatalogWriter.
func (t *tx) MarkBundledTemplate(ctx context.Context, name, hash string) error {
	_, err := t.q.ExecContext(ctx, `INSERT INTO bundled_templates (name, hash, applied_at) VALUES (?, ?, strftime('%s','now'))
		ON CONFLICT (name) DO UPDATE SET hash = excluded.hash, applied_at = excluded.applied_at`, name, hash)
	return storageErr(err, "record bundled template")
}

// BundledTemplateHash implements market.CatalogWriter.
func (t *tx) BundledTemplateHash(ctx context.Context, name string) (string, error) {
	var h string
	err := t.q.QueryRowContext(ctx, "SELECT hash FROM bundled_templates WHERE name = ?", name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, storageErr(err, "read bundled template")
}

var _ market.Store = (*DB)(nil)
var _ market.Tx = (*tx)(nil)
