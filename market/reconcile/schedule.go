package reconcile

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vmarket/vmarket/market"
)

// DefaultRetry is the wait before a failed scheduled reconciliation is
// tried again.
const DefaultRetry = 30 * time.Minute

// Clock is a time of day in China time.
type Clock struct {
	Hour, Minute int
}

// ParseClock reads "HH:MM" (24-hour).
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hour, herr := strconv.Atoi(h)
	minute, merr := strconv.Atoi(m)
	if !ok || herr != nil || merr != nil || len(m) != 2 || len(h) < 1 || len(h) > 2 ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 {
		return Clock{}, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	return Clock{Hour: hour, Minute: minute}, nil
}

// String writes the clock as HH:MM.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// Next is the first time after now that the clock shows c in China time.
func (c Clock) Next(now time.Time) time.Time {
	cn := now.In(ChinaTime())
	t := time.Date(cn.Year(), cn.Month(), cn.Day(), c.Hour, c.Minute, 0, 0, cn.Location())
	if !t.After(now) {
		t = t.AddDate(0, 0, 1)
	}
	return t
}

// Schedule is a daily reconciliation.
type Schedule struct {
	// At is when the previous day is reconciled, China time.
	At Clock
	// Providers are reconciled one after the other (DefaultProvider when
	// empty).
	Providers []string
	// Retry is the wait before a failed run is tried again (DefaultRetry);
	// a day is retried until it succeeds or the next day is due.
	Retry time.Duration
}

// RunDaily reconciles the previous day (China time) of each provider with
// VCC every day at sch.At until ctx ends. At start, the day the last
// scheduled time was due for is reconciled at once when it has no report
// yet (a server that was down at that time catches up). A failed run is
// logged, recorded and retried every sch.Retry until it succeeds or the
// next day is due. Reconciling a day again replaces its report, so runs
// never add up.
func (s *Service) RunDaily(ctx context.Context, sch Schedule) error {
	if len(sch.Providers) == 0 {
		sch.Providers = []string{DefaultProvider}
	}
	if sch.Retry <= 0 {
		sch.Retry = DefaultRetry
	}
	// Scheduled runs are the operator's own.
	caller := market.Caller{OperatorRole: market.RoleAdmin, OperatorName: "schedule"}
	log := s.cfg.Logger.With("source", SourceVCC, "schedule", sch.At.String())
	now := s.cfg.Now()
	next := sch.At.Next(now)
	// pending: provider → day still to reconcile.
	pending := map[string]string{}
	due := Yesterday(next.AddDate(0, 0, -1))
	for _, p := range sch.Providers {
		_, err := s.cfg.Store.Report(ctx, SourceVCC, p, due)
		switch market.KindOf(err) {
		case market.KindNotFound:
			pending[p] = due
		case "":
		default:
			log.Warn("scheduled reconciliation: read the last report", "provider", p, "day", due, "err", err)
			pending[p] = due
		}
	}
	log.Info("daily VCC reconciliation scheduled", "providers", sch.Providers, "next", next, "catch_up", len(pending))
	for {
		for _, p := range sch.Providers {
			day, ok := pending[p]
			if !ok {
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			if _, err := s.run(ctx, caller, Request{Provider: p, Day: day}); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("scheduled reconciliation failed, will retry", "provider", p, "day", day, "retry_in", sch.Retry, "err", err)
				continue
			}
			delete(pending, p)
		}
		now = s.cfg.Now()
		wake := next
		if len(pending) > 0 && now.Add(sch.Retry).Before(wake) {
			wake = now.Add(sch.Retry)
		}
		if !s.wait(ctx, wake.Sub(now)) {
			return nil
		}
		if now = s.cfg.Now(); !now.Before(next) {
			day := Yesterday(now)
			for _, p := range sch.Providers {
				if old, ok := pending[p]; ok && old != day {
					log.Error("scheduled reconciliation given up: the next day is due", "provider", p, "day", old)
				}
				pending[p] = day
			}
			next = sch.At.Next(now)
		}
	}
}
