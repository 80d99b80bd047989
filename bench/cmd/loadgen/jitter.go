package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// JitterFigures are the jitter scenario's figures. Durations are in
// microseconds. Result.Expected is clients × broadcasts and Result.Lost
// what of it was not delivered.
type JitterFigures struct {
	// Recovery: the server's CONNECT replies carried a private session id.
	Recovery bool `json:"recovery"`
	// The load: broadcasts asked per second, mean connected time before a
	// cut, range of the time a client stays down.
	BroadcastRate float64 `json:"broadcast_rate"`
	CutEvery      string  `json:"cut_every"`
	Down          string  `json:"down"`
	// Broadcasts the server made (ticks the control client received);
	// every client was connected before the first and after the last.
	Broadcasts uint64 `json:"broadcasts"`
	// Delivered counts distinct ticks received, over all clients;
	// DeliveredPct is Delivered over Result.Expected.
	Delivered    uint64  `json:"delivered"`
	DeliveredPct float64 `json:"delivered_pct"`
	// Duplicates: ticks a client received again. OutOfOrder: ticks
	// received, for the first time, after one with a higher number.
	Duplicates uint64 `json:"duplicates"`
	OutOfOrder uint64 `json:"out_of_order"`
	// Cuts: connections the clients cut. Dropped: connections that ended
	// otherwise (closed by the server). Reconnects: CONNECT replies after
	// a cut or drop; Recovered: those with the private session id the
	// client presented; RecoveredPct: Recovered over Reconnects.
	Cuts         uint64  `json:"cuts"`
	Dropped      uint64  `json:"dropped"`
	Reconnects   uint64  `json:"reconnects"`
	Recovered    uint64  `json:"recovered"`
	RecoveredPct float64 `json:"recovered_pct"`
	// SIDChanged: recovered reconnects whose socket id was not the old one.
	SIDChanged uint64 `json:"sid_changed"`
	// Replayed: ticks received before a recovered reconnect's CONNECT
	// reply; ReplayedPer: their mean per recovered reconnect.
	Replayed    uint64  `json:"replayed"`
	ReplayedPer float64 `json:"replayed_per_reconnect"`
	// LostRecovered: ticks missing at the end from the clients all of
	// whose reconnects were recovered (0 unless recovery lost some).
	LostRecovered uint64 `json:"lost_despite_recovery"`
	// Result.P50/P99/Max are the replay latency of recovered reconnects:
	// from the CONNECT sent to its reply received, the missed ticks
	// coming in between. Rejoin*: the same time over every reconnect,
	// recovered or not.
	RejoinP50 float64 `json:"rejoin_p50_us"`
	RejoinP99 float64 `json:"rejoin_p99_us"`
}

// jitterRun is one run of the jitter scenario.
type jitterRun struct {
	c           config
	opts        wsclient.Options
	jitterStart time.Time // no cut before
	jitterEnd   time.Time // nor after; the last broadcast is sent then
	replay      hist.Histogram
	rejoin      hist.Histogram
	delivered   atomic.Uint64 // distinct ticks over all clients
	connected   atomic.Int64  // clients with a joined connection
	closing     atomic.Bool   // the run is over: stop reconnecting
	errs        atomic.Uint64
	errMu       sync.Mutex
	firstErr    error
	wg          sync.WaitGroup
}

// jitterClient is one client's state. Only its goroutine touches it but
// for conn, which the end of the run closes under mu.
type jitterClient struct {
	id  int
	rng *rand.Rand

	mu   sync.Mutex
	conn *wsclient.Conn

	pid, sid string
	offset   []byte   // JSON text of the last offset received
	seen     []uint64 // bit k: tick k received
	distinct uint64
	maxSeq   int64

	dups, outOfOrder              uint64
	cuts, dropped                 uint64
	reconnects, recovered         uint64
	replayed, sidChanged, strange uint64
}

// link is one connection of a client, and whether the client cut it.
type link struct {
	conn *wsclient.Conn
	cut  atomic.Bool
}

