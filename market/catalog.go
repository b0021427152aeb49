package market

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Provider is a seller of services. Its ID equals its Name. WalletAddress
// receives payments; SignAddress is the wallet allowed to change the
// provider's catalog (empty for providers only operators may change).
type Provider struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	WalletAddress string            `json:"walletAddress"`
	SignAddress   string            `json:"signAddress"`
	APIHost       string            `json:"apiHost"`
	Category2ID   map[string]string `json:"category2ID"`
	CreatedAt     int64             `json:"-"`
	UpdatedAt     int64             `json:"-"`
}

// Category groups a provider's service types. Its name is unique under the
// provider. APIHost is the backup host for the types under it.
type Category struct {
	ID             string            `json:"categoryID"`
	Provider       string            `json:"provider"`
	Name           string            `json:"name"`
	ServiceOptions Options           `json:"serviceOptions"`
	Description    string            `json:"description"`
	Name2ID        map[string]string `json:"name2ID"`
	APIHost        string            `json:"apiHost"`
	CreatedAt      int64             `json:"-"`
	UpdatedAt      int64             `json:"-"`
}

// ServiceType is a purchasable service: its price sets, options, scripts
// and user APIs. Its name is unique under its category.
type ServiceType struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	DurationToPrice []PriceSet `json:"durationToPrice"`
	Provider        string     `json:"provider"`
	Refundable      bool       `json:"refundable"`
	CategoryID      string     `json:"categoryID"`
	Category        string     `json:"category"`
	ServiceOptions  Options    `json:"serviceOptions"`
	ServiceAPI      ServiceAPI `json:"serviceAPI"`
	Description     string     `json:"description"`
	APIHost         string     `json:"apiHost"`
	CreatedAt       int64      `json:"-"`
	UpdatedAt       int64      `json:"-"`
}

// BasePrice is the lowest hourly price among the type's price sets; the
// minPrice/maxPrice catalog filters compare against it.
func (t *ServiceType) BasePrice() Decimal {
	if len(t.DurationToPrice) == 0 {
		return 0
	}
	min := t.DurationToPrice[0].Price
	for _, p := range t.DurationToPrice[1:] {
		if p.Price < min {
			min = p.Price
		}
	}
	return min
}

// Public returns a copy of t fit for anyone to read: script bodies are
// blanked, as the seed shows them.
func (t ServiceType) Public() ServiceType {
	t.ServiceAPI.Start.Encoded = ""
	t.ServiceAPI.Stop.Encoded = ""
	t.ServiceAPI.Refund.Encoded = ""
	return t
}

// ServiceAPI holds a type's lifecycle scripts and the user API maps.
type ServiceAPI struct {
	Start  Script            `json:"start"`
	Stop   Script            `json:"stop"`
	Refund Script            `json:"refund"`
	Normal map[string]string `json:"normal"`
	Secret map[string]string `json:"secret"`
}

// Scripts returns the lifecycle scripts by name, in a fixed order.
func (a *ServiceAPI) Scripts() []NamedScript {
	return []NamedScript{{"start", &a.Start}, {"stop", &a.Stop}, {"refund", &a.Refund}}
}

// NamedScript pairs a lifecycle script with its name.
type NamedScript struct {
	Name   string
	Script *Script
}

// Script is a lifecycle script as the API carries it: url-encoded Lua,
// kept exactly as sent. Hash is the hex sha256 of the decoded source (set by
// the server; empty when there is no script). In JSON it is the encoded text.
type Script struct {
	Encoded string
	Hash    string
}

// MarshalJSON writes the encoded script text.
func (s Script) MarshalJSON() ([]byte, error) { return json.Marshal(s.Encoded) }

// UnmarshalJSON reads the encoded script text.
func (s *Script) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = Script{}
		return nil
	}
	if kind := jsonKind(bytes.TrimSpace(b)); kind != "string" {
		// A type error, so encoding/json names the field at fault.
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[string]()}
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("must be a string of url-encoded Lua")
	}
	*s = Script{Encoded: v}
	return nil
}

