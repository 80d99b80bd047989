// Package metrics exports what a rally hub does as Prometheus metrics:
// connections and their transports, refused requests, upgrades, closes by
// reason, packets and bytes, sockets per namespace, disconnects by reason,
// broadcasts and their deliveries, dropped volatile packets, ack round
// trips, the bytes waiting in write queues and what a multi-server
// adapter reports.
//
//	hub := rally.NewHub(nil)
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.New(hub, nil))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// or, for a registry of its own with the Go runtime and process metrics
// beside rally's, mux.Handle("/metrics", metrics.New(hub, nil).Handler()).
//
// It is built on Prometheus' client_golang rather than OpenTelemetry
// because the Prometheus text format is what gets scraped, and
// client_golang writes it with a handful of dependencies, where
// OpenTelemetry's SDK adds its own stack on top of client_golang, which
// its Prometheus exporter uses anyway.
//
// # Metrics
//
// Counters come from the hub's Observer hooks, as they happen; the gauges
// (connections, sockets, write_queue_bytes, namespaces) from Hub.Stats,
// read at each scrape. With the default prefix:
//
//	rally_connections{transport}                        gauge
//	rally_handshakes_total{transport}                   counter
//	rally_requests_refused_total{code,message}          counter
//	rally_upgrades_total                                counter
//	rally_connections_closed_total{transport,reason}    counter
//	rally_packets_received_total                        counter
//	rally_received_bytes_total                          counter
//	rally_packets_sent_total                            counter
//	rally_sent_bytes_total                              counter
//	rally_write_queue_bytes                             gauge
//	rally_namespaces                                    gauge
//	rally_sockets{namespace}                            gauge
//	rally_socket_connects_total{namespace}              counter
//	rally_socket_disconnects_total{namespace,reason}    counter
//	rally_room_joins_total{namespace}                   counter
//	rally_room_leaves_total{namespace}                  counter
//	rally_broadcasts_total{namespace}                   counter
//	rally_broadcast_deliveries_total{namespace}         counter
//	rally_volatile_dropped_total{namespace}             counter
//	rally_ack_round_trip_seconds{namespace,outcome}     histogram
//	rally_adapter_published_total{namespace}            counter
//	rally_adapter_received_total{namespace}             counter
//	rally_adapter_errors_total{namespace}               counter
//	rally_adapter_timeouts_total{namespace}             counter
//
// A connection closed because its client could not keep up is
// rally_connections_closed_total{reason="write queue full"}. Packets are
// Engine.IO messages (a binary attachment is one of its own); a packet
// counts as sent when it is queued for its client, once per recipient.
// Room joins and leaves leave out the room of the socket's own id.
//
// # The namespace label
//
// Every metric of sockets, broadcasts, acks and adapters carries the
// Socket.IO namespace, bounded so that clients cannot make the number of
// series grow: a child namespace of Hub.OfMatch or Hub.OfRegexp, which a
// client creates by connecting to it, counts under its parent
// ("/(parent 1)" for the first parent); Options.NamespaceLabel maps
// namespaces to labels otherwise, and beyond Options.MaxNamespaces
// distinct labels every further one counts as "other". Options.NoNamespaceLabel
// drops the label altogether.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rallyhq/rally"
)

// Options configure a Collector. The zero value is the default.
type Options struct {
	// Prefix is the first part of every metric name, as Prometheus'
	// Opts.Namespace: "rally" when empty.
	Prefix string
	// ConstLabels are added to every metric, with the same values (a
	// server's name, say). They must not use the metrics' own label
	// names: transport, code, message, reason, namespace, outcome.
	ConstLabels prometheus.Labels
	// AckBuckets are the upper bounds, in seconds, of the ack round trip
	// histogram's buckets; DefaultAckBuckets when nil.
	AckBuckets []float64
	// NoNamespaceLabel drops the namespace label: every namespace
	// counts together.
	NoNamespaceLabel bool
	// NamespaceLabel, when set, gives the namespace label of n. It must
	// be quick, must return few distinct values and must not call the
	// hub: it may run under the hub's lock. When nil, a namespace is
	// labeled with its name, a child of a dynamic namespace (OfMatch,
	// OfRegexp) with its parent's.
	NamespaceLabel func(n *rally.Namespace) string
	// MaxNamespaces bounds the distinct values of the namespace label
	// (DefaultMaxNamespaces when 0); namespaces beyond it are labeled
	// OtherNamespaces.
	MaxNamespaces int
}

// DefaultAckBuckets are the ack round trip buckets of the zero Options,
// in seconds: from a millisecond, acks answered on a local network, to
// ten seconds, the clients that answer late or never.
var DefaultAckBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// DefaultMaxNamespaces is the bound of the namespace label's values when
// Options.MaxNamespaces is 0.
const DefaultMaxNamespaces = 64

