package market

// Operator roles.
const (
	RoleAdmin   = "admin"   // full access
	RoleSupport = "support" // read-only access to everything
)

// Caller is who makes a request: an operator (by JWT), a wallet (by a
// verified request signature), both, or nobody.
type Caller struct {
	// OperatorRole is RoleAdmin or RoleSupport for operator tokens, else "".
	OperatorRole string
	// OperatorName is the token's subject, for logs.
	OperatorName string
	// Address is the verified wallet address of a signed request, else "".
	Address string
}

// IsOperator reports whether the caller holds any operator token.
func (c Caller) IsOperator() bool { return c.OperatorRole != "" }

// IsAdmin reports whether the caller may change anything.
func (c Caller) IsAdmin() bool { return c.OperatorRole == RoleAdmin }

// CanManage reports whether the caller may change a provider's catalog:
// an admin operator, or the provider's sign address.
func (c Caller) CanManage(p *Provider) bool {
	return c.IsAdmin() || (c.Address != "" && p.SignAddress != "" && c.Address == p.SignAddress)
}

// CanRead reports whether the caller may read a provider's private parts
// (script bodies): any operator or the provider's sign address.
func (c Caller) CanRead(p *Provider) bool {
	return c.IsOperator() || (c.Address != "" && p.SignAddress != "" && c.Address == p.SignAddress)
}
