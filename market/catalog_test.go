package market_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmarket/vmarket/market"
)

func TestPriceSetJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the price set marshaled back
		err  string
	}{
		{"seed typo", `{"price": 100, "charingOptions": {"a": "x"}, "duration": {"1": 1, "20": 0.99, "100": 0.89}}`,
			`{"price":100,"chargingOptions":{"a":"x"},"duration":{"1":1,"20":0.99,"100":0.89}}`, ""},
		{"right spelling", `{"price": 9.5, "chargingOptions": {"a": "x"}, "duration": {"100": 0.9, "200": 0.85}}`,
			`{"price":9.5,"chargingOptions":{"a":"x"},"duration":{"100":0.9,"200":0.85}}`, ""},
		{"both spellings merge, right one wins", `{"price": 1, "chargingOptions": {"a": "x"}, "charingOptions": {"a": "y", "b": "z"}}`,
			`{"price":1,"chargingOptions":{"a":"x","b":"z"},"duration":{}}`, ""},
		{"no options", `{"price": 1}`, `{"price":1,"chargingOptions":{},"duration":{}}`, ""},
		{"duration keys sorted numerically", `{"price": 1, "duration": {"100": 0.5, "20": 0.9, "3": 1}}`,
			`{"price":1,"chargingOptions":{},"duration":{"3":1,"20":0.9,"100":0.5}}`, ""},
		{"duration key not a number", `{"price": 1, "duration": {"x": 1}}`, "", "duration key"},
		{"duration key zero", `{"price": 1, "duration": {"0": 1}}`, "", "duration key"},
		{"duration key twice", `{"price": 1, "duration": {"1": 1, "01": 0.5}}`, "", "twice"},
		{"factor with 9 decimals", `{"price": 1, "duration": {"1": 0.123456789}}`, "", "decimal places"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ps market.PriceSet
			err := json.Unmarshal([]byte(tc.in), &ps)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(ps)
			if err != nil || string(b) != tc.want {
				t.Fatalf("marshaled %s, %v; want %s", b, err, tc.want)
			}
		})
	}
}

func TestOptionsAndScriptJSON(t *testing.T) {
	var o market.Options
	if err := json.Unmarshal([]byte(`{"a": "one", "b": ["x", "y"], "c": null, "d": []}`), &o); err != nil {
		t.Fatal(err)
	}
	want := market.Options{"a": {"one"}, "b": {"x", "y"}, "c": {}, "d": {}}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("options %v, want %v", o, want)
	}
	if err := json.Unmarshal([]byte(`{"a": 1}`), &o); err == nil {
		t.Error("a number option value decoded")
	}

	var api market.ServiceAPI
	if err := json.Unmarshal([]byte(`{"start": "return+%7B%7D", "stop": null}`), &api); err != nil {
		t.Fatal(err)
	}
	if api.Start.Encoded != "return+%7B%7D" || api.Stop.Encoded != "" {
		t.Errorf("scripts %+v", api)
	}
	b, _ := json.Marshal(api.Start)
	if string(b) != `"return+%7B%7D"` {
		t.Errorf("script marshals as %s", b)
	}
	err := json.Unmarshal([]byte(`{"start": 5}`), &api)
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) || te.Field != "start" {
		t.Errorf("number script: %v, want a type error naming start", err)
	}
}

func TestBasePriceAndPublic(t *testing.T) {
	st := market.ServiceType{
		DurationToPrice: []market.PriceSet{{Price: market.MustDecimal("5")}, {Price: market.MustDecimal("0.3")}, {Price: market.MustDecimal("7")}},
		ServiceAPI: market.ServiceAPI{
			Start:  market.Script{Encoded: "a", Hash: "h1"},
			Stop:   market.Script{Encoded: "b", Hash: "h2"},
			Refund: market.Script{Encoded: "c", Hash: "h3"},
			Normal: map[string]string{"f": "/f"},
		},
	}
	if got := st.BasePrice(); got != market.MustDecimal("0.3") {
		t.Errorf("base price %s, want 0.3", got)
	}
	if got := (&market.ServiceType{}).BasePrice(); got != 0 {
		t.Errorf("base price of no sets %s", got)
	}
	pub := st.Public()
	if pub.ServiceAPI.Start.Encoded != "" || pub.ServiceAPI.Stop.Encoded != "" || pub.ServiceAPI.Refund.Encoded != "" {
		t.Errorf("public copy shows scripts: %+v", pub.ServiceAPI)
	}
	if st.ServiceAPI.Start.Encoded != "a" {
		t.Error("Public changed the original")
	}
	if pub.ServiceAPI.Normal["f"] != "/f" {
		t.Error("Public dropped the normal API")
	}
}

func TestCallerRights(t *testing.T) {
	p := &market.Provider{Name: "p", SignAddress: "ASign"}
	tests := []struct {
		name           string
		c              market.Caller
		manage, read   bool
		operator, admn bool
	}{
		{"anonymous", market.Caller{}, false, false, false, false},
		{"admin", market.Caller{OperatorRole: market.RoleAdmin}, true, true, true, true},
		{"support", market.Caller{OperatorRole: market.RoleSupport}, false, true, true, false},
		{"sign address", market.Caller{Address: "ASign"}, true, true, false, false},
		{"other address", market.Caller{Address: "AOther"}, false, false, false, false},
	}
	for _, tc := range tests {
		if tc.c.CanManage(p) != tc.manage || tc.c.CanRead(p) != tc.read || tc.c.IsOperator() != tc.operator || tc.c.IsAdmin() != tc.admn {
			t.Errorf("%s: manage %t read %t operator %t admin %t", tc.name, tc.c.CanManage(p), tc.c.CanRead(p), tc.c.IsOperator(), tc.c.IsAdmin())
		}
	}
	// A provider without a sign address is managed by operators only.
	if (market.Caller{Address: ""}).CanManage(&market.Provider{}) {
		t.Error("empty address manages a provider without sign address")
	}
}
