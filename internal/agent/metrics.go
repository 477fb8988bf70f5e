package agent

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	matchesDesc = prometheus.NewDesc("slxsh_acl_matches_total",
		"Connections that matched an ACL entry.", []string{"family", "acl", "seq", "direction"}, nil)
	refusedDesc = prometheus.NewDesc("slxsh_acl_refusals_total",
		"Connections an ACL entry refused (over a limit, or denied).", []string{"family", "acl", "seq", "direction"}, nil)
	repairsDesc = prometheus.NewDesc("slxsh_agent_drift_repairs_total",
		"Times the agent restored its table after someone else changed or deleted it.", nil, nil)
	failuresDesc = prometheus.NewDesc("slxsh_agent_apply_failures_total",
		"Failed background applies (drift repair, reload).", nil, nil)
	sessionsDesc = prometheus.NewDesc("slxsh_acl_sessions",
		"Open sessions of a limited ACL entry (all keys, each session once).", []string{"family", "acl", "seq"}, nil)
	atLimitDesc = prometheus.NewDesc("slxsh_acl_keys_at_limit",
		"Keys (sources, prefixes, ...) of a limited ACL entry now at its limit.", []string{"family", "acl", "seq"}, nil)
	startupDesc = prometheus.NewDesc("slxsh_agent_startup_config_loaded",
		"0 when the startup-config could not be loaded at start or at the last reload (show startup-config says why), else 1.", nil, nil)
	fillDesc = prometheus.NewDesc("slxsh_set_elements",
		"Keys a set that the packet path fills holds now (a full set refuses new keys).", []string{"set", "kind"}, nil)
	capacityDesc = prometheus.NewDesc("slxsh_set_capacity",
		"Keys a set that the packet path fills can hold.", []string{"set", "kind"}, nil)
	upDesc = prometheus.NewDesc("slxsh_agent_counters_up",
		"1 when the last read of the kernel counters worked.", nil, nil)
)

// collector exports the agent's counters; it reads them from the kernel at
// scrape time, so there is no second copy to keep in step, and the
// sessions from the tracker's index, all without the agent's lock (a
// scrape never waits for a change).
type collector struct{ a *Agent }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{matchesDesc, refusedDesc, sessionsDesc, atLimitDesc, repairsDesc, failuresDesc, startupDesc, upDesc, fillDesc, capacityDesc}, eventDescs...) {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.a.Counts()
	up := 1.0
	if err != nil {
		up = 0
	}
	for _, e := range counts {
		labels := []string{e.Family.String(), e.ACL, strconv.Itoa(e.Seq), e.Direction.String()}
		ch <- prometheus.MustNewConstMetric(matchesDesc, prometheus.CounterValue, float64(e.Matches), labels...)
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(e.Refused), labels...)
	}
	for _, e := range c.a.SessionStats() {
		labels := []string{e.Family.String(), e.ACL, strconv.Itoa(e.Seq)}
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(e.Sessions), labels...)
		ch <- prometheus.MustNewConstMetric(atLimitDesc, prometheus.GaugeValue, float64(e.AtLimit), labels...)
	}
	for _, f := range c.a.SetFill() {
		ch <- prometheus.MustNewConstMetric(fillDesc, prometheus.GaugeValue, float64(f.Elements), f.Set, f.Kind)
		ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(f.Capacity), f.Set, f.Kind)
	}
	repairs, failures := c.a.repairs.Load(), c.a.failures.Load()
	ch <- prometheus.MustNewConstMetric(repairsDesc, prometheus.CounterValue, float64(repairs))
	ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(failures))
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	loaded := 0.0
	if c.a.StartupLoaded() {
		loaded = 1
	}
	ch <- prometheus.MustNewConstMetric(startupDesc, prometheus.GaugeValue, loaded)
	c.a.collectEvents(ch)
}

// MetricsHandler returns the /metrics handler for a: the ACL counters plus
// the Go runtime and process collectors.
func MetricsHandler(a *Agent) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{a}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// ServeMetrics serves /metrics on ln until ctx ends.
func ServeMetrics(ctx context.Context, ln net.Listener, a *Agent) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", MetricsHandler(a))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