// PriceSet is one entry of durationToPrice: an hourly price that applies
// when the chosen service options contain all of ChargingOptions, with
// discount factors by bought hours.
type PriceSet struct {
	Price           Decimal           `json:"price"`
	ChargingOptions map[string]string `json:"chargingOptions"`
	Duration        Durations         `json:"duration"`
}

// UnmarshalJSON accepts the seed's misspelling "charingOptions" as well as
// "chargingOptions".
func (p *PriceSet) UnmarshalJSON(b []byte) error {
	var raw struct {
		Price           *Decimal          `json:"price"`
		ChargingOptions map[string]string `json:"chargingOptions"`
		CharingOptions  map[string]string `json:"charingOptions"`
		Duration        Durations         `json:"duration"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*p = PriceSet{ChargingOptions: raw.ChargingOptions, Duration: raw.Duration}
	if raw.Price != nil {
		p.Price = *raw.Price
	}
	if p.ChargingOptions == nil {
		p.ChargingOptions = raw.CharingOptions
	} else {
		for k, v := range raw.CharingOptions {
			if _, ok := p.ChargingOptions[k]; !ok {
				p.ChargingOptions[k] = v
			}
		}
	}
	if p.ChargingOptions == nil {
		p.ChargingOptions = map[string]string{}
	}
	return nil
}

// Discount is one duration key of a price set: from Hours bought on, the
// hourly price is multiplied by Factor.
type Discount struct {
	Hours  int64
	Factor Decimal
}

// Durations is a price set's discount table, kept sorted by Hours. In JSON
// it is an object whose keys are hours as strings: {"1": 1, "100": 0.9}.
type Durations []Discount

// MarshalJSON writes the table as an object in ascending hour order.
func (d Durations) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range d {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strconv.FormatInt(e.Hours, 10))
		b.WriteString(`":`)
		b.WriteString(e.Factor.String())
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads {"hours": factor, ...}; keys must be positive whole
// hours.
func (d *Durations) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*d = nil
		return nil
	}
	var raw map[string]Decimal
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Durations, 0, len(raw))
	for k, v := range raw {
		h, err := strconv.ParseInt(strings.TrimSpace(k), 10, 64)
		if err != nil || h < 1 {
			return fmt.Errorf("duration key %q is not a positive whole number of hours", k)
		}
		out = append(out, Discount{Hours: h, Factor: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Hours < out[j].Hours })
	for i := 1; i < len(out); i++ {
		if out[i].Hours == out[i-1].Hours {
			return fmt.Errorf("duration key %d appears twice", out[i].Hours)
		}
	}
	*d = out
	return nil
}

// Options maps an option name to its allowed values. In JSON it is
// {"name": ["v1", "v2"]}; a single string value is accepted on input as a
// one-value list (the seed's category example sends one). An empty list
// makes a free-form option: buyers may give any value (e.g. an account
// number).
type Options map[string][]string

// UnmarshalJSON accepts list or string values.
func (o *Options) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*o = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Options, len(raw))
	for k, v := range raw {
		var list []string
		if err := json.Unmarshal(v, &list); err != nil {
			var one string
			if err2 := json.Unmarshal(v, &one); err2 != nil {
				return fmt.Errorf("option %q must be a string or a list of strings", k)
			}
			list = []string{one}
		}
		if list == nil {
			list = []string{}
		}
		out[k] = list
	}
	*o = out
	return nil
}

// Limits on catalog text fields.
const (
	MaxNameLen        = 128
	MaxDescriptionLen = 16 << 10
	MaxHostLen        = 512
	MaxOptions        = 64
	MaxOptionValues   = 256
	MaxPriceSets      = 256
	MaxDurationKeys   = 64
	MaxAPIFuncs       = 128
	MaxScriptLen      = 256 << 10
)

// checkName validates a name-like field: non-empty, bounded, printable.
func checkName(field, v string) error {
	if strings.TrimSpace(v) == "" {
		return Invalid(field, "is required")
	}
	if len(v) > MaxNameLen {
		return Invalid(field, "is longer than %d bytes", MaxNameLen)
	}
	return checkText(field, v)
}

// checkText rejects invalid UTF-8 and control characters.
func checkText(field, v string) error {
	if !utf8.ValidString(v) {
		return Invalid(field, "is not valid UTF-8")
	}
	for _, r := range v {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return Invalid(field, "contains control characters")
		}
	}
	return nil
}

