package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/operator"
)

// adminRoutes mounts the operator's admin API: modules, hooks, settings,
// users, signing keys, runs, dry runs and status. Every route needs an
// operator token; writes need the admin role.
func (s *Server) adminRoutes() {
	if s.cfg.Operator == nil {
		return
	}
	g := s.echo.Group("/api/v1/admin")
	g.GET("/status", s.adminStatus)
	g.GET("/modules", s.listModules)
	g.POST("/modules/activate", s.activateModules)
	g.GET("/modules/:name", s.moduleVersions)
	g.POST("/modules/:name", s.uploadModule)
	g.DELETE("/modules/:name", s.deleteModule)
	g.GET("/modules/:name/versions/:version", s.moduleVersion)
	g.DELETE("/modules/:name/versions/:version", s.deleteModuleVersion)
	g.POST("/modules/:name/activate", s.activateModule)
	g.POST("/modules/:name/rollback", s.rollbackModule)
	g.GET("/hooks", s.listHooks)
	g.POST("/hooks", s.bindHook)
	g.DELETE("/hooks/:id", s.unbindHook)
	g.GET("/settings", s.listSettings)
	g.GET("/settings/:key", s.getSetting)
	g.PUT("/settings/:key", s.putSetting)
	g.DELETE("/settings/:key", s.deleteSetting)
	g.GET("/users", s.listUsers)
	g.POST("/users", s.createUser)
	g.POST("/users/:name/token", s.issueToken)
	g.DELETE("/users/:name", s.revokeUser)
	g.GET("/keys", s.listKeys)
	g.POST("/keys/rotate", s.rotateKey)
	g.DELETE("/keys/:id", s.retireKey)
	g.GET("/runs", s.listRuns)
	g.GET("/runs/:id", s.getRun)
	g.POST("/dryrun", s.dryRun)
}

// adminList is the envelope of admin lists without pagination.
type adminList[T any] struct {
	List []T `json:"list"`
}

// decodeAdmin reads and decodes a JSON body; an empty body is allowed
// when optional.
func (s *Server) decodeAdmin(c echo.Context, dst any, optional bool) error {
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	if optional && len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	return decodeJSON(body, dst)
}

// intParam reads a positive integer path parameter.
func intParam(c echo.Context, name string) (int64, error) {
	n, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || n < 1 {
		return 0, market.Invalid(name, "must be a whole number from 1 (got %q)", c.Param(name))
	}
	return n, nil
}

// parseTTL reads a token lifetime ("720h"); empty is the default.
func parseTTL(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, market.Invalid("ttl", "must be a duration like 720h (got %q)", s)
	}
	return d, nil
}

// adminStatusAnswer is GET /admin/status.
type adminStatusAnswer struct {
	// Generation counts changes of modules and hooks since start.
	Generation     uint64               `json:"generation"`
	HooksDir       *operator.DirStatus  `json:"hooksDir"`
	RecordsDropped uint64               `json:"recordsDropped"`
	Events         []operator.EventInfo `json:"events"`
	Modules        []operator.Module    `json:"modules"`
	Hooks          []operator.Hook      `json:"hooks"`
}

func (s *Server) adminStatus(c echo.Context) error {
	ctx, caller := c.Request().Context(), s.callerOf(c)
	dir, err := s.cfg.Operator.DirState(ctx, caller)
	if err != nil {
		return err
	}
	mods, err := s.cfg.Operator.Modules(ctx, caller)
	if err != nil {
		return err
	}
	hooks, err := s.cfg.Operator.ListHooks(ctx, caller)
	if err != nil {
		return err
	}
	if mods == nil {
		mods = []operator.Module{}
	}
	return writeJSON(c, http.StatusOK, adminStatusAnswer{Generation: s.cfg.Operator.Generation(), HooksDir: dir,
		RecordsDropped: s.cfg.Operator.RecordsDropped(), Events: hooks.Events, Modules: mods, Hooks: hooks.Hooks})
}

func (s *Server) listModules(c echo.Context) error {
	mods, err := s.cfg.Operator.Modules(c.Request().Context(), s.callerOf(c))
	if err != nil {
		return err
	}
	if mods == nil {
		mods = []operator.Module{}
	}
	return writeJSON(c, http.StatusOK, adminList[operator.Module]{List: mods})
}

// moduleAnswer is GET /admin/modules/:name.
type moduleAnswer struct {
	Name        string                   `json:"name"`
	Versions    []operator.ModuleVersion `json:"versions"`
	Activations []operator.Activation    `json:"activations"`
}

