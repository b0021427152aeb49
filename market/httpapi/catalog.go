package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/templates"
)

// listAnswer is the shape of every list answer.
type listAnswer[T any] struct {
	List       []T               `json:"list"`
	Pagination market.Pagination `json:"pagination"`
}

// writeJSON renders v as the JSON answer.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return market.Internal(err, "encode answer")
	}
	return c.JSONBlob(status, b)
}

// cachedList serves an anonymous list request from the response cache, or
// computes it with fn and caches it.
func (s *Server) cachedList(c echo.Context, fn func() (any, error)) error {
	if !s.anonymous(c) {
		v, err := fn()
		if err != nil {
			return err
		}
		return writeJSON(c, http.StatusOK, v)
	}
	key := c.Request().URL.Path + "?" + c.Request().URL.RawQuery
	gen := s.cfg.Catalog.Generation()
	if a, ok := s.cache.get(key, gen); ok {
		return c.JSONBlob(a.status, a.body)
	}
	v, err := fn()
	if err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return market.Internal(err, "encode answer")
	}
	s.cache.put(key, gen, http.StatusOK, b)
	return c.JSONBlob(http.StatusOK, b)
}

func (s *Server) createProvider(c echo.Context) error {
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	var p market.Provider
	if err := decodeJSON(body, &p); err != nil {
		return err
	}
	out, err := s.cfg.Catalog.CreateProvider(c.Request().Context(), s.callerOf(c), &p)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, out)
}

func (s *Server) listProviders(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	var f market.ProviderFilter
	if f.IDs, err = q.list("ids[]", "ids", "id"); err != nil {
		return err
	}
	f.Name = q.str("name")
	f.WalletAddress = q.str("walletAddress")
	if f.Page, err = q.page(); err != nil {
		return err
	}
	return s.cachedList(c, func() (any, error) {
		list, total, err := s.cfg.Catalog.Providers(c.Request().Context(), f)
		return listAnswer[market.Provider]{list, pagination(total, f.Page)}, err
	})
}

func pagination(total int, p market.Page) market.Pagination {
	return market.Pagination{Total: total, Current: p.Current, PageSize: p.PageSize}
}

func (s *Server) getProvider(c echo.Context) error {
	p, err := s.cfg.Catalog.Provider(c.Request().Context(), pathParam(c, "id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, p)
}

// createCategoryOrType creates a category, or a service type when the body
// is one: the seed documents type creation under this path by mistake.
func (s *Server) createCategoryOrType(c echo.Context) error {
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	var probe map[string]json.RawMessage
	if err := decodeJSON(body, &probe); err != nil {
		return err
	}
	for _, k := range []string{"durationToPrice", "serviceAPI", "categoryID", "refundable"} {
		if _, ok := probe[k]; ok {
			return s.createType(c, body)
		}
	}
	var cat market.Category
	if err := decodeJSON(body, &cat); err != nil {
		return err
	}
	out, err := s.cfg.Catalog.CreateCategory(c.Request().Context(), s.callerOf(c), &cat)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, out)
}

func (s *Server) listCategories(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	var f market.CategoryFilter
	if f.IDs, err = q.list("ids[]", "ids", "id"); err != nil {
		return err
	}
	f.Provider = q.str("provider")
	f.Name = q.str("name")
	if f.Page, err = q.page(); err != nil {
		return err
	}
	return s.cachedList(c, func() (any, error) {
		list, total, err := s.cfg.Catalog.Categories(c.Request().Context(), f)
		return listAnswer[market.Category]{list, pagination(total, f.Page)}, err
	})
}

func (s *Server) getCategory(c echo.Context) error {
	cat, err := s.cfg.Catalog.Category(c.Request().Context(), pathParam(c, "id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, cat)
}

func (s *Server) createServiceType(c echo.Context) error {
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	return s.createType(c, body)
}

func (s *Server) createType(c echo.Context, body []byte) error {
	var t market.ServiceType
	if err := decodeJSON(body, &t); err != nil {
		return err
	}
	out, err := s.cfg.Catalog.CreateServiceType(c.Request().Context(), s.callerOf(c), &t)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusCreated, out)
}

func (s *Server) listServiceTypes(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	var f market.ServiceTypeFilter
	if f.IDs, err = q.list("ids[]", "ids", "id"); err != nil {
		return err
	}
	f.Provider = q.str("provider")
	f.Category = q.str("category")
	f.CategoryID = q.str("categoryID")
	f.Name = q.str("name")
	if f.MinPrice, err = q.decimal("minPrice"); err != nil {
		return err
	}
	if f.MaxPrice, err = q.decimal("maxPrice"); err != nil {
		return err
	}
	if f.Page, err = q.page(); err != nil {
		return err
	}
	caller := s.callerOf(c)
	return s.cachedList(c, func() (any, error) {
		list, total, err := s.cfg.Catalog.ServiceTypes(c.Request().Context(), caller, f)
		return listAnswer[market.ServiceType]{list, pagination(total, f.Page)}, err
	})
}

func (s *Server) getServiceType(c echo.Context) error {
	t, err := s.cfg.Catalog.ServiceType(c.Request().Context(), s.callerOf(c), pathParam(c, "id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, t)
}

// addTemplate applies a template sent as the body (GET, as the seed
// documents, or POST).
func (s *Server) addTemplate(c echo.Context) error {
	body, err := readBody(c, s.cfg.MaxTemplateBody)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return market.Invalid("body", "the template is required as the request body")
	}
	t, err := templates.Parse(body)
	if err != nil {
		if me := market.AsError(err); me.Kind == market.KindInvalid && me.Field == "" {
			c := *me
			c.Field = "body"
			return &c
		}
		return err
	}
	res, err := s.cfg.Catalog.ApplyTemplate(c.Request().Context(), s.callerOf(c), t)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, res)
}