// checkHost validates an apiHost: a host, host:port or http(s) URL.
func checkHost(field, v string, required bool) error {
	if v == "" {
		if required {
			return Invalid(field, "is required")
		}
		return nil
	}
	if len(v) > MaxHostLen {
		return Invalid(field, "is longer than %d bytes", MaxHostLen)
	}
	if strings.ContainsAny(v, " \t\r\n") {
		return Invalid(field, "must not contain spaces")
	}
	u := v
	if !strings.Contains(v, "://") {
		u = "http://" + v
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return Invalid(field, "%q is not a host or URL", v)
	}
	if pu.Scheme != "http" && pu.Scheme != "https" {
		return Invalid(field, "scheme must be http or https")
	}
	return nil
}

// HostURL turns an apiHost (host, host:port or URL) into a base URL
// without a trailing slash.
func HostURL(apiHost string) string {
	h := strings.TrimRight(apiHost, "/")
	if h == "" || strings.Contains(h, "://") {
		return h
	}
	return "http://" + h
}

// PaySourceScopePrefix starts the settings scopes of payment sources
// (market/paysource: "paysource:kassa24"). Settings scopes are provider
// names, and a provider's scripts see its scope's settings, so no provider
// may take a name with this prefix: a payment system's credentials stay
// out of every provider's scripts.
const PaySourceScopePrefix = "paysource:"

// Validate checks a provider's own fields (not the address formats, which
// the catalog checks with its AddressValidator).
func (p *Provider) Validate() error {
	if p.ID != "" && p.ID != p.Name {
		return Invalid("id", "must equal name (%q)", p.Name)
	}
	if err := checkName("name", p.Name); err != nil {
		return err
	}
	if strings.HasPrefix(p.Name, PaySourceScopePrefix) {
		return Invalid("name", "names starting with %q are reserved for payment sources' settings", PaySourceScopePrefix)
	}
	if strings.TrimSpace(p.WalletAddress) == "" {
		return Invalid("walletAddress", "is required")
	}
	return checkHost("apiHost", p.APIHost, true)
}

// Validate checks a category's own fields.
func (c *Category) Validate() error {
	if err := checkName("provider", c.Provider); err != nil {
		return err
	}
	if err := checkName("name", c.Name); err != nil {
		return err
	}
	if err := checkOptions("serviceOptions", c.ServiceOptions); err != nil {
		return err
	}
	if len(c.Description) > MaxDescriptionLen {
		return Invalid("description", "is longer than %d bytes", MaxDescriptionLen)
	}
	if err := checkText("description", c.Description); err != nil {
		return err
	}
	return checkHost("apiHost", c.APIHost, false)
}

func checkOptions(field string, o Options) error {
	if len(o) > MaxOptions {
		return Invalid(field, "has more than %d options", MaxOptions)
	}
	for k, vals := range o {
		if err := checkName(field+"."+k, k); err != nil {
			return err
		}
		if len(vals) > MaxOptionValues {
			return Invalid(field+"."+k, "has more than %d values", MaxOptionValues)
		}
		seen := make(map[string]bool, len(vals))
		for _, v := range vals {
			if err := checkName(field+"."+k, v); err != nil {
				return err
			}
			if seen[v] {
				return Invalid(field+"."+k, "value %q appears twice", v)
			}
			seen[v] = true
		}
	}
	return nil
}

