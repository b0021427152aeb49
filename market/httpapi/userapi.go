package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/vmarket/vmarket/market"
)

// Limits of user API forwarding.
const (
	userAPITimeout  = 15 * time.Second
	userAPIMaxBody  = 4 << 20
	serviceTokenTTL = 2 * time.Minute
)

func (s *Server) userAPIRoutes() {
	if s.cfg.Orders == nil {
		return
	}
	g := s.echo.Group("/api/v1/service/userAPI")
	g.GET("/get/:kind/:func/:id", s.userAPI)
	g.POST("/post/:kind/:func/:id", s.userAPI)
	g.GET("/key", s.serviceKey)
}

// serviceKey publishes the key providers verify service tokens with.
func (s *Server) serviceKey(c echo.Context) error {
	if s.cfg.ServiceTokens == nil {
		return market.Errorf(market.KindNotFound, "service tokens are not enabled")
	}
	return writeJSON(c, http.StatusOK, map[string]string{"alg": "EdDSA", "crv": "Ed25519", "publicKey": s.cfg.ServiceTokens.PublicKey()})
}

// userAPI forwards a user's call to the provider: normal functions without
// the user's identity, secret ones with a short-lived token naming the
// user, order and service. The provider's answer is relayed; its errors
// become 502 with its message.
func (s *Server) userAPI(c echo.Context) error {
	caller := s.callerOf(c)
	kind := c.Param("kind")
	target, err := s.cfg.Orders.UserAPI(c.Request().Context(), caller, kind, c.Param("func"), c.Param("id"))
	if err != nil {
		return err
	}
	u, err := url.Parse(target.BaseURL + target.Path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return market.Errorf(market.KindUpstream, "service type %q has a bad API address", target.Type.Name)
	}
	q := u.Query()
	for k, vs := range c.QueryParams() {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	q.Set("userServiceId", target.Order.ID)
	u.RawQuery = q.Encode()
	var body []byte
	if c.Request().Method == http.MethodPost {
		if body, err = readBody(c, s.cfg.MaxBody); err != nil {
			return err
		}
	}
	ctx := c.Request().Context()
	req, err := http.NewRequestWithContext(ctx, c.Request().Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return market.Errorf(market.KindUpstream, "build provider request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if len(body) > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	if kind == "secret" {
		if s.cfg.ServiceTokens == nil {
			return market.Errorf(market.KindUpstream, "secret APIs are not enabled on this server")
		}
		tok, err := s.cfg.ServiceTokens.Issue(caller.Address, target.Order.Provider, target.Order.ID, target.Type.ID, serviceTokenTTL, s.cfg.Now())
		if err != nil {
			return market.Internal(err, "sign service token")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.forward.Do(req)
	if err != nil {
		return &market.Error{Kind: market.KindUpstream, Message: "provider API unreachable: " + upstreamReason(err), Err: err}
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, userAPIMaxBody+1))
	if err != nil {
		return market.Errorf(market.KindUpstream, "reading provider answer: %v", err)
	}
	if len(out) > userAPIMaxBody {
		return market.Errorf(market.KindUpstream, "provider answer is larger than %d bytes", userAPIMaxBody)
	}
	if resp.StatusCode/100 != 2 {
		return market.Errorf(market.KindUpstream, "provider answered %d: %s", resp.StatusCode, providerMessage(out)).
			WithDetail("providerStatus", resp.StatusCode)
	}
	ct := resp.Header.Get("Content-Type")
	if !strings.Contains(ct, "json") {
		// The client decodes JSON: wrap other answers.
		return writeJSON(c, http.StatusOK, map[string]string{"content": string(out)})
	}
	if hasTopLevelMessage(out) {
		// A success body must not carry "message" (the client would read
		// it as an error): nest it.
		return writeJSON(c, http.StatusOK, map[string]json.RawMessage{"content": out})
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, out)
}

// providerMessage extracts a message from a provider's error answer.
func providerMessage(body []byte) string {
	var env struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil {
		if env.Message != "" {
			return env.Message
		}
		if env.Error != "" {
			return env.Error
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func hasTopLevelMessage(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m["message"]
	return ok
}

// upstreamReason shortens transport errors without leaking internals.
func upstreamReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "timed out"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

// newForwardClient is the HTTP client for user API calls: bounded in time,
// never following redirects (the target is the provider's declared host),
// and never dialing link-local, multicast or unspecified addresses (cloud
// metadata endpoints live there). Loopback and private addresses are
// refused too unless allowPrivate: any signed wallet may register a
// provider, and its apiHost must not reach into the operator's network.
func newForwardClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("refusing to dial %q", address)
			}
			ip = ip.Unmap()
			switch {
			case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(), ip.IsMulticast(), ip.IsUnspecified(), ip.IsInterfaceLocalMulticast():
				return fmt.Errorf("refusing to dial %s: link-local, multicast or unspecified address", ip)
			case !allowPrivate && (ip.IsLoopback() || ip.IsPrivate()):
				return fmt.Errorf("refusing to dial %s: private address (serve --allow-private-backends)", ip)
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: userAPITimeout,
	}
	return &http.Client{
		Timeout:   userAPITimeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
