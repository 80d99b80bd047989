package streams

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// adapter is the streams adapter of one namespace: the cluster protocol
// over the stream and pub/sub, plus the sessions of connection state
// recovery.
type adapter struct {
	*cluster.Adapter
	n   *Node
	tr  *transport
	nsp string
	log *slog.Logger
	run *loops

	ready    chan struct{} // closed once both channels are subscribed
	subsLeft int           // guarded by run.mu
}

var _ rally.RecoveryAdapter = (*adapter)(nil)

func newAdapter(n *Node, local *rally.LocalAdapter) *adapter {
	nsp := local.Namespace().Name()
	uid := cluster.NewID()
	tr := &transport{
		n:       n,
		stream:  n.opts.StreamName,
		public:  n.opts.ChannelPrefix + "#" + nsp + "#",
		private: n.opts.ChannelPrefix + "#" + nsp + "#" + uid + "#",
		prefix:  n.opts.ChannelPrefix + "#" + nsp + "#",
	}
	log := n.log.With("namespace", nsp, "uid", uid)
	return &adapter{
		Adapter: cluster.New(local, uid, tr, cluster.Options{Timeout: n.opts.RequestsTimeout, Logger: log}),
		n:       n,
		tr:      tr,
		nsp:     nsp,
		log:     log,
		ready:   make(chan struct{}),
	}
}

func (a *adapter) subscribe() { a.run.subscribe(a) }

// Close stops the adapter's part: its subscriptions, and with the last
// adapter the Node's reader and pub/sub connection.
func (a *adapter) Close() error {
	run := a.n.forget(a)
	if run == nil && a.run != nil {
		a.run.unsubscribe(a)
	}
	err := a.Adapter.Close()
	if run != nil {
		run.stop()
	}
	return err
}

// transport publishes a namespace's messages as Node's streams adapter
// does: broadcasts without ack and room changes in the stream, requests
// and their responses on pub/sub.
type transport struct {
	n               *Node
	stream          string
	public, private string // <prefix>#<nsp># and <prefix>#<nsp>#<uid>#
	prefix          string // <prefix>#<nsp>#, for the responses' channels
}

// ephemeral reports whether Node sends m with pub/sub rather than in the
// stream: a broadcast with ack, a server-side emit, a fetch.
func ephemeral(m *cluster.Message) bool {
	switch m.Type {
	case cluster.Broadcast:
		return m.HasRequestID()
	case cluster.ServerSideEmit, cluster.FetchSockets:
		return true
	}
	return false
}

func (t *transport) Publish(ctx context.Context, m *cluster.Message) (string, error) {
	if ephemeral(m) {
		payload, err := m.Marshal()
		if err != nil {
			return "", err
		}
		return "", t.n.client.Publish(ctx, t.public, payload).Err()
	}
	values, err := encodeEntry(m)
	if err != nil {
		return "", err
	}
	return t.n.client.XAdd(ctx, &redis.XAddArgs{
		Stream: t.stream, MaxLen: t.n.opts.MaxLen, Approx: true, ID: "*", Values: values,
	}).Result()
}

func (t *transport) PublishResponse(ctx context.Context, requester string, m *cluster.Message) error {
	payload, err := m.Marshal()
	if err != nil {
		return err
	}
	return t.n.client.Publish(ctx, t.prefix+requester+"#", payload).Err()
}

func (t *transport) ServerCount(ctx context.Context) (int, error) {
	return numSub(ctx, t.n.client, t.public)
}

// mayContainBinary lists the types whose data Node encodes as base64
// MessagePack when it holds binary values.
func mayContainBinary(t cluster.MessageType) bool {
	switch t {
	case cluster.Broadcast, cluster.FetchSocketsResponse, cluster.ServerSideEmit, cluster.ServerSideEmitResponse, cluster.BroadcastAck:
		return true
	}
	return false
}

// encodeEntry returns the fields of m's stream entry, as Node's
// RedisStreamsAdapter.encode: uid, nsp, type as a decimal string, and
// data, JSON unless it holds binary values (base64 MessagePack then).
func encodeEntry(m *cluster.Message) ([]string, error) {
	values := []string{"uid", m.UID, "nsp", m.NSP, "type", strconv.Itoa(int(m.Type))}
	if m.Data == nil {
		return values, nil
	}
	if mayContainBinary(m.Type) && wire.HasBinary(m.Data) {
		b, err := msgpack.Marshal(m.Data)
		if err != nil {
			return nil, err
		}
		return append(values, "data", base64.StdEncoding.EncodeToString(b)), nil
	}
	text, _, err := msgpack.ToJSON(m.Data)
	if err != nil {
		return nil, err
	}
	return append(values, "data", string(text)), nil
}

// decodeEntry reads the fields of a stream entry, as Node's
// RedisStreamsAdapter.decode: data starting with "{" is JSON, anything
// else base64 MessagePack.
func decodeEntry(values map[string]any) (*cluster.Message, error) {
	str := func(k string) string { s, _ := values[k].(string); return s }
	typ, err := strconv.Atoi(str("type"))
	if err != nil {
		return nil, fmt.Errorf("entry type %q: %w", str("type"), err)
	}
	m := &cluster.Message{UID: str("uid"), NSP: str("nsp"), Type: cluster.MessageType(typ)}
	data := str("data")
	if data == "" {
		return m, nil
	}
	var v any
	if strings.HasPrefix(data, "{") {
		v, err = msgpack.FromJSON([]byte(data), nil)
	} else {
		var b []byte
		if b, err = base64.StdEncoding.DecodeString(data); err == nil {
			v, err = msgpack.Unmarshal(b)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("entry data: %w", err)
	}
	var ok bool
	if m.Data, ok = v.(msgpack.Map); !ok {
		return nil, fmt.Errorf("entry data is %T, want an object", v)
	}
	return m, nil
}

// entrySize is what an entry's fields weigh.
func entrySize(values map[string]any) int {
	n := 0
	for k, v := range values {
		s, _ := v.(string)
		n += len(k) + len(s)
	}
	return n
}

// onEntry hands a stream entry to the adapter of its namespace; entries
// without a namespace are skipped, as by Node.
func (n *Node) onEntry(e redis.XMessage) {
	nsp, _ := e.Values["nsp"].(string)
	if nsp == "" {
		return
	}
	a := n.adapterOf(nsp)
	if a == nil {
		return
	}
	if size := entrySize(e.Values); size > n.opts.MaxEntryBytes {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping an oversized stream entry", "id", e.ID, "bytes", size)
		wire.ReportReceive(a.Local(), errOversized)
		return
	}
	m, err := decodeEntry(e.Values)
	if err != nil {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping a malformed stream entry", "id", e.ID, "error", err)
		wire.ReportReceive(a.Local(), err)
		return
	}
	n.dispatch(m, e.ID)
}

var errNoRecovery = errors.New("connection state recovery is off")

// errOversized is reported for messages over Options.MaxEntryBytes.
var errOversized = errors.New("redisadapter/streams: message over MaxEntryBytes")
