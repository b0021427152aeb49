package market_test

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/market"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in   string
		want market.Decimal
		err  string // part of the error; "" when it parses
	}{
		{"0", 0, ""},
		{"100", 100 * market.DecimalScale, ""},
		{"9.5", 950_000_000, ""},
		{"0.1", 10_000_000, ""},
		{"0.2", 20_000_000, ""},
		{"0.3", 30_000_000, ""},
		{"0.00000001", 1, ""},
		{"0.000000010", 1, ""},
		{"-0.00000001", -1, ""},
		{"+1", market.DecimalScale, ""},
		{"1.", market.DecimalScale, ""},
		{".5", 50_000_000, ""},
		{" 2 ", 2 * market.DecimalScale, ""},
		{"1e2", 100 * market.DecimalScale, ""},
		{"1E-8", 1, ""},
		{"12345e-8", 12345, ""},
		{"92233720368.54775807", math.MaxInt64, ""},
		{"-92233720368.54775808", math.MinInt64, ""},
		{"0.000000001", 0, "more than 8 decimal places"},
		{"1.123456789", 0, "more than 8 decimal places"},
		{"1e-9", 0, "more than 8 decimal places"},
		{"92233720368.54775808", 0, "out of range"},
		{"1e19", 0, "out of range"},
		{"1e31", 0, "out of range"},
		{"1e999999999", 0, "out of range"},
		{"0e-999999999", 0, "out of range"},
		{"1e9999999999", 0, "not a decimal number"},
		{"", 0, "empty"},
		{"abc", 0, "not a decimal number"},
		{"1,5", 0, "not a decimal number"},
		{"0x10", 0, "not a decimal number"},
		{"NaN", 0, "not a decimal number"},
		{"Inf", 0, "not a decimal number"},
		{"--1", 0, "not a decimal number"},
		{"1/3", 0, "not a decimal number"},
		{".", 0, "not a decimal number"},
		{"1e", 0, "not a decimal number"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := market.ParseDecimal(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseDecimal(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDecimal(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
	// Sums are exact: 0.1 + 0.2 is 0.3.
	if market.MustDecimal("0.1")+market.MustDecimal("0.2") != market.MustDecimal("0.3") {
		t.Error("0.1 + 0.2 != 0.3")
	}
}

func TestDecimalString(t *testing.T) {
	tests := []struct {
		d    market.Decimal
		want string
	}{
		{0, "0"},
		{1, "0.00000001"},
		{-1, "-0.00000001"},
		{market.NewDecimal(100), "100"},
		{950_000_000, "9.5"},
		{market.MustDecimal("0.1") + market.MustDecimal("0.2"), "0.3"},
		{market.MustDecimal("12345678.9"), "12345678.9"},
		{math.MaxInt64, "92233720368.54775807"},
		{math.MinInt64, "-92233720368.54775808"},
		{-market.NewDecimal(5), "-5"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("Decimal(%d).String() = %q, want %q", int64(tc.d), got, tc.want)
		}
		b, err := json.Marshal(tc.d)
		if err != nil || string(b) != tc.want {
			t.Errorf("json.Marshal(Decimal(%d)) = %s, %v; want %s", int64(tc.d), b, err, tc.want)
		}
	}
}

func TestDecimalJSON(t *testing.T) {
	type wrap struct {
		Price market.Decimal `json:"price"`
	}
	tests := []struct {
		in    string
		want  market.Decimal
		field string // "" when it decodes; else the field a type error names, or "-" for another error
	}{
		{`{"price": 100}`, market.NewDecimal(100), ""},
		{`{"price": 9.5}`, 950_000_000, ""},
		{`{"price": "9.5"}`, 950_000_000, ""},
		{`{"price": null}`, 0, ""},
		{`{"price": 1e-8}`, 1, ""},
		{`{"price": 0.123456789}`, 0, "-"},
		{`{"price": "abc"}`, 0, "-"},
		{`{"price": "` + strings.Repeat("1", 65) + `"}`, 0, "-"},
		{`{"price": [1]}`, 0, "price"},
		{`{"price": {}}`, 0, "price"},
		{`{"price": true}`, 0, "price"},
	}
	for _, tc := range tests {
		var w wrap
		err := json.Unmarshal([]byte(tc.in), &w)
		switch tc.field {
		case "":
			if err != nil || w.Price != tc.want {
				t.Errorf("%s: %d, %v; want %d", tc.in, w.Price, err, tc.want)
			}
		case "-":
			if err == nil {
				t.Errorf("%s: decoded as %d, want an error", tc.in, w.Price)
			}
		default:
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || te.Field != tc.field {
				t.Errorf("%s: error %v, want a type error naming %q", tc.in, err, tc.field)
			}
		}
	}
}

func TestMulDecimal(t *testing.T) {
	tests := []struct {
		a, b string
		want string
		ok   bool
	}{
		{"100", "0.9", "90", true},
		{"9.5", "0.85", "8.075", true},
		{"0.00000001", "0.5", "0.00000001", true},   // half rounds away from zero
		{"-0.00000001", "0.5", "-0.00000001", true}, // also below zero
		{"0.00000001", "0.49999999", "0", true},
		{"92233720368", "2", "0", false},
	}
	for _, tc := range tests {
		got, ok := market.MulDecimal(market.MustDecimal(tc.a), market.MustDecimal(tc.b))
		if ok != tc.ok || (ok && got != market.MustDecimal(tc.want)) {
			t.Errorf("%s × %s = %s, %t; want %s, %t", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzDecimal checks that every parsed number is exactly the value of its
// text, and that String, MarshalJSON and ParseDecimal round-trip.
func FuzzDecimal(f *testing.F) {
	for _, s := range []string{"0", "100", "9.5", "0.1", "0.00000001", "-1.5", "1e2", "1E-8", "+.5", "92233720368.54775807", "-92233720368.54775808", "0.000000001", "1e30", "00012.3400", " 7 "} {
		f.Add(s, int64(0))
	}
	f.Add("", int64(math.MaxInt64))
	f.Add("", int64(math.MinInt64))
	f.Add("", int64(-1))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		// Any int64 round-trips through its text.
		d := market.Decimal(n)
		back, err := market.ParseDecimal(d.String())
		if err != nil || back != d {
			t.Fatalf("Decimal(%d).String() = %q parses as %d, %v", n, d.String(), back, err)
		}
		var j market.Decimal
		if b, _ := d.MarshalJSON(); json.Unmarshal(b, &j) != nil || j != d {
			t.Fatalf("Decimal(%d) JSON %s does not round-trip (%d)", n, b, j)
		}

		got, err := market.ParseDecimal(s)
		if err != nil {
			return
		}
		// The parsed value is exactly the text's value.
		r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
		if !ok {
			t.Fatalf("ParseDecimal(%q) = %d but big.Rat rejects it", s, got)
		}
		want := new(big.Rat).SetFrac(big.NewInt(int64(got)), big.NewInt(market.DecimalScale))
		if r.Cmp(want) != 0 {
			t.Fatalf("ParseDecimal(%q) = %s, want %s", s, got, r.FloatString(10))
		}
		again, err := market.ParseDecimal(got.String())
		if err != nil || again != got {
			t.Fatalf("ParseDecimal(%q) = %d; its String %q parses as %d, %v", s, got, got.String(), again, err)
		}
		if str := got.String(); strings.Contains(str, ".") && strings.HasSuffix(str, "0") {
			t.Fatalf("String %q has trailing zeros", str)
		}
	})
}
