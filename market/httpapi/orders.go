package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// Header names the V Cloud client sends.
const (
	headerAddress   = "address"
	headerPublicKey = "public-key"
)

func (s *Server) orderRoutes() {
	if s.cfg.Orders == nil {
		return
	}
	g := s.echo.Group("/api/v1")
	g.POST("/order/add", s.createOrder)
	g.GET("/order", s.listOrders)
	g.GET("/order/id/:id", s.getOrder)
	g.GET("/order/id/:id/payments", s.orderPayments)
	g.GET("/order/distinct", s.distinctOrders)
	g.POST("/order/mock", s.mockPayment)
	g.POST("/order/payment", s.confirmPayment)
	g.POST("/order/userRefund/:id", s.userRefund)
	g.GET("/userService/:id", s.userService)
}

// renderOrder writes one order in the view its caller is entitled to.
func renderOrder(c echo.Context, status int, o *market.Order, caller market.Caller) error {
	return writeJSON(c, status, o.Render(o.ViewFor(caller)))
}

func (s *Server) createOrder(c echo.Context) error {
	caller := s.callerOf(c)
	if caller.Address == "" {
		return market.Errorf(market.KindUnauthorized, "creating an order needs a wallet-signed request (headers address, public-key, signature, x-sdk-time)")
	}
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	var req market.OrderRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	o, err := s.cfg.Orders.Create(c.Request().Context(), caller, c.Request().Header.Get(headerPublicKey), req)
	if err != nil {
		return err
	}
	return renderOrder(c, http.StatusOK, o, caller)
}

// orderFilter reads the order list filters of the seed and the client.
func orderFilter(q query) (market.OrderFilter, error) {
	var f market.OrderFilter
	var err error
	if f.IDs, err = q.list("id", "ids[]", "ids"); err != nil {
		return f, err
	}
	f.ServiceID, f.Service = q.str("serviceID"), q.str("service")
	f.Address, f.Recipient = q.str("address"), q.str("recipient")
	statuses, err := q.list("statuses[]", "statuses")
	if err != nil {
		return f, err
	}
	for _, st := range statuses {
		if !market.ValidOrderStatus(st) {
			return f, market.Invalid("statuses[]", "%q is not an order status", st)
		}
		f.Statuses = append(f.Statuses, market.OrderStatus(st))
	}
	sstatuses, err := q.list("serviceStatuses[]", "serviceStatuses")
	if err != nil {
		return f, err
	}
	for _, st := range sstatuses {
		if !market.ValidServiceStatus(st) {
			return f, market.Invalid("serviceStatuses[]", "%q is not a service status", st)
		}
		f.ServiceStatuses = append(f.ServiceStatuses, market.ServiceStatus(st))
	}
	if v := q.str("serviceActivated"); v != "" {
		b, err := parseBool(v)
		if err != nil {
			return f, market.Invalid("serviceActivated", "%v", err)
		}
		f.ServiceActivated = &b
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{
		{"startFrom", &f.CreatedFrom}, {"endAt", &f.CreatedTo},
		{"userServiceStartFrom", &f.ServiceFrom}, {"userServiceEndAt", &f.ServiceTo},
	} {
		if v := q.str(p.name); v != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || n < 0 {
				return f, market.Invalid(p.name, "must be a unix time in seconds (got %q)", v)
			}
			*p.dst = n
		}
	}
	f.Page, err = q.page()
	return f, err
}

// parseBool accepts the spellings clients send: True/true/1 and
// False/false/0.
func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (True, true, 1, False, false, 0)", v)
}

// orderParty is whose orders a list shows: the signed address, else the
// address header (the V Cloud client does not sign lists); operators
// without either see all orders.
func (s *Server) orderParty(c echo.Context) (string, error) {
	caller := s.callerOf(c)
	if caller.Address != "" {
		return caller.Address, nil
	}
	if a := strings.TrimSpace(c.Request().Header.Get(headerAddress)); a != "" {
		return a, nil
	}
	if caller.IsOperator() {
		return "", nil
	}
	return "", market.Invalid("address", "the address header is required to list orders")
}

func (s *Server) listOrders(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	f, err := orderFilter(q)
	if err != nil {
		return err
	}
	if f.Party, err = s.orderParty(c); err != nil {
		return err
	}
	list, total, err := s.cfg.Orders.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	caller := s.callerOf(c)
	out := make([]market.OrderJSON, len(list))
	for i := range list {
		out[i] = list[i].Render(list[i].ViewFor(caller))
	}
	return writeJSON(c, http.StatusOK, listAnswer[market.OrderJSON]{out, pagination(total, f.Page)})
}

func (s *Server) getOrder(c echo.Context) error {
	caller := s.callerOf(c)
	o, err := s.cfg.Orders.Order(c.Request().Context(), caller, c.Param("id"))
	if err != nil {
		return err
	}
	return renderOrder(c, http.StatusOK, o, caller)
}

func (s *Server) orderPayments(c echo.Context) error {
	list, err := s.cfg.Orders.Payments(c.Request().Context(), s.callerOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, list)
}

