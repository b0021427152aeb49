// Package metrics exposes vmarket's Prometheus metrics: script and hook
// runs, the Lua state pool, the lifecycle job queue, orders by status and
// HTTP requests. Everything lives in a registry of its own (no global
// state); serve it with Handler.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vmarket/vmarket/runtime"
)

// Sources are the values read at scrape time; nil ones are left out.
type Sources struct {
	// Engine returns the Lua engine's counters.
	Engine func() runtime.Stats
	// QueueDepth counts lifecycle jobs due now.
	QueueDepth func(ctx context.Context) (int, error)
	// OrderCounts counts orders by status.
	OrderCounts func(ctx context.Context) (map[string]int, error)
	// RecordsDropped counts run records lost (queue full, store failure).
	RecordsDropped func() uint64
	// Timeout bounds each database read of a scrape (2 s).
	Timeout time.Duration
}

// Metrics holds the collectors. It is safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	runs        *prometheus.CounterVec
	runErrors   *prometheus.CounterVec
	runDuration *prometheus.HistogramVec
	requests    *prometheus.CounterVec
	reqDuration *prometheus.HistogramVec
}

// New builds the registry with the run and request collectors, the Go and
// process collectors, and gauges over src.
func New(src Sources) *Metrics {
	if src.Timeout <= 0 {
		src.Timeout = 2 * time.Second
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmarket_script_runs_total", Help: "Script and hook runs, by kind (script, hook) and name (script step or module.function).",
		}, []string{"kind", "name"}),
		runErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmarket_script_errors_total", Help: "Failed script and hook runs, by kind, name and the limit that stopped them (empty for plain errors).",
		}, []string{"kind", "name", "limit"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vmarket_script_run_duration_seconds", Help: "Duration of script and hook runs.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind", "name"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vmarket_http_requests_total", Help: "HTTP requests, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		reqDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vmarket_http_request_duration_seconds", Help: "Duration of HTTP requests, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.runs, m.runErrors, m.runDuration, m.requests, m.reqDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.Engine != nil {
		reg.MustRegister(newEngineCollector(src.Engine))
	}
	if src.QueueDepth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "vmarket_job_queue_depth", Help: "Lifecycle jobs due now and not yet done.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), src.Timeout)
			defer cancel()
			n, err := src.QueueDepth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
	if src.OrderCounts != nil {
		reg.MustRegister(&ordersCollector{counts: src.OrderCounts, timeout: src.Timeout,
			desc: prometheus.NewDesc("vmarket_orders", "Orders by status.", []string{"status"}, nil)})
	}
	if src.RecordsDropped != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "vmarket_run_records_dropped_total", Help: "Run records lost because the record queue was full or the database failed.",
		}, func() float64 { return float64(src.RecordsDropped()) }))
	}
	return m
}

// Registry returns the registry (to add collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRun counts one script or hook run.
func (m *Metrics) ObserveRun(kind, name string, ok bool, limit string, d time.Duration) {
	m.runs.WithLabelValues(kind, name).Inc()
	if !ok {
		m.runErrors.WithLabelValues(kind, name, limit).Inc()
	}
	m.runDuration.WithLabelValues(kind, name).Observe(d.Seconds())
}

// ObserveRequest counts one HTTP request; route is the matched route
// pattern (not the path, to bound the series).
func (m *Metrics) ObserveRequest(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.reqDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// engineCollector reads the Lua engine's counters at scrape time.
type engineCollector struct {
	stats                   func() runtime.Stats
	states, pool, cacheDesc *prometheus.Desc
}

func newEngineCollector(stats func() runtime.Stats) *engineCollector {
	return &engineCollector{stats: stats,
		states:    prometheus.NewDesc("vmarket_lua_states", "Lua states by state: idle, in_use, max (pool size).", []string{"state"}, nil),
		pool:      prometheus.NewDesc("vmarket_lua_pool_events_total", "Lua pool events: created, discarded states; busy rejections.", []string{"event"}, nil),
		cacheDesc: prometheus.NewDesc("vmarket_lua_cache_events_total", "Compiled-script cache events: hit, miss, compile, eviction.", []string{"event"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.states
	ch <- c.pool
	ch <- c.cacheDesc
}

// Collect implements prometheus.Collector.
func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	alive := int64(st.StatesCreated) - int64(st.StatesDiscarded)
	inUse := max(alive-int64(st.Idle), 0)
	ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(st.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(inUse), "in_use")
	ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(st.MaxStates), "max")
	ch <- prometheus.MustNewConstMetric(c.pool, prometheus.CounterValue, float64(st.StatesCreated), "created")
	ch <- prometheus.MustNewConstMetric(c.pool, prometheus.CounterValue, float64(st.StatesDiscarded), "discarded")
	ch <- prometheus.MustNewConstMetric(c.pool, prometheus.CounterValue, float64(st.BusyRejections), "busy")
	ch <- prometheus.MustNewConstMetric(c.cacheDesc, prometheus.CounterValue, float64(st.Cache.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.cacheDesc, prometheus.CounterValue, float64(st.Cache.Misses), "miss")
	ch <- prometheus.MustNewConstMetric(c.cacheDesc, prometheus.CounterValue, float64(st.Cache.Compiles), "compile")
	ch <- prometheus.MustNewConstMetric(c.cacheDesc, prometheus.CounterValue, float64(st.Cache.Evictions), "eviction")
}

// ordersCollector counts orders by status at scrape time.
type ordersCollector struct {
	counts  func(ctx context.Context) (map[string]int, error)
	timeout time.Duration
	desc    *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *ordersCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *ordersCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), status)
	}
}