// OtherNamespaces is the namespace label of the namespaces beyond
// Options.MaxNamespaces.
const OtherNamespaces = "other"

// Ack round trip outcomes, the values of the outcome label.
const (
	OutcomeOK    = "ok"    // every answer came
	OutcomeError = "error" // the wait ended first (timeout, disconnect, shutdown)
)

// labelNames are the names of the variable labels, which ConstLabels must
// not use.
var labelNames = []string{"transport", "code", "message", "reason", "namespace", "outcome"}

// Collector is a prometheus.Collector of one hub's metrics. Register it
// on a registry, or serve it with Handler.
type Collector struct {
	hub    *rally.Hub
	label  func(*rally.Namespace) string
	max    int
	byNsp  bool     // the metrics below carry a namespace label
	nsVars []string // the namespace label's name, or nothing

	handshakes *prometheus.CounterVec
	refused    *prometheus.CounterVec
	upgrades   prometheus.Counter
	closed     *prometheus.CounterVec
	packetsIn  prometheus.Counter
	bytesIn    prometheus.Counter
	packetsOut prometheus.Counter
	bytesOut   prometheus.Counter

	connects    *prometheus.CounterVec
	disconnects *prometheus.CounterVec
	joins       *prometheus.CounterVec
	leaves      *prometheus.CounterVec
	broadcasts  *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	dropped     *prometheus.CounterVec
	acks        *prometheus.HistogramVec
	published   *prometheus.CounterVec
	received    *prometheus.CounterVec
	adapterErrs *prometheus.CounterVec
	timeouts    *prometheus.CounterVec

	connections *prometheus.Desc
	queued      *prometheus.Desc
	namespaces  *prometheus.Desc
	sockets     *prometheus.Desc

	// spaces maps namespace labels to their metrics. It is replaced,
	// never changed (mu serializes the replacements), and holds at most
	// max+1 entries (OtherNamespaces).
	spaces atomic.Pointer[map[string]*space]
	mu     sync.Mutex
	single *space // the only space, with NoNamespaceLabel
}

// space holds the metrics of one namespace label, resolved once.
type space struct {
	label                          string
	connects, joins, leaves        prometheus.Counter
	broadcasts, deliveries         prometheus.Counter
	dropped                        prometheus.Counter
	published, received, errs, tos prometheus.Counter
	ackOK, ackErr                  prometheus.Observer
}

