package reconcile

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
)

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		want Clock
		bad  bool
	}{
		{in: "02:30", want: Clock{2, 30}},
		{in: "2:05", want: Clock{2, 5}},
		{in: "23:59", want: Clock{23, 59}},
		{in: " 00:00 ", want: Clock{0, 0}},
		{in: "24:00", bad: true},
		{in: "12:60", bad: true},
		{in: "12:5", bad: true},
		{in: "1230", bad: true},
		{in: "", bad: true},
		{in: "-1:00", bad: true},
		{in: "noon", bad: true},
	}
	for _, tc := range tests {
		got, err := ParseClock(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseClock(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestClockNext(t *testing.T) {
	cn := ChinaTime()
	tests := []struct {
		now  time.Time
		at   Clock
		want time.Time
	}{
		{time.Date(2025, 3, 14, 1, 0, 0, 0, cn), Clock{2, 0}, time.Date(2025, 3, 14, 2, 0, 0, 0, cn)},
		{time.Date(2025, 3, 14, 2, 0, 0, 0, cn), Clock{2, 0}, time.Date(2025, 3, 15, 2, 0, 0, 0, cn)},
		{time.Date(2025, 3, 14, 3, 0, 0, 0, cn), Clock{2, 0}, time.Date(2025, 3, 15, 2, 0, 0, 0, cn)},
		// 2025-03-13 19:00 UTC is 03:00 on the 14th in China.
		{time.Date(2025, 3, 13, 19, 0, 0, 0, time.UTC), Clock{2, 0}, time.Date(2025, 3, 15, 2, 0, 0, 0, cn)},
		{time.Date(2025, 12, 31, 23, 30, 0, 0, cn), Clock{0, 15}, time.Date(2026, 1, 1, 0, 15, 0, 0, cn)},
	}
	for _, tc := range tests {
		if got := tc.at.Next(tc.now); !got.Equal(tc.want) {
			t.Errorf("%v.Next(%v) = %v, want %v", tc.at, tc.now, got, tc.want)
		}
	}
	if y := Yesterday(time.Date(2025, 3, 13, 17, 0, 0, 0, time.UTC)); y != "20250313" {
		t.Errorf("Yesterday of 01:00 on the 14th in China: %s", y)
	}
}

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	reports map[string]*Report
}

func (m *memStore) key(source, provider, day string) string {
	return source + "|" + provider + "|" + day
}

func (m *memStore) PutReport(_ context.Context, r *Report) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reports == nil {
		m.reports = map[string]*Report{}
	}
	m.reports[m.key(r.Source, r.Provider, r.Day)] = r
	return nil
}

func (m *memStore) Report(_ context.Context, source, provider, day string) (*Report, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.reports[m.key(source, provider, day)]; ok {
		return r, nil
	}
	return nil, market.NotFound("report", day)
}

func (m *memStore) Reports(context.Context, Filter) ([]Summary, int, error) { return nil, 0, nil }

// scheduleRun is one reconciliation the schedule asked for.
type scheduleRun struct {
	provider, day string
	at            time.Time
}

func TestRunDaily(t *testing.T) {
	cn := ChinaTime()
	tests := []struct {
		name  string
		start time.Time
		// stored are days that have a report at start.
		stored []string
		// fail are the runs (by index) that fail.
		fail  map[int]bool
		waits int
		want  []scheduleRun
		// wantWaits are the sleeps asked for.
		wantWaits []time.Duration
	}{
		{
			name: "catches up, runs daily, retries a failure", start: time.Date(2025, 3, 14, 1, 0, 0, 0, cn),
			fail: map[int]bool{1: true}, waits: 3,
			want: []scheduleRun{
				{"towngas-vcc", "20250312", time.Date(2025, 3, 14, 1, 0, 0, 0, cn)}, // the 13th's 02:00 run was missed
				{"towngas-vcc", "20250313", time.Date(2025, 3, 14, 2, 0, 0, 0, cn)}, // fails
				{"towngas-vcc", "20250313", time.Date(2025, 3, 14, 2, 30, 0, 0, cn)},
				{"towngas-vcc", "20250314", time.Date(2025, 3, 15, 2, 0, 0, 0, cn)},
			},
			wantWaits: []time.Duration{time.Hour, DefaultRetry, 23*time.Hour + 30*time.Minute},
		},
		{
			name: "nothing to catch up", start: time.Date(2025, 3, 14, 3, 0, 0, 0, cn), stored: []string{"20250313"}, waits: 1,
			want:      []scheduleRun{{"towngas-vcc", "20250314", time.Date(2025, 3, 15, 2, 0, 0, 0, cn)}},
			wantWaits: []time.Duration{23 * time.Hour},
		},
		{
			name: "retried every 30 minutes until it succeeds", start: time.Date(2025, 3, 14, 3, 0, 0, 0, cn),
			stored: []string{"20250313"}, fail: map[int]bool{0: true, 1: true}, waits: 3,
			want: []scheduleRun{
				{"towngas-vcc", "20250314", time.Date(2025, 3, 15, 2, 0, 0, 0, cn)},
				{"towngas-vcc", "20250314", time.Date(2025, 3, 15, 2, 30, 0, 0, cn)},
				{"towngas-vcc", "20250314", time.Date(2025, 3, 15, 3, 0, 0, 0, cn)},
			},
			wantWaits: []time.Duration{23 * time.Hour, DefaultRetry, DefaultRetry},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{}
			for _, d := range tc.stored {
				st.PutReport(context.Background(), &Report{Summary: Summary{Source: SourceVCC, Provider: DefaultProvider, Day: d}})
			}
			now := tc.start
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var runs []scheduleRun
			var waits []time.Duration
			s := &Service{cfg: Config{Store: st, Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)}}
			s.wait = func(ctx context.Context, d time.Duration) bool {
				if len(waits) == tc.waits {
					cancel()
					return false
				}
				waits = append(waits, d)
				now = now.Add(d)
				return true
			}
			s.run = func(ctx context.Context, caller market.Caller, req Request) (*Report, error) {
				if !caller.IsAdmin() {
					t.Errorf("scheduled run as %+v", caller)
				}
				i := len(runs)
				runs = append(runs, scheduleRun{req.Provider, req.Day, now})
				if tc.fail[i] {
					return nil, errors.New("VCC has no file yet")
				}
				return &Report{}, st.PutReport(ctx, &Report{Summary: Summary{Source: SourceVCC, Provider: req.Provider, Day: req.Day}})
			}
			if err := s.RunDaily(ctx, Schedule{At: Clock{2, 0}}); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(runs, tc.want, func(a, b scheduleRun) bool {
				return a.provider == b.provider && a.day == b.day && a.at.Equal(b.at)
			}) {
				t.Fatalf("runs:\n got %v\nwant %v", runs, tc.want)
			}
			if !slices.Equal(waits, tc.wantWaits) {
				t.Fatalf("waits %v, want %v", waits, tc.wantWaits)
			}
		})
	}
}
