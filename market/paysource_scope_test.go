package market_test

import (
	"testing"

	"github.com/vmarket/vmarket/market"
)

// TestProviderNameReservedForPaySources checks that no provider can take
// the settings scope of a payment source.
func TestProviderNameReservedForPaySources(t *testing.T) {
	tests := []struct {
		name    string
		wantErr bool
	}{
		{name: "paysource:kassa24", wantErr: true},
		{name: "paysource:", wantErr: true},
		{name: "kassa24", wantErr: false},
		{name: "my-paysource:x", wantErr: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &market.Provider{Name: tc.name, WalletAddress: "AR63JhzUU6MxC9mHHMVs3gmRRjVpkXiMcUS", APIHost: "https://p.example"}
			err := p.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate(%q) = %v, want error %v", tc.name, err, tc.wantErr)
			}
			if err != nil && market.AsError(err).Field != "name" {
				t.Fatalf("error names field %q", market.AsError(err).Field)
			}
		})
	}
}
