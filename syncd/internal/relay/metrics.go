package relay

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the relay's Prometheus series: counts, sizes and latencies,
// never IDs of people or documents as labels.
type Metrics struct {
	reg         *prometheus.Registry
	connections prometheus.Gauge
	documents   prometheus.Gauge
	messages    *prometheus.CounterVec // direction, type
	bytes       *prometheus.CounterVec // direction
	syncLatency prometheus.Histogram
	quarantined *prometheus.CounterVec // what: message, chunk
	refused     *prometheus.CounterVec // reason
	readWaits   prometheus.Counter
	lowered     prometheus.Counter
	whole       prometheus.Counter
	inStep      prometheus.Counter
	restarts    prometheus.CounterFunc
}

// NewMetrics registers the relay's series on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "haven_relay_connections", Help: "Open websocket connections."})
	m.documents = prometheus.NewGauge(prometheus.GaugeOpts{Name: "haven_relay_documents", Help: "Documents the relay holds."})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haven_relay_messages_total", Help: "Protocol messages by direction and type."}, []string{"direction", "type"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haven_relay_bytes_total", Help: "Frame bytes by direction."}, []string{"direction"})
	m.syncLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "haven_relay_sync_seconds", Help: "From a sync message's arrival to the replies and fan-out it caused being queued for sending.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
	m.quarantined = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haven_relay_quarantined_total", Help: "Sync messages that crashed a CRDT worker, and stored chunks that failed to load."}, []string{"what"})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "haven_relay_refused_total", Help: "Connections and messages refused, by reason."}, []string{"reason"})
	m.readWaits = prometheus.NewCounter(prometheus.CounterOpts{Name: "haven_relay_read_waits_total",
		Help: "Frames a connection waited to read because its device was over its read rate."})
	m.lowered = prometheus.NewCounter(prometheus.CounterOpts{Name: "haven_relay_goroutines_lowered_total",
		Help: "Connection goroutines (read loop, bootstrap) moved to a low-priority thread because their device was suspect."})
	m.whole = prometheus.NewCounter(prometheus.CounterOpts{Name: "haven_relay_whole_answers_total",
		Help: "Documents sent whole, read from the store, to a peer that held nothing of them (conn.wholeFromStore)."})
	m.inStep = prometheus.NewCounter(prometheus.CounterOpts{Name: "haven_relay_in_step_answers_total",
		Help: "Sync messages answered without a CRDT worker: their sender held the document exactly as the relay does (answerInStep)."})
	// Series exist from the start, at zero, so dashboards and alerts see them.
	for _, w := range []string{"message", "chunk"} {
		m.quarantined.WithLabelValues(w)
	}
	for _, d := range []string{"in", "out"} {
		m.bytes.WithLabelValues(d)
		for _, t := range []string{"join", "peer", "sync", "request", "doc-unavailable", "ephemeral", "error"} {
			m.messages.WithLabelValues(d, t)
		}
	}
	m.reg.MustRegister(m.connections, m.documents, m.messages, m.bytes, m.syncLatency, m.quarantined, m.refused, m.readWaits, m.lowered, m.whole, m.inStep,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// WatchRestarts exports a counter of CRDT worker restarts.
func (m *Metrics) WatchRestarts(count func() int64) {
	m.restarts = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "haven_relay_worker_restarts_total", Help: "CRDT worker processes restarted after a crash."},
		func() float64 { return float64(count()) })
	m.reg.MustRegister(m.restarts)
}

// WatchTimeouts exports a counter of CRDT workers killed for a call past
// its deadline (each also counted as a restart).
func (m *Metrics) WatchTimeouts(count func() int64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "haven_relay_worker_timeouts_total",
		Help: "CRDT worker processes killed because a call ran past its deadline."},
		func() float64 { return float64(count()) }))
}

// WatchWorkerDocuments exports the documents the CRDT workers hold open
// and the memory the workers estimate they take (-doc-memory, -doc-idle),
// asked of the workers once a scrape.
func (m *Metrics) WatchWorkerDocuments(usage func() (docs int, bytes int64)) {
	m.reg.MustRegister(&workerDocs{usage: usage,
		docs: prometheus.NewDesc("haven_relay_worker_open_documents", "Documents the CRDT workers hold in memory.", nil, nil),
		bytes: prometheus.NewDesc("haven_relay_worker_document_bytes",
			"The CRDT workers' estimate of the memory the documents they hold take (what -doc-memory bounds).", nil, nil)})
}

// workerDocs collects both of WatchWorkerDocuments' gauges from one call.
type workerDocs struct {
	usage       func() (int, int64)
	docs, bytes *prometheus.Desc
}

func (w *workerDocs) Describe(ch chan<- *prometheus.Desc) { ch <- w.docs; ch <- w.bytes }

func (w *workerDocs) Collect(ch chan<- prometheus.Metric) {
	docs, bytes := w.usage()
	ch <- prometheus.MustNewConstMetric(w.docs, prometheus.GaugeValue, float64(docs))
	ch <- prometheus.MustNewConstMetric(w.bytes, prometheus.GaugeValue, float64(bytes))
}

// StreamProgress is how far this node has applied one of the cluster's
// streams, and how far the cluster holds it (see WatchCluster).
type StreamProgress struct {
	Stream        string
	Applied, Last uint64
	Known         bool // Last was answered
}

// WatchCluster exports, per stream of the cluster, the last sequence this
// node applied and the last the cluster holds, asked once a scrape: the
// difference is how far behind the other nodes this node serves.
func (m *Metrics) WatchCluster(progress func() []StreamProgress) {
	m.reg.MustRegister(&clusterProgress{progress: progress,
		applied: prometheus.NewDesc("haven_cluster_applied_sequence",
			"The last sequence of the cluster's stream this node has applied to its own store.", []string{"stream"}, nil),
		last: prometheus.NewDesc("haven_cluster_last_sequence",
			"The last sequence of the cluster's stream, as the cluster holds it (absent while it has no leader).", []string{"stream"}, nil)})
}

// clusterProgress collects WatchCluster's gauges from one call.
type clusterProgress struct {
	progress      func() []StreamProgress
	applied, last *prometheus.Desc
}

func (c *clusterProgress) Describe(ch chan<- *prometheus.Desc) { ch <- c.applied; ch <- c.last }

func (c *clusterProgress) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.progress() {
		ch <- prometheus.MustNewConstMetric(c.applied, prometheus.GaugeValue, float64(p.Applied), p.Stream)
		if p.Known {
			ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, float64(p.Last), p.Stream)
		}
	}
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
