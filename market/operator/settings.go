package operator

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/vmarket/vmarket/market"
)

// Settings limits.
const (
	MaxSettingKeyBytes   = 128
	MaxSettingValueBytes = 64 << 10
	// minRedactBytes is the shortest secret the runtime redacts; shorter
	// ones would blank out ordinary text.
	minRedactBytes = 4
	// SecretMask is shown instead of a secret's value.
	SecretMask = "********"
)

// scopeView is what the scripts of one scope see: settings values, the
// keys of the secret ones and a redactor of the secret values.
type scopeView struct {
	values     map[string]string
	secretKeys []string
	redactor   *strings.Replacer
}

// redact replaces the secret values of the view in s.
func (v *scopeView) redact(s string) string {
	if v.redactor == nil || s == "" {
		return s
	}
	return v.redactor.Replace(s)
}

// settingsSnapshot is one immutable state of the settings, decrypted.
type settingsSnapshot struct {
	operator  *scopeView
	providers map[string]*scopeView // merged: operator overlaid with the provider's
}

// forProvider returns the view of a provider's scripts ("" for the
// operator's own, hooks).
func (s *settingsSnapshot) forProvider(provider string) *scopeView {
	if v, ok := s.providers[provider]; ok && provider != "" {
		return v
	}
	return s.operator
}

func newScopeView(values map[string]string, secret map[string]bool) *scopeView {
	v := &scopeView{values: values}
	var pairs []string
	for _, k := range slices.Sorted(maps.Keys(secret)) {
		v.secretKeys = append(v.secretKeys, k)
		if val := values[k]; len(val) >= minRedactBytes {
			pairs = append(pairs, val, redactedMark)
		}
	}
	if len(pairs) > 0 {
		v.redactor = strings.NewReplacer(pairs...)
	}
	return v
}

// reloadSettings decrypts the stored settings into a new snapshot.
func (s *Service) reloadSettings(ctx context.Context) error {
	all, err := s.store.Settings(ctx)
	if err != nil {
		return internal(err, "load settings")
	}
	type scope struct {
		values map[string]string
		secret map[string]bool
	}
	scopes := map[string]*scope{}
	for _, st := range all {
		sc := scopes[st.Scope]
		if sc == nil {
			sc = &scope{values: map[string]string{}, secret: map[string]bool{}}
			scopes[st.Scope] = sc
		}
		val := st.Value
		if st.Secret {
			b, err := s.sealer.Open(st.Sealed, settingAD(st.Scope, st.Key))
			if err != nil {
				s.log.Error("secret setting cannot be opened; scripts will not see it", "scope", st.Scope, "key", st.Key, "err", err)
				continue
			}
			val = string(b)
			sc.secret[st.Key] = true
		}
		sc.values[st.Key] = val
	}
	op := scopes[""]
	if op == nil {
		op = &scope{values: map[string]string{}, secret: map[string]bool{}}
	}
	snap := &settingsSnapshot{operator: newScopeView(op.values, op.secret), providers: map[string]*scopeView{}}
	for name, sc := range scopes {
		if name == "" {
			continue
		}
		values, secret := maps.Clone(op.values), maps.Clone(op.secret)
		for k, v := range sc.values {
			values[k] = v
			delete(secret, k)
		}
		maps.Copy(secret, sc.secret)
		snap.providers[name] = newScopeView(values, secret)
	}
	s.settings.Store(snap)
	return nil
}

// ScriptSettings returns the settings a provider's scripts see (the
// operator's overlaid with the provider's) and the keys of the secret
// ones. The map is shared: callers must not change it.
func (s *Service) ScriptSettings(provider string) (map[string]string, []string) {
	v := s.settings.Load().forProvider(provider)
	return v.values, v.secretKeys
}

// settingAD binds a sealed value to its scope and key.
func settingAD(scope, key string) string { return "setting\x00" + scope + "\x00" + key }

// SettingView is a setting as the admin API shows it: a secret's value is
// never shown, only SecretMask.
type SettingView struct {
	// Provider is the provider scope, empty for the operator's settings.
	Provider  string `json:"provider,omitempty"`
	Scope     string `json:"scope"`
	Key       string `json:"key"`
	Value     string `json:"value"`
	Secret    bool   `json:"secret"`
	UpdatedAt int64  `json:"updatedAt"`
	UpdatedBy string `json:"updatedBy"`
}