// New returns a Collector of hub's metrics, which starts counting at
// once: it adds an Observer to hub, for good (a hub's observers cannot be
// removed). opts may be nil. Each Collector counts on its own: make one
// per hub, and register it once per registry. New panics if
// opts.ConstLabels uses a name of the metrics' own labels.
func New(hub *rally.Hub, opts *Options) *Collector {
	var o Options
	if opts != nil {
		o = *opts
	}
	for _, name := range labelNames {
		if _, ok := o.ConstLabels[name]; ok {
			panic("rally/metrics: Options.ConstLabels uses the label name " + strconv.Quote(name) + " of a metric")
		}
	}
	if o.Prefix == "" {
		o.Prefix = "rally"
	}
	if o.AckBuckets == nil {
		o.AckBuckets = DefaultAckBuckets
	}
	if o.MaxNamespaces <= 0 {
		o.MaxNamespaces = DefaultMaxNamespaces
	}
	if o.NamespaceLabel == nil {
		o.NamespaceLabel = defaultLabel
	}
	c := &Collector{hub: hub, label: o.NamespaceLabel, max: o.MaxNamespaces, byNsp: !o.NoNamespaceLabel}
	if c.byNsp {
		c.nsVars = []string{"namespace"}
	}

	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: o.Prefix, Name: name, Help: help, ConstLabels: o.ConstLabels})
	}
	vec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: o.Prefix, Name: name, Help: help, ConstLabels: o.ConstLabels}, labels)
	}
	nspVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return vec(name, help, append(c.nsVars[:len(c.nsVars):len(c.nsVars)], labels...)...)
	}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(o.Prefix, "", name), help, labels, o.ConstLabels)
	}

	c.handshakes = vec("handshakes_total", "Engine.IO connections opened, by the transport they started on.", "transport")
	c.refused = vec("requests_refused_total", "Engine.IO requests refused, by error code and message.", "code", "message")
	c.upgrades = counter("upgrades_total", "Connections upgraded from polling to websocket.")
	c.closed = vec("connections_closed_total", "Engine.IO connections closed, by transport and reason.", "transport", "reason")
	c.packetsIn = counter("packets_received_total", "Engine.IO messages read from clients.")
	c.bytesIn = counter("received_bytes_total", "Bytes of the Engine.IO messages read from clients.")
	c.packetsOut = counter("packets_sent_total", "Engine.IO messages queued for clients, once per recipient.")
	c.bytesOut = counter("sent_bytes_total", "Bytes of the Engine.IO messages queued for clients.")

	c.connects = nspVec("socket_connects_total", "Sockets that joined a namespace.")
	c.disconnects = nspVec("socket_disconnects_total", "Sockets that left a namespace, by reason.", "reason")
	c.joins = nspVec("room_joins_total", "Rooms joined by sockets, their own id's room left out.")
	c.leaves = nspVec("room_leaves_total", "Rooms left by sockets, their own id's room left out.")
	c.broadcasts = nspVec("broadcasts_total", "Events sent to a selection of sockets (rooms, everyone), including those forwarded by an adapter from other servers.")
	c.deliveries = nspVec("broadcast_deliveries_total", "Sockets that broadcasts reached.")
	c.dropped = nspVec("volatile_dropped_total", "Volatile events dropped for sockets that could not take them at once.")
	c.acks = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: o.Prefix, Name: "ack_round_trip_seconds", ConstLabels: o.ConstLabels, Buckets: o.AckBuckets,
		Help: "Emits with an ack, from the emit until every answer came (outcome ok) or the wait ended (outcome error).",
	}, append(c.nsVars[:len(c.nsVars):len(c.nsVars)], "outcome"))
	c.published = nspVec("adapter_published_total", "Messages an adapter sent to the other servers.")
	c.received = nspVec("adapter_received_total", "Messages an adapter received from the other servers.")
	c.adapterErrs = nspVec("adapter_errors_total", "Messages an adapter could not send or read.")
	c.timeouts = nspVec("adapter_timeouts_total", "Adapter requests that the other servers did not all answer in time.")

	c.connections = desc("connections", "Open Engine.IO connections, by transport.", "transport")
	c.queued = desc("write_queue_bytes", "Bytes waiting to be written to clients, the writes in progress included.")
	c.namespaces = desc("namespaces", "Namespaces of the hub.")
	c.sockets = desc("sockets", "Connected sockets, by namespace.", c.nsVars...)

	if !c.byNsp {
		c.single = c.newSpace("")
	}
	hub.Observe(c.observer())
	return c
}

// defaultLabel labels a namespace with its name, a child of a dynamic
// namespace with its parent's.
func defaultLabel(n *rally.Namespace) string {
	if p := n.Parent(); p != nil {
		return p.Name()
	}
	return n.Name()
}

// observer returns the hooks that feed c. Each does a few atomic
// additions; none blocks.
func (c *Collector) observer() *rally.Observer {
	return &rally.Observer{
		ConnectionOpened:   func(transport string) { c.handshakes.WithLabelValues(transport).Inc() },
		ConnectionRefused:  func(code int, message string) { c.refused.WithLabelValues(strconv.Itoa(code), message).Inc() },
		ConnectionUpgraded: c.upgrades.Inc,
		ConnectionClosed:   func(transport, reason string) { c.closed.WithLabelValues(transport, reason).Inc() },
		PacketIn: func(size int) {
			c.packetsIn.Inc()
			c.bytesIn.Add(float64(size))
		},
		PacketOut: func(size int) {
			c.packetsOut.Inc()
			c.bytesOut.Add(float64(size))
		},
		SocketConnected: func(s *rally.Socket) { c.space(s.Namespace()).connects.Inc() },
		SocketDisconnected: func(s *rally.Socket, reason string) {
			sp := c.space(s.Namespace())
			if c.byNsp {
				c.disconnects.WithLabelValues(sp.label, reason).Inc()
			} else {
				c.disconnects.WithLabelValues(reason).Inc()
			}
		},
		RoomJoined: func(s *rally.Socket, room string) {
			if room != s.ID() {
				c.space(s.Namespace()).joins.Inc()
			}
		},
		RoomLeft: func(s *rally.Socket, room string) {
			if room != s.ID() {
				c.space(s.Namespace()).leaves.Inc()
			}
		},
		Broadcast: func(n *rally.Namespace, recipients int) {
			sp := c.space(n)
			sp.broadcasts.Inc()
			sp.deliveries.Add(float64(recipients))
		},
		VolatileDropped: func(n *rally.Namespace) { c.space(n).dropped.Inc() },
		AckRoundTrip: func(n *rally.Namespace, d time.Duration, err error) {
			sp := c.space(n)
			if err == nil {
				sp.ackOK.Observe(d.Seconds())
			} else {
				sp.ackErr.Observe(d.Seconds())
			}
		},
		// Namespaces get their series, at zero, as soon as they exist.
		NamespaceCreated: func(n *rally.Namespace) { c.space(n) },
		Adapter: func(n *rally.Namespace, e rally.AdapterEvent) {
			sp := c.space(n)
			switch e.Kind {
			case rally.AdapterPublish:
				sp.published.Inc()
			case rally.AdapterReceive:
				sp.received.Inc()
			case rally.AdapterError:
				sp.errs.Inc()
			case rally.AdapterTimeout:
				sp.tos.Inc()
			}
		},
	}
}

