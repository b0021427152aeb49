package reconcile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
)

// Bounds of the filing window searched for a day's withdrawals.
const (
	// clockSkew is how far before the day an order may have been filed
	// and still have withdrawn on the day by VCC's clock.
	clockSkew = time.Hour
	// filingLag is how long after the day an order withdrawn on the day
	// may be filed (a start that withdrew and was retried later).
	filingLag = 24 * time.Hour
	// orderPage is the page size of the order scan.
	orderPage = 500
)

// StatusSuccess is the VCC status every filed top-up must have: the start
// script reported its withdrawal SUCCESS before the order was filed.
const StatusSuccess = "SUCCESS"

// Expected is one withdrawal VCC must have made: what vcc.reconcile
// compares ({orderNo, amount, status}).
type Expected struct {
	OrderNo string // the order id, VCC's order number
	Amount  string // yuan, two decimals
	Status  string // StatusSuccess
	// FiledTS is when vmarket filed the order (ordering only).
	FiledTS int64
}

// collect returns the withdrawals VCC must have made on the day starting
// at start for provider's gas top-up orders, and the orders it cannot
// compare.
func (s *Service) collect(ctx context.Context, provider string, start time.Time) ([]Expected, []Skipped, error) {
	types, _, err := s.cfg.Market.ServiceTypes(ctx, market.ServiceTypeFilter{Provider: provider,
		Page: market.Page{Current: 1, PageSize: market.MaxPageSize}})
	if err != nil {
		return nil, nil, fmt.Errorf("reconcile: service types of %s: %w", provider, err)
	}
	var topUps []string
	for _, t := range types {
		if IsTopUpType(&t) {
			topUps = append(topUps, t.ID)
		}
	}
	if len(topUps) == 0 {
		return nil, nil, market.Invalid("provider", "provider %s has no gas top-up service type (one whose serviceOptions declare %s)", provider, TopUpOption)
	}
	from, to := start.Add(-clockSkew), start.AddDate(0, 0, 1).Add(filingLag)
	var orders []market.Order
	seen := map[string]bool{}
	for _, id := range topUps {
		for page := 1; ; page++ {
			list, total, err := s.cfg.Market.Orders(ctx, market.OrderFilter{ServiceID: id,
				ServiceFrom: from.Unix(), CreatedTo: to.Unix(), Page: market.Page{Current: page, PageSize: orderPage}})
			if err != nil {
				return nil, nil, fmt.Errorf("reconcile: orders of type %s: %w", id, err)
			}
			for _, o := range list {
				// Orders created while paging shift the pages: skip repeats.
				if !seen[o.ID] {
					seen[o.ID] = true
					orders = append(orders, o)
				}
			}
			if len(list) < orderPage || page*orderPage >= total {
				break
			}
		}
	}
	exp, skipped := SelectVCC(orders, start.Format(DayLayout))
	return exp, skipped, nil
}

// IsTopUpType reports whether a service type sells gas top-ups: its
// serviceOptions declare TopUpOption.
func IsTopUpType(t *market.ServiceType) bool {
	_, ok := t.ServiceOptions[TopUpOption]
	return ok
}

// SelectVCC picks, among gas top-up orders, the withdrawals VCC must have
// made on day (yyyyMMdd, China time), sorted by filing time: see the
// package documentation. Orders with an amount that cannot be read are
// returned as skipped.
func SelectVCC(orders []market.Order, day string) ([]Expected, []Skipped) {
	exp := []Expected{}
	skipped := []Skipped{}
	for i := range orders {
		o := &orders[i]
		if o.FiledTS <= 0 || o.AmountRefunded > 0 {
			continue
		}
		if d, ok := WithdrawalDay(o); !ok || d != day {
			continue
		}
		raw := o.ServiceOptions[TopUpOption]
		fen, err := ParseFen(raw)
		if err == nil && fen <= 0 {
			err = fmt.Errorf("not positive")
		}
		if err != nil {
			skipped = append(skipped, Skipped{OrderID: o.ID, Reason: fmt.Sprintf("serviceOptions.%s %q is not an amount in yuan: %v", TopUpOption, raw, err)})
			continue
		}
		exp = append(exp, Expected{OrderNo: o.ID, Amount: FormatFen(fen), Status: StatusSuccess, FiledTS: o.FiledTS})
	}
	slices.SortStableFunc(exp, func(a, b Expected) int {
		return cmp.Or(cmp.Compare(a.FiledTS, b.FiledTS), strings.Compare(a.OrderNo, b.OrderNo))
	})
	return exp, skipped
}

// WithdrawalDay is the China-time day (yyyyMMdd) an order's withdrawal
// was made: the day of its user service's withdrawTime (VCC's clock, the
// day its file lists it under), else of its filing; false when the order
// was never filed.
func WithdrawalDay(o *market.Order) (string, bool) {
	if wt, ok := o.UserService["withdrawTime"].(string); ok {
		if t, err := time.ParseInLocation(VCCTimeLayout, strings.TrimSpace(wt), ChinaTime()); err == nil {
			return t.Format(DayLayout), true
		}
	}
	if o.FiledTS <= 0 {
		return "", false
	}
	return time.Unix(o.FiledTS, 0).In(ChinaTime()).Format(DayLayout), true
}

// ParseFen reads a dot-decimal amount in yuan with at most two decimals
// ("50", "12.5", "12.50") as fen.
func ParseFen(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") || len(frac) > 2 || strings.Trim(whole+frac, "0123456789") != "" {
		return 0, fmt.Errorf("not a dot decimal with at most 2 decimals")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > 1<<50 {
		return 0, fmt.Errorf("out of range")
	}
	f, _ := strconv.ParseInt((frac + "00")[:2], 10, 64)
	return w*100 + f, nil
}

// FormatFen writes fen as yuan with two decimals ("12.50").
func FormatFen(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
