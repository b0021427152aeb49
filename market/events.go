package market

import (
	"context"
	"encoding/json"
)

// Event names. "After" events are told once something happened; "before"
// checks run first and may reject the action.
const (
	EventOrderCreated       = "order.created"
	EventOrderPaid          = "order.paid"
	EventOrderFiled         = "order.filed"
	EventOrderCompleted     = "order.completed"
	EventOrderRefunded      = "order.refunded"
	EventServiceStartFailed = "service.start_failed"
	EventTemplateUploaded   = "template.uploaded"

	BeforeOrderCreate    = "before.order.create"
	BeforeOrderRefund    = "before.order.refund"
	BeforeTemplateUpload = "before.template.upload"
)

// Hooks lets operators extend what happens around events. Implementations
// run operator Lua in the sandbox.
type Hooks interface {
	// Before runs the checks bound to a "before" event. A rejection is an
	// *Error (KindForbidden) carrying the hook's message; a hook that fails
	// to run does not block the action (its error is recorded).
	Before(ctx context.Context, event string, payload map[string]any) error
	// After tells the hooks bound to an event. It never blocks for long nor
	// fails the caller: hooks run in the background with their own deadline
	// and their errors are recorded.
	After(ctx context.Context, event string, payload map[string]any)
}

// NoHooks is the Hooks of a marketplace without operator hooks.
type NoHooks struct{}

// Before implements Hooks.
func (NoHooks) Before(context.Context, string, map[string]any) error { return nil }

// After implements Hooks.
func (NoHooks) After(context.Context, string, map[string]any) {}

// OrderPayload is the event payload of an order: {"order": <order JSON as
// its provider sees it>}.
func OrderPayload(o *Order) map[string]any {
	m, _ := jsonMap(o.Render(ViewProvider))
	return map[string]any{"order": m}
}

// jsonMap converts a JSON-tagged value into a map of its JSON form.
func jsonMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