// space returns the metrics of n's label, making them on its first use.
func (c *Collector) space(n *rally.Namespace) *space {
	if c.single != nil {
		return c.single
	}
	label := c.label(n)
	if m := c.spaces.Load(); m != nil {
		if sp := (*m)[label]; sp != nil {
			return sp
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]*space
	if m := c.spaces.Load(); m != nil {
		old = *m
	}
	if sp := old[label]; sp != nil {
		return sp
	}
	if len(old) >= c.max && label != OtherNamespaces {
		// Beyond the bound: the other label, made once.
		label = OtherNamespaces
		if sp := old[label]; sp != nil {
			return sp
		}
	}
	sp := c.newSpace(label)
	m := make(map[string]*space, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[label] = sp
	c.spaces.Store(&m)
	return sp
}

// newSpace resolves the metrics of the namespace label (none when c has
// no namespace label).
func (c *Collector) newSpace(label string) *space {
	var l []string
	if c.byNsp {
		l = []string{label}
	}
	return &space{
		label:      label,
		connects:   c.connects.WithLabelValues(l...),
		joins:      c.joins.WithLabelValues(l...),
		leaves:     c.leaves.WithLabelValues(l...),
		broadcasts: c.broadcasts.WithLabelValues(l...),
		deliveries: c.deliveries.WithLabelValues(l...),
		dropped:    c.dropped.WithLabelValues(l...),
		published:  c.published.WithLabelValues(l...),
		received:   c.received.WithLabelValues(l...),
		errs:       c.adapterErrs.WithLabelValues(l...),
		tos:        c.timeouts.WithLabelValues(l...),
		ackOK:      c.acks.WithLabelValues(append(l, OutcomeOK)...),
		ackErr:     c.acks.WithLabelValues(append(l, OutcomeError)...),
	}
}

// vecs are c's metrics that hold their own values.
func (c *Collector) vecs() []prometheus.Collector {
	return []prometheus.Collector{
		c.handshakes, c.refused, c.upgrades, c.closed, c.packetsIn, c.bytesIn, c.packetsOut, c.bytesOut,
		c.connects, c.disconnects, c.joins, c.leaves, c.broadcasts, c.deliveries, c.dropped, c.acks,
		c.published, c.received, c.adapterErrs, c.timeouts,
	}
}

// Describe sends the descriptors of every metric of c: a
// prometheus.Collector method.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range c.vecs() {
		v.Describe(ch)
	}
	ch <- c.connections
	ch <- c.queued
	ch <- c.namespaces
	ch <- c.sockets
}

// Collect sends the current value of every metric of c, reading the
// gauges from Hub.Stats: a prometheus.Collector method.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.hub.Stats()
	// Stats names the namespaces; their labels need the namespaces. One
	// that is gone by now has no sockets left to count.
	nsps := map[string]*rally.Namespace{}
	for _, n := range c.hub.Namespaces() {
		nsps[n.Name()] = n
	}
	sockets := map[string]int{}
	var labels []string // in order of first appearance
	for _, ns := range st.Namespaces {
		label := ""
		if c.byNsp {
			n := nsps[ns.Name]
			if n == nil {
				continue
			}
			label = c.space(n).label
		}
		if _, ok := sockets[label]; !ok {
			labels = append(labels, label)
		}
		sockets[label] += ns.Sockets
	}
	if !c.byNsp && len(labels) == 0 {
		labels, sockets[""] = []string{""}, 0
	}

	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.Polling), rally.TransportPolling)
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.GaugeValue, float64(st.Connections-st.Polling), rally.TransportWebSocket)
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.QueuedBytes))
	ch <- prometheus.MustNewConstMetric(c.namespaces, prometheus.GaugeValue, float64(len(st.Namespaces)))
	for _, label := range labels {
		var l []string
		if c.byNsp {
			l = []string{label}
		}
		ch <- prometheus.MustNewConstMetric(c.sockets, prometheus.GaugeValue, float64(sockets[label]), l...)
	}
	for _, v := range c.vecs() {
		v.Collect(ch)
	}
}

// Handler returns an http.Handler serving, in the Prometheus formats, c's
// metrics with the Go runtime's and the process's (the collectors of
// client_golang's default registry), from a registry of its own that
// each call makes anew.
func (c *Collector) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}