func (s *Server) distinctOrders(c echo.Context) error {
	q, err := queryOf(c)
	if err != nil {
		return err
	}
	field := q.str("distinctField")
	if field == "" {
		return market.Invalid("distinctField", "is required")
	}
	f, err := orderFilter(q)
	if err != nil {
		return err
	}
	if f.Party, err = s.orderParty(c); err != nil {
		return err
	}
	vals, err := s.cfg.Orders.Distinct(c.Request().Context(), field, f)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, vals)
}

// mockPaymentRequest is what the V Cloud client posts to /order/mock.
type mockPaymentRequest struct {
	OrderID      string `json:"orderId"`
	ProviderAddr string `json:"providerAddr"`
	PubKey       string `json:"pubKey"`
	// Amt is the amount in 1e-8 units (the client sends amount × 10^8).
	Amt market.Decimal `json:"amt"`
}

func (s *Server) mockPayment(c echo.Context) error {
	if !s.cfg.MockPayments {
		return market.Errorf(market.KindNotFound, "mock payments are disabled on this server (serve --mock-payments)")
	}
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	var req mockPaymentRequest
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	// amt counts 1e-8 units: it must be a whole number of them.
	if req.Amt%market.DecimalScale != 0 {
		return market.Invalid("amt", "must be a whole number of 1e-8 units")
	}
	res, err := s.cfg.Orders.Pay(c.Request().Context(), market.PaymentRequest{
		OrderID: req.OrderID, Amount: req.Amt / market.DecimalScale, Source: market.SourceMock,
		Reference: "mock-" + uuid.NewString(), Recipient: req.ProviderAddr, PublicKey: req.PubKey,
	})
	if err != nil {
		return err
	}
	s.log.Warn("MOCK PAYMENT accepted", "order", req.OrderID, "amount", (req.Amt / market.DecimalScale).String())
	return writeJSON(c, http.StatusOK, map[string]any{
		"content": fmt.Sprintf("mock payment of %s recorded for order %s", req.Amt/market.DecimalScale, req.OrderID),
		"order":   res.Order.Render(market.ViewPublic),
	})
}

// paymentConfirmation is the operator's payment confirmation body.
type paymentConfirmation struct {
	OrderID   string         `json:"orderId"`
	Amount    market.Decimal `json:"amount"`
	Reference string         `json:"reference"`
	Source    string         `json:"source"`
}

// confirmPayment records a payment reported by an outside payment system.
// It is idempotent on (source, reference).
func (s *Server) confirmPayment(c echo.Context) error {
	caller := s.callerOf(c)
	if !caller.IsAdmin() {
		return market.Denied(caller, "confirming payments needs an admin operator token")
	}
	body, err := readBody(c, s.cfg.MaxBody)
	if err != nil {
		return err
	}
	var req paymentConfirmation
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reference) == "" {
		return market.Invalid("reference", "is required")
	}
	if req.Source == "" {
		req.Source = market.SourceOperator
	}
	if len(req.Source) > 64 || len(req.Reference) > 256 {
		return market.Invalid("reference", "source or reference too long")
	}
	res, err := s.cfg.Orders.Pay(c.Request().Context(), market.PaymentRequest{
		OrderID: req.OrderID, Amount: req.Amount, Source: req.Source, Reference: req.Reference,
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, map[string]any{
		"order": res.Order.Render(market.ViewProvider), "duplicate": res.Duplicate, "overpaid": res.Overpaid,
	})
}

// userRefund queues a refund and waits a little for the worker to carry it
// out, answering the order as it then is.
func (s *Server) userRefund(c echo.Context) error {
	caller := s.callerOf(c)
	ctx := c.Request().Context()
	o, err := s.cfg.Orders.RequestRefund(ctx, caller, c.Param("id"))
	if err != nil {
		return err
	}
	o = s.waitOrder(ctx, caller, o, func(o *market.Order) bool { return o.Status == market.OrderRefund })
	return renderOrder(c, http.StatusOK, o, caller)
}

// waitOrder polls an order until done reports true or the refund wait
// passes, and returns its latest state.
func (s *Server) waitOrder(ctx context.Context, caller market.Caller, o *market.Order, done func(*market.Order) bool) *market.Order {
	deadline := time.Now().Add(s.cfg.RefundWait)
	for !done(o) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return o
		case <-time.After(50 * time.Millisecond):
		}
		cur, err := s.cfg.Orders.Order(ctx, caller, o.ID)
		if err != nil {
			return o
		}
		o = cur
	}
	return o
}

// userServiceAnswer is GET /userService/:id: the order as its owner sees
// it (magic holds the sealed secret) plus the data the start script
// returned.
type userServiceAnswer struct {
	market.OrderJSON
	UserService map[string]any `json:"userService"`
}

func (s *Server) userService(c echo.Context) error {
	caller := s.callerOf(c)
	o, err := s.cfg.Orders.UserService(c.Request().Context(), caller, c.Param("id"))
	if err != nil {
		return err
	}
	data := o.UserService
	if data == nil {
		data = map[string]any{}
	}
	return writeJSON(c, http.StatusOK, userServiceAnswer{o.Render(market.ViewOwner), data})
}
