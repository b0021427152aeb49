package operator

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/vmarket/vmarket/market"
	"github.com/vmarket/vmarket/market/opauth"
)

// reloadUsers loads the users into memory (token checks read no database).
func (s *Service) reloadUsers(ctx context.Context) error {
	all, err := s.store.Users(ctx)
	if err != nil {
		return internal(err, "load users")
	}
	m := make(map[string]User, len(all))
	for _, u := range all {
		m[u.ID] = u
	}
	s.users.Store(&m)
	return nil
}

// Verify checks an operator token (it implements the API's operator
// verifier): the keyring checks signature, expiry and role; a token
// issued to a managed user also needs the user to exist, be active and
// still hold the token's role.
func (s *Service) Verify(token string, now time.Time) (market.Caller, error) {
	if s.cfg.Keys == nil {
		return market.Caller{}, market.Errorf(market.KindUnauthorized, "operator tokens are not enabled")
	}
	claims, err := s.cfg.Keys.Parse(token, now)
	if err != nil {
		return market.Caller{}, err
	}
	if claims.UserID != "" {
		u, ok := (*s.users.Load())[claims.UserID]
		switch {
		case !ok:
			return market.Caller{}, market.Errorf(market.KindUnauthorized, "operator user of this token does not exist")
		case u.RevokedAt != 0:
			return market.Caller{}, market.Errorf(market.KindUnauthorized, "operator user %q was revoked", u.Name)
		case u.Role != claims.Role:
			return market.Caller{}, market.Errorf(market.KindUnauthorized, "operator user %q no longer has role %s", u.Name, claims.Role)
		}
	}
	return market.Caller{OperatorRole: claims.Role, OperatorName: claims.Subject}, nil
}

// checkTTL validates a token lifetime (0: the default).
func checkTTL(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl == 0:
		return DefaultTokenTTL, nil
	case ttl < time.Minute || ttl > MaxTokenTTL:
		return 0, market.Invalid("ttl", "must be between 1m and %s", MaxTokenTTL)
	}
	return ttl, nil
}

// UserToken is a user with a freshly issued token.
type UserToken struct {
	User      User   `json:"user"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expiresAt"`
}

// CreateUser creates an operator user with a role and issues its first
// token, valid for ttl (0: 30 days).
func (s *Service) CreateUser(ctx context.Context, caller market.Caller, name, role string, ttl time.Duration) (*UserToken, error) {
	if err := canWrite(caller, "creating an operator user"); err != nil {
		return nil, err
	}
	if s.cfg.Keys == nil {
		return nil, market.Errorf(market.KindConflict, "operator tokens are not enabled")
	}
	if err := checkUserName(name); err != nil {
		return nil, err
	}
	if role != market.RoleAdmin && role != market.RoleSupport {
		return nil, market.Invalid("role", "must be %s or %s", market.RoleAdmin, market.RoleSupport)
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	u := User{ID: uuid.NewString(), Name: name, Role: role, CreatedAt: now.Unix(), CreatedBy: actor(caller)}
	err = s.changeUsers(ctx, func(tx Tx) error {
		all, err := tx.Users(ctx)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.Name == name && o.RevokedAt == 0 {
				return market.Errorf(market.KindConflict, "operator user %q exists", name)
			}
		}
		return tx.PutUser(ctx, &u)
	})
	if err != nil {
		return nil, err
	}
	tok, err := s.cfg.Keys.IssueUser(u.Name, u.Role, u.ID, ttl, now)
	if err != nil {
		return nil, market.Internal(err, "issue token")
	}
	s.log.Info("operator user created", "user", name, "role", role, "by", actor(caller))
	return &UserToken{User: u, Token: tok, ExpiresAt: now.Add(ttl).Unix()}, nil
}

