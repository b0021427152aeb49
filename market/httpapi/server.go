// Package httpapi is vmarket's HTTP API on echo: the V Cloud Platform
// routes, authentication of operators (JWT) and wallets (request
// signatures), and the one place where market errors become HTTP answers.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
	"github.com/vmarket/vmarket/market/operator"
	"github.com/vmarket/vmarket/market/reconcile"
)

// Default body limits.
const (
	DefaultMaxBody         = 1 << 20
	DefaultMaxTemplateBody = 8 << 20
)

// Config wires the API to the domain.
type Config struct {
	Catalog *market.Catalog
	// Orders serves the order endpoints; nil leaves them out.
	Orders *market.Orders
	// MockPayments enables POST /api/v1/order/mock.
	MockPayments bool
	// ServiceTokens signs the tokens sent to providers' secret APIs; nil
	// disables secret API calls.
	ServiceTokens *opauth.ServiceSigner
	// DenyPrivateBackends refuses user API calls to loopback and private
	// addresses (link-local ones are always refused).
	DenyPrivateBackends bool
	// RefundWait is how long a refund request waits for the refund to be
	// carried out before answering (default 10 s).
	RefundWait time.Duration
	// Operators verifies operator bearer tokens: an *opauth.Keyring, or
	// the operator service (which also refuses revoked users' tokens).
	Operators OperatorVerifier
	// Operator serves the admin API under /api/v1/admin; nil leaves it out.
	Operator *operator.Service
	// Reconcile serves /api/v1/admin/reconcile; nil leaves it out.
	Reconcile *reconcile.Service
	// Metrics, when set, observes every request; MetricsHandler, when
	// set, is served at GET /metrics.
	Metrics        RequestObserver
	MetricsHandler http.Handler
	// Signatures authenticates wallet-signed requests; nil disables them.
	Signatures echo.MiddlewareFunc
	// SignedAddress returns the address a signed request was verified for.
	SignedAddress func(echo.Context) (string, bool)
	Logger        *slog.Logger
	// MaxBody bounds JSON request bodies (default DefaultMaxBody).
	MaxBody int64
	// MaxTemplateBody bounds template uploads (default DefaultMaxTemplateBody).
	MaxTemplateBody int64
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server is the HTTP API.
type Server struct {
	cfg   Config
	echo  *echo.Echo
	log   *slog.Logger
	cache *responseCache
	// forward is the HTTP client of user API calls.
	forward *http.Client
}

// New builds the API server and its routes.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxTemplateBody <= 0 {
		cfg.MaxTemplateBody = DefaultMaxTemplateBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefundWait <= 0 {
		cfg.RefundWait = 10 * time.Second
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	s := &Server{cfg: cfg, echo: e, log: cfg.Logger, cache: newResponseCache(512, 4<<20, 64<<20), forward: newForwardClient(!cfg.DenyPrivateBackends)}
	e.HTTPErrorHandler = s.handleError
	e.Use(s.observeRequests, s.logRequests, s.recoverPanics, s.authenticate)
	if cfg.Signatures != nil {
		sig := cfg.Signatures
		e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
			verified := sig(next)
			return func(c echo.Context) error {
				if !strings.HasPrefix(c.Request().URL.Path, "/api/") {
					return next(c)
				}
				return verified(c)
			}
		})
	}
	s.routes()
	return s
}

// Handler returns the server as an http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the echo instance so other parts (orders, admin) can add
// routes with the same error handling and middleware.
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) routes() {
	g := s.echo.Group("/api/v1")
	g.POST("/service/provider", s.createProvider)
	g.GET("/service/provider", s.listProviders)
	g.GET("/service/provider/:id", s.getProvider)
	g.POST("/service/category", s.createCategoryOrType)
	g.GET("/service/category", s.listCategories)
	g.GET("/service/category/:id", s.getCategory)
	g.POST("/service/type", s.createServiceType)
	g.GET("/service/type", s.listServiceTypes)
	g.GET("/service/type/:id", s.getServiceType)
	g.GET("/template/add", s.addTemplate)
	g.POST("/template/add", s.addTemplate)
	s.orderRoutes()
	s.userAPIRoutes()
	s.adminRoutes()
	s.reconcileRoutes()
	s.metricsRoutes()
	s.echo.GET("/healthz", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, []byte(`{"status":"ok"}`))
	})
}

// Serve serves on ln until ctx ends, then shuts down gracefully, waiting
// up to grace for requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