// Validate checks a service type's own fields: names, price sets (at least
// one; non-negative prices; positive discount factors; charging options
// among the type's service options; no two sets with the same charging
// options), the user API maps and script sizes. Scripts are compiled
// separately by the catalog.
func (t *ServiceType) Validate() error {
	if err := checkName("name", t.Name); err != nil {
		return err
	}
	if err := checkName("provider", t.Provider); err != nil {
		return err
	}
	if t.CategoryID == "" && t.Category == "" {
		return Invalid("categoryID", "categoryID or category is required")
	}
	if err := checkOptions("serviceOptions", t.ServiceOptions); err != nil {
		return err
	}
	if len(t.DurationToPrice) == 0 {
		return Invalid("durationToPrice", "needs at least one price set")
	}
	if len(t.DurationToPrice) > MaxPriceSets {
		return Invalid("durationToPrice", "has more than %d price sets", MaxPriceSets)
	}
	seen := map[string]int{}
	for i := range t.DurationToPrice {
		ps := &t.DurationToPrice[i]
		f := fmt.Sprintf("durationToPrice[%d]", i)
		if ps.Price < 0 {
			return Invalid(f+".price", "must not be negative")
		}
		if len(ps.Duration) == 0 {
			ps.Duration = Durations{{Hours: 1, Factor: NewDecimal(1)}}
		}
		if len(ps.Duration) > MaxDurationKeys {
			return Invalid(f+".duration", "has more than %d keys", MaxDurationKeys)
		}
		for _, d := range ps.Duration {
			if d.Factor <= 0 {
				return Invalid(fmt.Sprintf("%s.duration.%d", f, d.Hours), "discount factor must be positive")
			}
		}
		for k, v := range ps.ChargingOptions {
			allowed, ok := t.ServiceOptions[k]
			if !ok {
				return Invalid(f+".chargingOptions."+k, "is not one of the type's serviceOptions")
			}
			if len(allowed) > 0 && !contains(allowed, v) {
				return Invalid(f+".chargingOptions."+k, "value %q is not among serviceOptions %v", v, allowed)
			}
		}
		key := chargingKey(ps.ChargingOptions)
		if j, dup := seen[key]; dup {
			return Invalid(f+".chargingOptions", "same charging options as durationToPrice[%d]", j)
		}
		seen[key] = i
	}
	for name, m := range map[string]map[string]string{"serviceAPI.normal": t.ServiceAPI.Normal, "serviceAPI.secret": t.ServiceAPI.Secret} {
		if len(m) > MaxAPIFuncs {
			return Invalid(name, "has more than %d functions", MaxAPIFuncs)
		}
		for fn, path := range m {
			if err := checkName(name+"."+fn, fn); err != nil {
				return err
			}
			if strings.ContainsAny(fn, "/?#") {
				return Invalid(name+"."+fn, "function names must not contain '/', '?' or '#'")
			}
			if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\r\n") || len(path) > MaxHostLen {
				return Invalid(name+"."+fn, "must be an absolute path like /api/v1/func")
			}
		}
	}
	for _, s := range t.ServiceAPI.Scripts() {
		if len(s.Script.Encoded) > MaxScriptLen {
			return Invalid("serviceAPI."+s.Name, "script is longer than %d bytes", MaxScriptLen)
		}
	}
	if len(t.Description) > MaxDescriptionLen {
		return Invalid("description", "is longer than %d bytes", MaxDescriptionLen)
	}
	if err := checkText("description", t.Description); err != nil {
		return err
	}
	return checkHost("apiHost", t.APIHost, false)
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// chargingKey is a canonical text of a charging-options map.
func chargingKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
		b.WriteByte(';')
	}
	return b.String()
}

// Normalize replaces nil maps with empty ones so JSON shows {} as the seed
// does, and sets ID from Name.
func (p *Provider) Normalize() {
	if p.Category2ID == nil {
		p.Category2ID = map[string]string{}
	}
	p.ID = p.Name
}

// Normalize replaces nil maps with empty ones so JSON shows {}.
func (c *Category) Normalize() {
	if c.ServiceOptions == nil {
		c.ServiceOptions = Options{}
	}
	if c.Name2ID == nil {
		c.Name2ID = map[string]string{}
	}
}

// Normalize replaces nil maps with empty ones so JSON shows {}.
func (t *ServiceType) Normalize() {
	if t.ServiceOptions == nil {
		t.ServiceOptions = Options{}
	}
	if t.ServiceAPI.Normal == nil {
		t.ServiceAPI.Normal = map[string]string{}
	}
	if t.ServiceAPI.Secret == nil {
		t.ServiceAPI.Secret = map[string]string{}
	}
	for i := range t.DurationToPrice {
		if t.DurationToPrice[i].ChargingOptions == nil {
			t.DurationToPrice[i].ChargingOptions = map[string]string{}
		}
	}
}
