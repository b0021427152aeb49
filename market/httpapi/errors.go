package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// envelope is the JSON error answer (the VCP error envelope; the V Cloud
// client reads "message").
type envelope struct {
	StatusCode int            `json:"statusCode"`
	Code       string         `json:"code"`
	Error      string         `json:"error"`
	Message    string         `json:"message"`
	Details    map[string]any `json:"details"`
}

// statusOf maps an error kind to its HTTP status. This is the only place
// where that mapping lives.
func statusOf(k market.Kind) int {
	switch k {
	case market.KindInvalid:
		return http.StatusBadRequest
	case market.KindUnauthorized:
		return http.StatusUnauthorized
	case market.KindForbidden:
		return http.StatusForbidden
	case market.KindNotFound:
		return http.StatusNotFound
	case market.KindConflict:
		return http.StatusConflict
	case market.KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case market.KindUpstream:
		return http.StatusBadGateway
	case market.KindBusy:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// kindOfStatus maps echo's own HTTP errors (unknown route, wrong method)
// to kinds.
func kindOfStatus(status int) market.Kind {
	switch status {
	case http.StatusBadRequest:
		return market.KindInvalid
	case http.StatusUnauthorized:
		return market.KindUnauthorized
	case http.StatusForbidden:
		return market.KindForbidden
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return market.KindNotFound
	case http.StatusRequestEntityTooLarge:
		return market.KindTooLarge
	case http.StatusServiceUnavailable:
		return market.KindBusy
	default:
		return market.KindInternal
	}
}

// handleError renders any error as the JSON envelope.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	env := s.envelopeFor(err, c)
	b, _ := json.Marshal(env)
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(env.StatusCode)
	} else {
		err = c.JSONBlob(env.StatusCode, b)
	}
	if err != nil {
		s.log.Warn("write error answer", "err", err)
	}
}

func (s *Server) envelopeFor(err error, c echo.Context) envelope {
	var he *echo.HTTPError
	if errors.As(err, &he) && !errors.As(err, new(*market.Error)) {
		status := he.Code
		msg := http.StatusText(status)
		if m, ok := he.Message.(string); ok {
			msg = m
		}
		if status == http.StatusMethodNotAllowed {
			status = http.StatusNotFound
			msg = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
		} else if status == http.StatusNotFound {
			msg = "no such route: " + c.Request().Method + " " + c.Request().URL.Path
		}
		return envelope{StatusCode: status, Code: string(kindOfStatus(status)), Error: http.StatusText(status), Message: msg, Details: map[string]any{}}
	}
	me := market.AsError(err)
	status := statusOf(me.Kind)
	env := envelope{StatusCode: status, Code: string(me.Kind), Error: http.StatusText(status), Message: me.Message, Details: map[string]any{}}
	for k, v := range me.Details {
		env.Details[k] = v
	}
	if me.Field != "" {
		env.Details["field"] = me.Field
		env.Message = me.Field + ": " + me.Message
	}
	if me.Kind == market.KindInternal {
		// Never show internals to callers; log them with the request id.
		s.log.Error("internal error", "method", c.Request().Method, "path", c.Request().URL.Path,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		env.Message = "internal server error"
		env.Details = map[string]any{}
	}
	return env
}
