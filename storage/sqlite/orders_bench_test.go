package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vmarket/vmarket/market"
)

// seedOrders bulk-inserts n orders spread over addrs buyers and 100
// recipients, in one transaction.
func seedOrders(b *testing.B, db *DB, n, addrs int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now().Unix()
	err := db.Update(ctx, func(mtx market.Tx) error {
		t := mtx.(*tx)
		if _, err := t.q.ExecContext(ctx, `INSERT INTO providers (id, wallet_address, api_host, created_at, updated_at) VALUES ('p', 'w', 'h', 0, 0);
			INSERT INTO categories (id, provider_id, name, created_at, updated_at) VALUES ('c', 'p', 'c', 0, 0);
			INSERT INTO service_types (id, category_id, provider_id, name, refundable, base_price, duration_to_price, created_at, updated_at)
			VALUES ('s', 'c', 'p', 's', 1, 100000000, '[]', 0, 0)`); err != nil {
			return err
		}
		statuses := []market.OrderStatus{market.OrderPending, market.OrderPaid, market.OrderFiled, market.OrderComplete, market.OrderRefund}
		o := &market.Order{ServiceID: "s", Service: "s", ServiceCategoryID: "c", Provider: "p", Duration: 24,
			Amount: market.NewDecimal(24), ServiceOptions: map[string]string{"region": "Hong Kong"}, ServiceStatus: market.ServiceRunning,
			PublicKey: "4EyuJtDzQH15qAfnTPgqa8QB4ZU1dzqihdCs13UYEiV4"}
		for i := 0; i < n; i++ {
			o.ID = fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
			o.Address = "A" + strconv.Itoa(i%addrs)
			o.Recipient = "R" + strconv.Itoa(i%100)
			o.Status = statuses[(i/addrs)%len(statuses)]
			o.CreatedAt, o.UpdatedAt = now-int64(n-i), now
			if err := t.CreateOrder(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkOrderList1M lists one buyer's orders (first page of 10, as the
// V Cloud client asks, and filtered by status) in a database of 1,000,000
// orders, and reports p50/p99 latency and the database size per order.
// Set VMARKET_BENCH_ORDERS to change the count.
func BenchmarkOrderList1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("VMARKET_BENCH_ORDERS")); err == nil && v > 0 {
		n = v
	}
	const addrs = 10_000
	path := filepath.Join(b.TempDir(), "bench.db")
	ctx := context.Background()
	db, err := Open(ctx, path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	seedOrders(b, db, n, addrs)
	if _, err := db.writer.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE); ANALYZE"); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(path)
	b.Logf("seeded %d orders in %s, %d bytes", n, time.Since(start).Round(time.Millisecond), st.Size())

	filters := []market.OrderFilter{
		{Page: market.Page{Current: 1, PageSize: 10}},
		{Statuses: []market.OrderStatus{market.OrderFiled}, Page: market.Page{Current: 1, PageSize: 10}},
	}
	lat := make([]time.Duration, 0, b.N)
	r := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := filters[i%len(filters)]
		f.Party = "A" + strconv.Itoa(r.IntN(addrs))
		t0 := time.Now()
		list, total, err := db.Orders(ctx, f)
		lat = append(lat, time.Since(t0))
		if err != nil || total == 0 || len(list) == 0 {
			b.Fatalf("list: %v (%d, %d)", err, total, len(list))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(st.Size())/float64(n), "bytes/order")
}