// IssueToken issues a new token to an active user, valid for ttl.
func (s *Service) IssueToken(ctx context.Context, caller market.Caller, name string, ttl time.Duration) (*UserToken, error) {
	if err := canWrite(caller, "issuing an operator token"); err != nil {
		return nil, err
	}
	if s.cfg.Keys == nil {
		return nil, market.Errorf(market.KindConflict, "operator tokens are not enabled")
	}
	ttl, err := checkTTL(ttl)
	if err != nil {
		return nil, err
	}
	u, ok := s.activeUser(name)
	if !ok {
		return nil, market.NotFound("operator user", name)
	}
	now := s.cfg.Now()
	tok, err := s.cfg.Keys.IssueUser(u.Name, u.Role, u.ID, ttl, now)
	if err != nil {
		return nil, market.Internal(err, "issue token")
	}
	s.log.Info("operator token issued", "user", name, "by", actor(caller))
	return &UserToken{User: u, Token: tok, ExpiresAt: now.Add(ttl).Unix()}, nil
}

// activeUser finds the active user of a name.
func (s *Service) activeUser(name string) (User, bool) {
	for _, u := range *s.users.Load() {
		if u.Name == name && u.RevokedAt == 0 {
			return u, true
		}
	}
	return User{}, false
}

// ListUsers lists the operator users, revoked ones included.
func (s *Service) ListUsers(ctx context.Context, caller market.Caller) ([]User, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	all, err := s.store.Users(ctx)
	if err != nil {
		return nil, internal(err, "list users")
	}
	if all == nil {
		all = []User{}
	}
	return all, nil
}

// RevokeUser revokes a user: every token issued to it stops working at
// once.
func (s *Service) RevokeUser(ctx context.Context, caller market.Caller, name string) error {
	if err := canWrite(caller, "revoking an operator user"); err != nil {
		return err
	}
	u, ok := s.activeUser(name)
	if !ok {
		return market.NotFound("operator user", name)
	}
	u.RevokedAt = s.cfg.Now().Unix()
	if err := s.changeUsers(ctx, func(tx Tx) error { return tx.PutUser(ctx, &u) }); err != nil {
		return err
	}
	s.log.Info("operator user revoked", "user", name, "by", actor(caller))
	return nil
}

func (s *Service) changeUsers(ctx context.Context, fn func(tx Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Update(ctx, fn); err != nil {
		return internal(err, "store user")
	}
	return s.reloadUsers(ctx)
}

// checkUserName validates an operator user's name.
func checkUserName(name string) error {
	if name == "" || len(name) > 64 {
		return market.Invalid("name", "must be 1 to 64 bytes")
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || c == '.' || c == '@' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return market.Invalid("name", "%q may hold only letters, digits and '_', '-', '.', '@'", name)
		}
	}
	return nil
}

// KeyInfo describes an operator JWT signing key (never its secret).
type KeyInfo struct {
	ID      string `json:"id"`
	Current bool   `json:"current"`
	// Stored is true for keys kept (sealed) in the database, false for the
	// data directory's or --jwt-secret key.
	Stored    bool  `json:"stored"`
	CreatedAt int64 `json:"createdAt,omitempty"`
	RetiredAt int64 `json:"retiredAt,omitempty"`
}

// keyAD binds a sealed signing key to its id.
func keyAD(id string) string { return "jwt-key\x00" + id }

// loadKeys adds the stored signing keys to the keyring and retires the
// retired ones.
func (s *Service) loadKeys(ctx context.Context) error {
	if s.cfg.Keys == nil {
		return nil
	}
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return internal(err, "load signing keys")
	}
	for _, k := range keys {
		if k.Sealed == nil || k.RetiredAt != 0 {
			continue
		}
		secret, err := s.sealer.Open(k.Sealed, keyAD(k.ID))
		if err != nil {
			return internal(err, "open signing key "+k.ID)
		}
		if _, err := s.cfg.Keys.Add(secret, k.Current); err != nil {
			return internal(err, "load signing key "+k.ID)
		}
	}
	for _, k := range keys {
		if k.RetiredAt != 0 && s.cfg.Keys.Has(k.ID) {
			if err := s.cfg.Keys.Retire(k.ID); err != nil {
				s.log.Warn("retired signing key is still current; it keeps signing", "key", k.ID, "err", err)
			}
		}
	}
	return nil
}

