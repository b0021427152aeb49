package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/reconcile"
)

// reconcileRoutes mounts the reconciliation API under
// /api/v1/admin/reconcile: running one needs an admin operator token,
// reading past reports any operator token.
func (s *Server) reconcileRoutes() {
	if s.cfg.Reconcile == nil {
		return
	}
	g := s.echo.Group("/api/v1/admin/reconcile")
	g.POST("/vcc", s.reconcileVCC)
	g.GET("/vcc", s.listReconcileVCC)
	g.GET("/vcc/:day", s.getReconcileVCC)
}

// reconcileVCC is POST /admin/reconcile/vcc {"day": "yyyyMMdd", "provider": "..."}
// (both optional: yesterday, China time, and towngas-vcc).
func (s *Server) reconcileVCC(c echo.Context) error {
	caller := s.callerOf(c)
	if !caller.IsAdmin() {
		return market.Denied(caller, "running a reconciliation needs an admin operator token")
	}
	var req reconcile.Request
	if err := s.decodeAdmin(c, &req, true); err != nil {
		return err
	}
	rep, err := s.cfg.Reconcile.VCC(c.Request().Context(), caller, req)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, rep)
}

// listReconcileVCC is GET /admin/reconcile/vcc?provider=&from=&to=&ok=&current=&pageSize=.
func (s *Server) listReconcileVCC(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	f := reconcile.Filter{Source: reconcile.SourceVCC, Provider: q.str("provider"), From: q.str("from"), To: q.str("to")}
	if f.Page, err = q.page(); err != nil {
		return err
	}
	if v := q.str("ok"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return market.Invalid("ok", "must be true or false (got %q)", v)
		}
		f.OK = &b
	}
	page, err := s.cfg.Reconcile.Reports(c.Request().Context(), s.callerOf(c), f)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, page)
}

// getReconcileVCC is GET /admin/reconcile/vcc/:day?provider=.
func (s *Server) getReconcileVCC(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	rep, err := s.cfg.Reconcile.Report(c.Request().Context(), s.callerOf(c), reconcile.SourceVCC, q.str("provider"), c.Param("day"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, rep)
}
