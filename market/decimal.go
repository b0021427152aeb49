package market

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// DecimalScale is the number of Decimal units in one whole unit: amounts,
// prices and discount factors are fixed-point with eight decimal places,
// the precision of VSYS amounts.
const DecimalScale = 100_000_000

// Decimal is an exact fixed-point number in 1e-8 units. Prices, amounts and
// discount factors are Decimals, so sums and comparisons are exact. In JSON
// it is a plain number with no trailing zeros (100, 9.5, 0.00000001).
type Decimal int64

// NewDecimal returns the Decimal for whole units plus fractional 1e-8 units.
func NewDecimal(units int64) Decimal { return Decimal(units * DecimalScale) }

// decimalRE is the JSON number grammar (plus an optional '+'); group 1 is
// the exponent.
var decimalRE = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]{1,9}))?$`)

// ParseDecimal parses a decimal number text (as in JSON: optional sign,
// digits, optional fraction and exponent). It fails when the value has more
// than eight decimal places or does not fit.
func ParseDecimal(s string) (Decimal, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty number")
	}
	if d, ok := parsePlainDecimal(s); ok {
		return d, nil
	}
	m := decimalRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	// Bound the exponent before big.Rat sees it: 1e999999999 would
	// otherwise allocate a huge integer.
	if m[1] != "" {
		if e, err := strconv.Atoi(m[1]); err != nil || e > 30 || e < -30 {
			return 0, fmt.Errorf("%s is out of range", s)
		}
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(DecimalScale))
	if !r.IsInt() {
		return 0, fmt.Errorf("%s has more than 8 decimal places", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("%s is out of range", s)
	}
	return Decimal(n.Int64()), nil
}

// parsePlainDecimal is ParseDecimal's fast path for the common form
// "-123.45" (at most 8 decimals, no exponent, fits easily); ok is false for
// anything else, which the general path then handles or rejects.
func parsePlainDecimal(s string) (Decimal, bool) {
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 10 || len(frac) > 8 || (dot && frac == "") {
		return 0, false
	}
	var v int64
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int64(c-'0')
		}
	}
	for i := len(frac); i < 8; i++ {
		v *= 10
	}
	if neg {
		v = -v
	}
	return Decimal(v), true
}

// MustDecimal is ParseDecimal for constants in code and tests; it panics on
// bad input.
func MustDecimal(s string) Decimal {
	d, err := ParseDecimal(s)
	if err != nil {
		panic(err)
	}
	return d
}

// String formats d as a decimal number without trailing zeros.
func (d Decimal) String() string {
	neg := d < 0
	u := uint64(d)
	if neg {
		u = uint64(-d) // correct for MinInt64 too, by two's complement
	}
	whole, frac := u/DecimalScale, u%DecimalScale
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(strconv.FormatUint(whole, 10))
	if frac != 0 {
		f := fmt.Sprintf("%08d", frac)
		b.WriteByte('.')
		b.WriteString(strings.TrimRight(f, "0"))
	}
	return b.String()
}

// Float64 returns d as a float64 (for display and scripts; never for sums).
func (d Decimal) Float64() float64 { return float64(d) / DecimalScale }

// MarshalJSON writes d as a JSON number.
func (d Decimal) MarshalJSON() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalJSON reads a JSON number exactly. Strings holding a number are
// accepted too, since some clients quote amounts.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if kind := jsonKind(b); kind != "number" && kind != "string" {
		// A type error, so encoding/json names the field at fault.
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[Decimal]()}
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := strconv.Unquote(string(b))
		if err != nil {
			return fmt.Errorf("must be a number")
		}
		b = []byte(s)
	}
	if len(b) > 64 {
		return fmt.Errorf("number too long")
	}
	v, err := ParseDecimal(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// jsonKind names the kind of a JSON value by its first byte, as
// json.UnmarshalTypeError does.
func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// MulDecimal returns a×b rounded half away from zero to 1e-8 units, and
// false when the product does not fit.
func MulDecimal(a, b Decimal) (Decimal, bool) {
	p := new(big.Int).Mul(big.NewInt(int64(a)), big.NewInt(int64(b)))
	return roundDiv(p, big.NewInt(DecimalScale))
}

// MulInt returns d×n and false on overflow.
func (d Decimal) MulInt(n int64) (Decimal, bool) {
	p := new(big.Int).Mul(big.NewInt(int64(d)), big.NewInt(n))
	if !p.IsInt64() {
		return 0, false
	}
	return Decimal(p.Int64()), true
}

// roundDiv divides p by q, rounding half away from zero.
func roundDiv(p, q *big.Int) (Decimal, bool) {
	quo, rem := new(big.Int).QuoRem(p, q, new(big.Int))
	rem.Abs(rem).Mul(rem, big.NewInt(2))
	if rem.Cmp(new(big.Int).Abs(q)) >= 0 {
		if p.Sign() < 0 {
			quo.Sub(quo, big.NewInt(1))
		} else {
			quo.Add(quo, big.NewInt(1))
		}
	}
	if !quo.IsInt64() || quo.Int64() == math.MinInt64 {
		return 0, false
	}
	return Decimal(quo.Int64()), true
}
