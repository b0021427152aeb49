package market

import (
	"errors"
	"fmt"
)

// Kind classifies an error for callers: it decides the HTTP status, the
// CLI exit message and whether a job is retried. The string value is the
// "code" field of the JSON error envelope.
type Kind string

// Error kinds. Transports map each kind to one status code in one place.
const (
	KindInvalid      Kind = "VALIDATION_ERROR"      // bad input: 400
	KindUnauthorized Kind = "UNAUTHORIZED"          // no or bad credentials: 401
	KindForbidden    Kind = "FORBIDDEN"             // credentials lack the right: 403
	KindNotFound     Kind = "NOT_FOUND"             // unknown id: 404
	KindConflict     Kind = "CONFLICT"              // unique name taken, wrong state: 409
	KindTooLarge     Kind = "PAYLOAD_TOO_LARGE"     // body over the limit: 413
	KindUpstream     Kind = "BAD_GATEWAY"           // a provider or outside system failed: 502
	KindBusy         Kind = "BUSY"                  // no capacity now, retry later: 503
	KindInternal     Kind = "INTERNAL_SERVER_ERROR" // a bug or a broken dependency: 500
)

// Error is the domain error carried from the core to the transports. It
// names the field at fault when there is one, and may wrap a cause.
type Error struct {
	Kind    Kind
	Message string
	// Field is the request field at fault (JSON path style, e.g.
	// "durationToPrice[0].price"), empty when the error is not about one.
	Field string
	// Details carries extra structured facts (script line, expected amount…).
	Details map[string]any
	// Err is the wrapped cause, if any; never shown to API callers for
	// KindInternal.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil && e.Kind == KindInternal {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the wrapped cause.
func (e *Error) Unwrap() error { return e.Err }

// WithDetail returns e with one more detail set; it mutates and returns e
// so it can be chained at construction.
func (e *Error) WithDetail(key string, value any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = value
	return e
}

// Errorf builds an Error of the given kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Invalid builds a validation error about one field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound builds a not-found error for a kind of thing and its id.
func NotFound(what, id string) *Error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf("%s %q not found", what, id)}
}

// Internal wraps an unexpected failure (storage, I/O) as KindInternal.
func Internal(err error, format string, args ...any) *Error {
	return &Error{Kind: KindInternal, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf reports the kind of err: the Kind of the first *Error in its chain,
// KindInternal for any other non-nil error, and "" for nil.
func KindOf(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// AsError returns the first *Error in err's chain, or a KindInternal Error
// wrapping err. It returns nil for nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err, "internal error")
}