func viewOf(st Setting) SettingView {
	v := SettingView{Provider: st.Scope, Scope: "operator", Key: st.Key, Value: st.Value, Secret: st.Secret,
		UpdatedAt: st.UpdatedAt, UpdatedBy: st.UpdatedBy}
	if st.Scope != "" {
		v.Scope = "provider"
	}
	if st.Secret {
		v.Value = SecretMask
	}
	return v
}

// checkSettingKey validates a setting key.
func checkSettingKey(key string) error {
	if key == "" || len(key) > MaxSettingKeyBytes {
		return market.Invalid("key", "must be 1 to %d bytes", MaxSettingKeyBytes)
	}
	for _, c := range key {
		if !(c == '_' || c == '-' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return market.Invalid("key", "%q may hold only letters, digits, '_', '-' and '.'", key)
		}
	}
	return nil
}

// checkProviderScope validates a provider scope name.
func checkProviderScope(provider string) error {
	if len(provider) > market.MaxNameLen {
		return market.Invalid("provider", "is longer than %d bytes", market.MaxNameLen)
	}
	for _, c := range provider {
		if c < 0x20 || c == 0x7f {
			return market.Invalid("provider", "contains control characters")
		}
	}
	return nil
}

// PutSetting sets a setting of the operator (provider "") or of a
// provider. A secret is sealed before it is stored and never shown again.
func (s *Service) PutSetting(ctx context.Context, caller market.Caller, provider, key, value string, secret bool) (*SettingView, error) {
	if err := canWrite(caller, "changing settings"); err != nil {
		return nil, err
	}
	if err := checkSettingKey(key); err != nil {
		return nil, err
	}
	if err := checkProviderScope(provider); err != nil {
		return nil, err
	}
	if len(value) > MaxSettingValueBytes {
		return nil, &market.Error{Kind: market.KindTooLarge, Field: "value", Message: "is longer than 64 KiB"}
	}
	st := Setting{Scope: provider, Key: key, Secret: secret, UpdatedAt: s.cfg.Now().Unix(), UpdatedBy: actor(caller)}
	if secret {
		sealed, err := s.sealer.Seal([]byte(value), settingAD(provider, key))
		if err != nil {
			return nil, market.Internal(err, "seal secret")
		}
		st.Sealed = sealed
	} else {
		st.Value = value
	}
	if err := s.changeSettings(ctx, func(tx Tx) error { return tx.PutSetting(ctx, &st) }); err != nil {
		return nil, err
	}
	s.log.Info("setting changed", "provider", provider, "key", key, "secret", secret, "by", actor(caller))
	v := viewOf(st)
	return &v, nil
}

// DeleteSetting removes a setting.
func (s *Service) DeleteSetting(ctx context.Context, caller market.Caller, provider, key string) error {
	if err := canWrite(caller, "changing settings"); err != nil {
		return err
	}
	err := s.changeSettings(ctx, func(tx Tx) error {
		ok, err := tx.DeleteSetting(ctx, provider, key)
		if err == nil && !ok {
			err = market.NotFound("setting", key)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.log.Info("setting deleted", "provider", provider, "key", key, "by", actor(caller))
	return nil
}

// ListSettings lists settings, secrets masked. provider filters to one
// provider's scope, operatorOnly to the operator's.
func (s *Service) ListSettings(ctx context.Context, caller market.Caller, provider string, operatorOnly bool) ([]SettingView, error) {
	if err := canRead(caller); err != nil {
		return nil, err
	}
	all, err := s.store.Settings(ctx)
	if err != nil {
		return nil, internal(err, "list settings")
	}
	out := []SettingView{}
	for _, st := range all {
		if (provider != "" && st.Scope != provider) || (operatorOnly && st.Scope != "") {
			continue
		}
		out = append(out, viewOf(st))
	}
	return out, nil
}

// GetSetting returns one setting, a secret masked.
func (s *Service) GetSetting(ctx context.Context, caller market.Caller, provider, key string) (*SettingView, error) {
	list, err := s.ListSettings(ctx, caller, provider, provider == "")
	if err != nil {
		return nil, err
	}
	for _, v := range list {
		if v.Key == key {
			return &v, nil
		}
	}
	return nil, market.NotFound("setting", key)
}

// changeSettings writes and reloads the settings under the change lock.
func (s *Service) changeSettings(ctx context.Context, fn func(tx Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.store.Update(ctx, fn); err != nil {
		return internal(err, "store setting")
	}
	return s.reloadSettings(ctx)
}
