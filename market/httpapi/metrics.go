package httpapi

import (
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// OperatorVerifier checks an operator bearer token and names the operator.
// Failures are KindUnauthorized errors.
type OperatorVerifier interface {
	Verify(token string, now time.Time) (market.Caller, error)
}

// RequestObserver is told about every request: method, matched route
// pattern ("unmatched" when none), status and duration.
type RequestObserver interface {
	ObserveRequest(method, route string, status int, d time.Duration)
}

// observeRequests reports each request to the metrics, after the error
// handler has written the answer.
func (s *Server) observeRequests(next echo.HandlerFunc) echo.HandlerFunc {
	if s.cfg.Metrics == nil {
		return next
	}
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" || c.Response().Status == 404 && route == "/*" {
			route = "unmatched"
		}
		s.cfg.Metrics.ObserveRequest(c.Request().Method, route, c.Response().Status, time.Since(start))
		return err
	}
}

// metricsRoutes serves the metrics at GET /metrics when configured.
func (s *Server) metricsRoutes() {
	if s.cfg.MetricsHandler != nil {
		s.echo.GET("/metrics", echo.WrapHandler(s.cfg.MetricsHandler))
	}
}
