package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// callerKey is the echo context key of the request's market.Caller.
const callerKey = "vmarket.caller"

// recoverPanics turns a handler panic into a 500 answer and a log line
// instead of a dropped connection.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = market.Internal(fmt.Errorf("panic: %v", p), "internal error")
			}
		}()
		return next(c)
	}
}

// logRequests assigns a request id and logs one line per request. It
// never logs headers or bodies (they carry signatures and secrets).
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		level := slog.LevelInfo
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		s.log.Log(c.Request().Context(), level, "request",
			"method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "bytes", c.Response().Size,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "request_id", id)
		return nil
	}
}

// authenticate reads an operator bearer token if one is sent. A bad token
// is a 401, not a silent downgrade to anonymous. Only /api/ routes are
// vmarket's: other mounts (the demo backend) carry their own credentials.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, "/api/") {
			return next(c)
		}
		var caller market.Caller
		if h := c.Request().Header.Get(echo.HeaderAuthorization); h != "" {
			scheme, token, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
				return market.Errorf(market.KindUnauthorized, "Authorization header must be \"Bearer <operator token>\"")
			}
			if s.cfg.Operators == nil {
				return market.Errorf(market.KindUnauthorized, "operator tokens are not enabled")
			}
			op, err := s.cfg.Operators.Verify(strings.TrimSpace(token), s.cfg.Now())
			if err != nil {
				return err
			}
			caller = op
		}
		c.Set(callerKey, caller)
		return next(c)
	}
}

// callerOf returns the request's caller: the operator from authenticate
// and the wallet address verified by the signature middleware.
func (s *Server) callerOf(c echo.Context) market.Caller {
	caller, _ := c.Get(callerKey).(market.Caller)
	if s.cfg.SignedAddress != nil {
		if addr, ok := s.cfg.SignedAddress(c); ok {
			caller.Address = addr
		}
	}
	return caller
}

// anonymous reports whether the request carries no credentials at all (its
// answer may then be shared through the response cache).
func (s *Server) anonymous(c echo.Context) bool {
	caller := s.callerOf(c)
	return !caller.IsOperator() && caller.Address == ""
}