func (s *Server) moduleVersions(c echo.Context) error {
	vs, hist, err := s.cfg.Operator.ModuleVersions(c.Request().Context(), s.callerOf(c), c.Param("name"))
	if err != nil {
		return err
	}
	if hist == nil {
		hist = []operator.Activation{}
	}
	return writeJSON(c, http.StatusOK, moduleAnswer{Name: c.Param("name"), Versions: vs, Activations: hist})
}

// versionParam reads :version: a number, or "active" (0).
func versionParam(c echo.Context) (int, error) {
	if c.Param("version") == "active" {
		return 0, nil
	}
	n, err := intParam(c, "version")
	return int(n), err
}

func (s *Server) moduleVersion(c echo.Context) error {
	v, err := versionParam(c)
	if err != nil {
		return err
	}
	m, err := s.cfg.Operator.ModuleVersion(c.Request().Context(), s.callerOf(c), c.Param("name"), v)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, m)
}

// uploadRequest is POST /admin/modules/:name.
type uploadRequest struct {
	// Source is the module's Lua text (plain, not url-encoded).
	Source   string `json:"source"`
	Activate bool   `json:"activate"`
}

func (s *Server) uploadModule(c echo.Context) error {
	caller := s.callerOf(c)
	if !caller.IsAdmin() {
		return market.Denied(caller, "uploading a module needs an admin operator token")
	}
	var req uploadRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	m, err := s.cfg.Operator.UploadModule(c.Request().Context(), caller, c.Param("name"), req.Source, req.Activate)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, m)
}

// activateRequest is POST /admin/modules/activate ({"versions": {...}})
// and POST /admin/modules/:name/activate ({"version": n}).
type activateRequest struct {
	Versions map[string]int `json:"versions"`
	Version  int            `json:"version"`
}

// activateAnswer names the versions now active.
type activateAnswer struct {
	Versions   map[string]int `json:"versions"`
	Generation uint64         `json:"generation"`
}

func (s *Server) activateModules(c echo.Context) error {
	var req activateRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	if err := s.cfg.Operator.Activate(c.Request().Context(), s.callerOf(c), req.Versions); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, activateAnswer{Versions: req.Versions, Generation: s.cfg.Operator.Generation()})
}

func (s *Server) activateModule(c echo.Context) error {
	var req activateRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	if req.Version < 1 {
		return market.Invalid("version", "is required (a version number from 1)")
	}
	versions := map[string]int{c.Param("name"): req.Version}
	if err := s.cfg.Operator.Activate(c.Request().Context(), s.callerOf(c), versions); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, activateAnswer{Versions: versions, Generation: s.cfg.Operator.Generation()})
}

func (s *Server) rollbackModule(c echo.Context) error {
	v, err := s.cfg.Operator.Rollback(c.Request().Context(), s.callerOf(c), c.Param("name"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, activateAnswer{Versions: map[string]int{c.Param("name"): v}, Generation: s.cfg.Operator.Generation()})
}

// deletedAnswer confirms a deletion (no top-level "message": the V Cloud
// client reads it as an error).
type deletedAnswer struct {
	Deleted bool `json:"deleted"`
}

func (s *Server) deleteModule(c echo.Context) error {
	if err := s.cfg.Operator.DeleteModule(c.Request().Context(), s.callerOf(c), c.Param("name"), 0); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

func (s *Server) deleteModuleVersion(c echo.Context) error {
	v, err := intParam(c, "version")
	if err != nil {
		return err
	}
	if err := s.cfg.Operator.DeleteModule(c.Request().Context(), s.callerOf(c), c.Param("name"), int(v)); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

func (s *Server) listHooks(c echo.Context) error {
	list, err := s.cfg.Operator.ListHooks(c.Request().Context(), s.callerOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, list)
}

// bindRequest is POST /admin/hooks.
type bindRequest struct {
	Event    string `json:"event"`
	Module   string `json:"module"`
	Function string `json:"function"`
}

func (s *Server) bindHook(c echo.Context) error {
	var req bindRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	h, err := s.cfg.Operator.BindHook(c.Request().Context(), s.callerOf(c), operator.Hook{Event: req.Event, Module: req.Module, Function: req.Function})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, h)
}

func (s *Server) unbindHook(c echo.Context) error {
	id, err := intParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.cfg.Operator.UnbindHook(c.Request().Context(), s.callerOf(c), id); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

func (s *Server) listSettings(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	operatorOnly := q.str("scope") == "operator"
	list, err := s.cfg.Operator.ListSettings(c.Request().Context(), s.callerOf(c), q.str("provider"), operatorOnly)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, adminList[operator.SettingView]{List: list})
}

func (s *Server) getSetting(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	v, err := s.cfg.Operator.GetSetting(c.Request().Context(), s.callerOf(c), q.str("provider"), c.Param("key"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, v)
}

// settingRequest is PUT /admin/settings/:key.
type settingRequest struct {
	Value  *string `json:"value"`
	Secret bool    `json:"secret"`
}

func (s *Server) putSetting(c echo.Context) error {
	caller := s.callerOf(c)
	if !caller.IsAdmin() {
		return market.Denied(caller, "changing settings needs an admin operator token")
	}
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	var req settingRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	if req.Value == nil {
		return market.Invalid("value", "is required")
	}
	v, err := s.cfg.Operator.PutSetting(c.Request().Context(), caller, q.str("provider"), c.Param("key"), *req.Value, req.Secret)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, v)
}

func (s *Server) deleteSetting(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	if err := s.cfg.Operator.DeleteSetting(c.Request().Context(), s.callerOf(c), q.str("provider"), c.Param("key")); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

func (s *Server) listUsers(c echo.Context) error {
	users, err := s.cfg.Operator.ListUsers(c.Request().Context(), s.callerOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, adminList[operator.User]{List: users})
}

// userRequest is POST /admin/users and POST /admin/users/:name/token.
type userRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// TTL is the token's lifetime, e.g. "720h" (default 30 days).
	TTL string `json:"ttl"`
}

func (s *Server) createUser(c echo.Context) error {
	var req userRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return err
	}
	u, err := s.cfg.Operator.CreateUser(c.Request().Context(), s.callerOf(c), req.Name, req.Role, ttl)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, u)
}