// runJitter connects c.clients sockets and a control socket, then, for
// c.duration, has the control socket ask the server to broadcast one
// numbered tick ("blast" with "from") c.rate times a second, while each
// client, from c.warmup on, cuts its TCP connection after an exponential
// time of mean c.cutEvery, stays down for a uniform time in
// [c.downMin, c.downMax] and reconnects, as the official client does:
// with its private session id and the offset of the last tick it
// received, when the server gave it one. Every client is connected
// before the first broadcast and again after the last, so it should get
// every tick, exactly once if the server recovers its session.
func runJitter(c config) (*Result, error) {
	n := c.clients
	figs := &JitterFigures{
		BroadcastRate: c.rate,
		CutEvery:      c.cutEvery.String(),
		Down:          c.downMin.String() + "–" + c.downMax.String(),
	}
	r := &Result{Scenario: "jitter", Clients: n, JitterFigures: figs}
	if c.rate <= 0 || c.cutEvery <= 0 || c.downMin < 0 || c.downMax < c.downMin {
		return r, errors.New("jitter: -rate and -cut-every must be positive, -down-max at least -down-min")
	}
	j := &jitterRun{c: c, opts: wsclient.Options{ReadBuffer: c.readBuf}}

	clients := make([]*jitterClient, n)
	for i := range clients {
		clients[i] = &jitterClient{id: i, rng: rand.New(rand.NewPCG(c.seed, uint64(i)))}
	}
	dial := func(i int) (*wsclient.Conn, error) {
		conn, err := wsclient.OpenEngine(c.addr, j.opts)
		if err != nil {
			return nil, err
		}
		reply, err := conn.Join(nil, 10*time.Second, nil)
		if err == nil {
			err = clients[i].joined(reply)
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
		return conn, nil
	}
	conns, rate, err := connectEach(c, n, dial, nil)
	if err != nil {
		return r, err
	}
	r.ConnRate = rate
	figs.Recovery = clients[0].pid != ""
	if figs.Recovery != c.recovery {
		closeAll(conns)
		return r, fmt.Errorf("jitter: the server's CONNECT reply has pid %q, with -recovery=%v", clients[0].pid, c.recovery)
	}

	// The control socket: never cut, it triggers the broadcasts and
	// counts what the server broadcast.
	ctl, err := wsclient.ConnectSocketIO(c.addr, j.opts)
	if err != nil {
		closeAll(conns)
		return r, fmt.Errorf("jitter: control connection: %w", err)
	}
	defer ctl.Reset()
	var ctlGot atomic.Uint64
	go func() {
		for {
			_, m, err := ctl.ReadMessage()
			if err != nil {
				return
			}
			if !ctl.HandleEngine(m) && bytes.HasPrefix(m, []byte("42")) {
				ctlGot.Add(1)
			}
		}
	}()
	logf("jitter: %d connected (%.0f/s), recovery %v", n, rate, figs.Recovery)

	start := time.Now()
	j.jitterStart = start.Add(c.warmup)
	j.jitterEnd = start.Add(c.duration)
	for i, cl := range clients {
		cl.conn = conns[i]
		j.connected.Add(1)
		j.wg.Add(1)
		go j.run(cl)
	}

	w := startWindow(c.pid)
	ticker := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	var sent uint64
	var msg []byte
	nextLog := start.Add(5 * time.Second)
	for now := range ticker.C {
		if !now.Before(j.jitterEnd) {
			break
		}
		sent++
		msg = wsclient.AppendEvent(msg[:0], -1, "blast", fmt.Appendf(nil, `{"n":1,"pad":%d,"from":%d}`, c.pad, sent))
		if err := ctl.WriteText(msg); err != nil {
			ticker.Stop()
			j.finish(clients)
			return r, fmt.Errorf("jitter: control connection: %w", err)
		}
		if now.After(nextLog) {
			logf("jitter: %d broadcasts, %d of %d clients connected", sent, j.connected.Load(), n)
			nextLog = nextLog.Add(5 * time.Second)
		}
	}
	ticker.Stop()
	w.end(r)

	// Every broadcast must reach the control socket; then every client
	// reconnects, and gets what recovery replays.
	failed := func(format string, args ...any) (*Result, error) {
		j.finish(clients)
		j.collect(r, clients, ctlGot.Load())
		return r, fmt.Errorf(format, args...)
	}
	if !waitFor(10*time.Second, func() bool { return ctlGot.Load() >= sent }) {
		return failed("jitter: the control socket got %d of %d broadcasts within 10s", ctlGot.Load(), sent)
	}
	if !waitFor(c.downMax+15*time.Second, func() bool { return j.connected.Load() == int64(n) }) {
		return failed("jitter: %d of %d clients connected again after the run", j.connected.Load(), n)
	}
	// Then until every client has every tick, or nothing came for a
	// while (1 s, less for short runs): the rest was lost.
	expected := uint64(n) * sent
	settle := min(time.Second, max(200*time.Millisecond, c.duration/10))
	last, quiet := j.delivered.Load(), time.Now()
	waitFor(15*time.Second, func() bool {
		d := j.delivered.Load()
		if d != last {
			last, quiet = d, time.Now()
		}
		return d >= expected || time.Since(quiet) > settle
	})
	j.finish(clients)
	j.collect(r, clients, ctlGot.Load())
	if j.firstErr != nil {
		// Reported, but the figures stand: they count what it cost.
		r.ErrorMsg = "first error: " + j.firstErr.Error()
	}
	return r, nil
}

// waitFor polls cond every 20 ms until it holds (true) or d passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// finish stops the clients: no more reconnects, every connection closed.
func (j *jitterRun) finish(clients []*jitterClient) {
	j.closing.Store(true)
	for _, cl := range clients {
		cl.mu.Lock()
		if cl.conn != nil {
			cl.conn.Reset()
		}
		cl.mu.Unlock()
	}
	j.wg.Wait()
}

// collect sums the clients' figures into r, broadcasts being the ticks
// the server sent.
func (j *jitterRun) collect(r *Result, clients []*jitterClient, broadcasts uint64) {
	f := r.JitterFigures
	f.Broadcasts = broadcasts
	r.Expected = uint64(len(clients)) * broadcasts
	for _, cl := range clients {
		f.Delivered += cl.distinct
		f.Duplicates += cl.dups
		f.OutOfOrder += cl.outOfOrder
		f.Cuts += cl.cuts
		f.Dropped += cl.dropped
		f.Reconnects += cl.reconnects
		f.Recovered += cl.recovered
		f.Replayed += cl.replayed
		f.SIDChanged += cl.sidChanged
		if cl.reconnects == cl.recovered && cl.distinct < broadcasts {
			f.LostRecovered += broadcasts - cl.distinct
		}
		r.Errors += cl.strange
	}
	if r.Expected > f.Delivered {
		r.Lost = r.Expected - f.Delivered
	}
	if r.Expected > 0 {
		f.DeliveredPct = 100 * float64(f.Delivered) / float64(r.Expected)
	}
	if f.Reconnects > 0 {
		f.RecoveredPct = 100 * float64(f.Recovered) / float64(f.Reconnects)
	}
	if f.Recovered > 0 {
		f.ReplayedPer = float64(f.Replayed) / float64(f.Recovered)
		setLatency(r, &j.replay)
	}
	f.RejoinP50 = float64(j.rejoin.Quantile(0.50)) / 1e3
	f.RejoinP99 = float64(j.rejoin.Quantile(0.99)) / 1e3
	r.Ops = f.Delivered
	if r.Seconds > 0 {
		r.Rate = float64(f.Delivered) / r.Seconds
	}
	r.Errors += j.errs.Load()
}

// run is a client's goroutine: it reads its connection until it ends,
// stays down, reconnects, and so on until the run is over.
func (j *jitterRun) run(cl *jitterClient) {
	defer j.wg.Done()
	cl.mu.Lock()
	conn := cl.conn
	cl.mu.Unlock()
	for {
		l := &link{conn: conn}
		cutAt := time.Now()
		if cutAt.Before(j.jitterStart) {
			cutAt = j.jitterStart
		}
		cutAt = cutAt.Add(time.Duration(cl.rng.ExpFloat64() * float64(j.c.cutEvery)))
		var timer *time.Timer
		if cutAt.Before(j.jitterEnd) {
			timer = time.AfterFunc(time.Until(cutAt), func() {
				l.cut.Store(true)
				l.conn.Close() // a FIN, no websocket close: the transport is lost
			})
		}
		err := j.read(cl, conn)
		if timer != nil {
			timer.Stop()
		}
		j.connected.Add(-1)
		if j.closing.Load() {
			return
		}
		if l.cut.Load() {
			cl.cuts++
		} else {
			cl.dropped++
			j.fail(fmt.Errorf("jitter: client %d: connection lost: %w", cl.id, err))
		}
		span := int64(j.c.downMax - j.c.downMin)
		time.Sleep(j.c.downMin + time.Duration(cl.rng.Int64N(span+1)))
		if conn = j.reconnect(cl); conn == nil {
			return
		}
	}
}

// read handles what conn receives until it fails.
func (j *jitterRun) read(cl *jitterClient, conn *wsclient.Conn) error {
	for {
		_, m, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if !conn.HandleEngine(m) {
			j.event(cl, m)
		}
	}
}

// event records a tick: its number, and its offset when it has one.
func (j *jitterRun) event(cl *jitterClient, m []byte) {
	if !bytes.HasPrefix(m, []byte(`42["tick",`)) {
		cl.strange++
		return
	}
	seq, ok := wsclient.IntField(m, "i")
	if !ok || seq <= 0 || seq > 1<<30 {
		cl.strange++
		return
	}
	if off, ok := wsclient.TrailingString(m); ok {
		cl.offset = append(cl.offset[:0], off...)
	}
	word, bit := int(seq/64), uint64(1)<<(seq%64)
	for word >= len(cl.seen) {
		cl.seen = append(cl.seen, 0)
	}
	if cl.seen[word]&bit != 0 {
		cl.dups++
		return
	}
	cl.seen[word] |= bit
	cl.distinct++
	j.delivered.Add(1)
	if seq < cl.maxSeq {
		cl.outOfOrder++
	}
	cl.maxSeq = max(cl.maxSeq, seq)
}

// reconnect opens a new connection and joins with the client's private
// session id and last offset, if it has them, until it succeeds or the
// run is over (nil).
func (j *jitterRun) reconnect(cl *jitterClient) *wsclient.Conn {
	for !j.closing.Load() {
		conn, err := wsclient.OpenEngine(j.c.addr, j.opts)
		if err != nil {
			j.fail(fmt.Errorf("jitter: client %d reconnecting: %w", cl.id, err))
			time.Sleep(100 * time.Millisecond)
			continue
		}
		var auth []byte
		if cl.pid != "" {
			pid, _ := json.Marshal(cl.pid)
			auth = append(append([]byte(`{"pid":`), pid...), ',')
			if len(cl.offset) > 0 {
				auth = append(append(append(auth, `"offset":"`...), cl.offset...), '"', ',')
			}
			auth[len(auth)-1] = '}'
		}
		var replayed uint64
		oldPID, oldSID := cl.pid, cl.sid
		sent := time.Now()
		reply, err := conn.Join(auth, 10*time.Second, func(m []byte) {
			replayed++
			j.event(cl, m)
		})
		took := time.Since(sent)
		if err == nil {
			err = cl.joined(reply)
		}
		if err != nil {
			conn.Close()
			j.fail(fmt.Errorf("jitter: client %d reconnecting: %w", cl.id, err))
			continue
		}
		cl.reconnects++
		j.rejoin.Record(took)
		if oldPID != "" && cl.pid == oldPID {
			cl.recovered++
			cl.replayed += replayed
			j.replay.Record(took)
			if cl.sid != oldSID {
				cl.sidChanged++
			}
		} else if replayed > 0 {
			cl.strange += replayed // events before the reply of a new socket
		}
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if j.closing.Load() {
			conn.Reset()
			return nil
		}
		cl.conn = conn
		j.connected.Add(1)
		return conn
	}
	return nil
}

// joined takes the socket and private session ids from a CONNECT reply.
func (cl *jitterClient) joined(reply []byte) error {
	var ids struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	if err := json.Unmarshal(reply, &ids); err != nil || ids.SID == "" {
		return fmt.Errorf("CONNECT reply %q: no sid", reply)
	}
	cl.sid, cl.pid = ids.SID, ids.PID
	return nil
}

// fail counts an error and keeps the first.
func (j *jitterRun) fail(err error) {
	j.errs.Add(1)
	j.errMu.Lock()
	defer j.errMu.Unlock()
	if j.firstErr == nil {
		j.firstErr = err
		logf("%v", err)
	}
}