// Keys lists the signing keys: those that verify tokens and the retired
// ones.
func (s *Service) Keys(ctx context.Context, caller market.Caller) ([]KeyInfo, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	if s.cfg.Keys == nil {
		return []KeyInfo{}, nil
	}
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, internal(err, "list signing keys")
	}
	out := []KeyInfo{}
	seen := map[string]bool{}
	cur := s.cfg.Keys.Current()
	for _, k := range stored {
		seen[k.ID] = true
		out = append(out, KeyInfo{ID: k.ID, Current: k.ID == cur, Stored: k.Sealed != nil, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt})
	}
	for _, id := range s.cfg.Keys.IDs() {
		if !seen[id] {
			out = append(out, KeyInfo{ID: id, Current: id == cur})
		}
	}
	slices.SortFunc(out, func(a, b KeyInfo) int {
		switch {
		case a.Current != b.Current:
			if a.Current {
				return -1
			}
			return 1
		case a.RetiredAt != b.RetiredAt:
			if a.RetiredAt == 0 {
				return -1
			}
			return 1
		}
		return int(b.CreatedAt - a.CreatedAt)
	})
	return out, nil
}

// RotateKey creates a new signing key and makes it current: new tokens
// are signed with it; tokens signed with older keys keep working until
// those keys are retired.
func (s *Service) RotateKey(ctx context.Context, caller market.Caller) (*KeyInfo, error) {
	if err := canWrite(caller, "rotating the signing key"); err != nil {
		return nil, err
	}
	if s.cfg.Keys == nil {
		return nil, market.Errorf(market.KindConflict, "operator tokens are not enabled")
	}
	secret, err := opauth.NewSecret()
	if err != nil {
		return nil, market.Internal(err, "generate key")
	}
	id := opauth.KeyID([]byte(secret))
	sealed, err := s.sealer.Seal([]byte(secret), keyAD(id))
	if err != nil {
		return nil, market.Internal(err, "seal key")
	}
	k := SigningKey{ID: id, Sealed: sealed, CreatedAt: s.cfg.Now().Unix(), Current: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Update(ctx, func(tx Tx) error { return tx.PutSigningKey(ctx, &k) }); err != nil {
		return nil, internal(err, "store key")
	}
	if _, err := s.cfg.Keys.Add([]byte(secret), true); err != nil {
		return nil, market.Internal(err, "add key")
	}
	s.log.Info("operator signing key rotated", "key", id, "by", actor(caller))
	return &KeyInfo{ID: id, Current: true, Stored: true, CreatedAt: k.CreatedAt}, nil
}

// RetireKey retires a signing key: tokens signed with it stop working.
// The current key cannot be retired.
func (s *Service) RetireKey(ctx context.Context, caller market.Caller, id string) error {
	if err := canWrite(caller, "retiring a signing key"); err != nil {
		return err
	}
	if s.cfg.Keys == nil {
		return market.Errorf(market.KindConflict, "operator tokens are not enabled")
	}
	if !s.cfg.Keys.Has(id) {
		return market.NotFound("signing key", id)
	}
	if id == s.cfg.Keys.Current() {
		return market.Errorf(market.KindConflict, "key %s is the current signing key; rotate first", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.store.Update(ctx, func(tx Tx) error {
		keys, err := tx.SigningKeys(ctx)
		if err != nil {
			return err
		}
		k := SigningKey{ID: id}
		for _, o := range keys {
			if o.ID == id {
				k = o
			}
		}
		k.RetiredAt, k.Current, k.Sealed = s.cfg.Now().Unix(), false, nil
		return tx.PutSigningKey(ctx, &k)
	})
	if err != nil {
		return internal(err, "retire key")
	}
	if err := s.cfg.Keys.Retire(id); err != nil {
		return market.Errorf(market.KindConflict, "%v", err)
	}
	s.log.Info("operator signing key retired", "key", id, "by", actor(caller))
	return nil
}