func (s *Server) issueToken(c echo.Context) error {
	var req userRequest
	if err := s.decodeAdmin(c, &req, true); err != nil {
		return err
	}
	ttl, err := parseTTL(req.TTL)
	if err != nil {
		return err
	}
	u, err := s.cfg.Operator.IssueToken(c.Request().Context(), s.callerOf(c), c.Param("name"), ttl)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, u)
}

func (s *Server) revokeUser(c echo.Context) error {
	if err := s.cfg.Operator.RevokeUser(c.Request().Context(), s.callerOf(c), c.Param("name")); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

func (s *Server) listKeys(c echo.Context) error {
	keys, err := s.cfg.Operator.Keys(c.Request().Context(), s.callerOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, adminList[operator.KeyInfo]{List: keys})
}

func (s *Server) rotateKey(c echo.Context) error {
	k, err := s.cfg.Operator.RotateKey(c.Request().Context(), s.callerOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, k)
}

func (s *Server) retireKey(c echo.Context) error {
	if err := s.cfg.Operator.RetireKey(c.Request().Context(), s.callerOf(c), c.Param("id")); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deletedAnswer{Deleted: true})
}

// timeParam reads a time bound: RFC 3339 or unix seconds.
func timeParam(q query, name string) (time.Time, error) {
	v := q.str(name)
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, market.Invalid(name, "must be RFC 3339 or unix seconds (got %q)", v)
	}
	return t, nil
}

func (s *Server) listRuns(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	f := operator.RunFilter{Kind: q.str("kind"), Name: q.str("name"), Event: q.str("event"),
		OrderID: q.str("orderId", "order"), Provider: q.str("provider")}
	if f.Page, err = q.page(); err != nil {
		return err
	}
	if f.From, err = timeParam(q, "from"); err != nil {
		return err
	}
	if f.To, err = timeParam(q, "to"); err != nil {
		return err
	}
	if v := q.str("ok"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return market.Invalid("ok", "must be true or false (got %q)", v)
		}
		f.OK = &b
	}
	page, err := s.cfg.Operator.Runs(c.Request().Context(), s.callerOf(c), f)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, page)
}

func (s *Server) getRun(c echo.Context) error {
	id, err := intParam(c, "id")
	if err != nil {
		return err
	}
	r, err := s.cfg.Operator.GetRun(c.Request().Context(), s.callerOf(c), id)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, r)
}

func (s *Server) dryRun(c echo.Context) error {
	caller := s.callerOf(c)
	if !caller.IsAdmin() {
		return market.Denied(caller, "a dry run needs an admin operator token")
	}
	var req operator.DryRunRequest
	if err := s.decodeAdmin(c, &req, false); err != nil {
		return err
	}
	res, err := s.cfg.Operator.DryRun(c.Request().Context(), caller, req)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, res)
}
