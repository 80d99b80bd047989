package streams

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// offsetPattern is what Node accepts as an offset: a stream entry id.
var offsetPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// restoreCalls bounds the XRANGE calls of one restore, as Node's
// RESTORE_SESSION_MAX_XRANGE_CALLS; each reads at most restoreCount
// entries.
const (
	restoreCalls = 100
	restoreCount = 1000
)

// PersistSession keeps s in Redis as Node does: at <SessionKeyPrefix><pid>,
// the base64 of the MessagePack of {sid, pid, rooms, data}, for the
// maximum disconnection duration (SET … PX). Data travels as JSON
// (nil as {}, a Node socket's initial data).
func (a *adapter) PersistSession(ctx context.Context, s *rally.Session) error {
	rec := a.Local().Recovery()
	if rec == nil {
		return errNoRecovery
	}
	var data any = msgpack.Map{}
	if s.Data != nil {
		text, err := json.Marshal(s.Data)
		if err != nil {
			return fmt.Errorf("redisadapter/streams: encoding the data of socket %s: %w", s.SID, err)
		}
		if data, err = msgpack.FromJSON(text, nil); err != nil {
			return fmt.Errorf("redisadapter/streams: encoding the data of socket %s: %w", s.SID, err)
		}
	}
	b, err := msgpack.Marshal(msgpack.Map{
		{Key: "sid", Value: s.SID}, {Key: "pid", Value: s.PID}, {Key: "rooms", Value: wire.Strs(s.Rooms)}, {Key: "data", Value: data},
	})
	if err != nil {
		return fmt.Errorf("redisadapter/streams: encoding the session of socket %s: %w", s.SID, err)
	}
	key := a.n.opts.SessionKeyPrefix + s.PID
	ms := rec.MaxDisconnectionDuration.Milliseconds()
	if err := a.n.client.Do(ctx, "SET", key, base64.StdEncoding.EncodeToString(b), "PX", ms).Err(); err != nil {
		return fmt.Errorf("redisadapter/streams: persisting the session of socket %s: %w", s.SID, err)
	}
	return nil
}

// RestoreSession takes the session pid (MULTI GET, DEL: a session is
// restored once, also when its offset is gone), checks that offset is
// still in the stream, and collects the broadcasts of this namespace
// after it that reach the session's rooms, each with its entry id as
// offset. It returns nil, nil when the offset is not an entry id, the
// session or the offset is gone, or more was missed than
// Recovery.MaxMissedPackets or MaxBufferedBytes allow.
func (a *adapter) RestoreSession(ctx context.Context, pid, offset string) (*rally.Session, error) {
	rec := a.Local().Recovery()
	if rec == nil || !offsetPattern.MatchString(offset) {
		return nil, nil
	}
	client := a.n.client
	key := a.n.opts.SessionKeyPrefix + pid
	var get *redis.StringCmd
	_, err := client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, key)
		p.Del(ctx, key)
		return nil
	})
	if err != nil && err != redis.Nil {
		return nil, fmt.Errorf("redisadapter/streams: taking session %s: %w", pid, err)
	}
	raw, _ := get.Result()
	at, err := client.XRange(ctx, a.tr.stream, offset, offset).Result()
	if err != nil {
		return nil, fmt.Errorf("redisadapter/streams: looking up offset %s: %w", offset, err)
	}
	if raw == "" || len(at) == 0 {
		return nil, nil
	}
	sess, err := decodeSession(raw)
	if err != nil {
		a.n.entryLog.Warn(a.log, "redisadapter/streams: skipping a malformed session", "pid", pid, "error", err)
		return nil, nil
	}
	var bytes int64
	for range restoreCalls {
		entries, err := client.XRangeN(ctx, a.tr.stream, nextOffset(offset), "+", restoreCount).Result()
		if err != nil {
			return nil, fmt.Errorf("redisadapter/streams: reading the events missed by %s: %w", sess.SID, err)
		}
		if len(entries) == 0 {
			return sess, nil
		}
		for _, e := range entries {
			offset = e.ID
			p, ok := a.missed(sess, e)
			if !ok {
				continue
			}
			bytes += int64(len(p.Data))
			for _, b := range p.Attachments {
				bytes += int64(len(b))
			}
			sess.MissedPackets = append(sess.MissedPackets, p)
			if len(sess.MissedPackets) > rec.MaxMissedPackets || bytes > rec.MaxBufferedBytes {
				a.log.Info("redisadapter/streams: not recovering a session that missed too much", "sid", sess.SID, "events", len(sess.MissedPackets), "bytes", bytes)
				return nil, nil
			}
		}
	}
	// Node gives up here and returns what it has; what is left would be
	// lost, so the client gets a new socket instead.
	a.log.Info("redisadapter/streams: not recovering a session: the stream grows faster than it is read", "sid", sess.SID)
	return nil, nil
}

// missed returns the event of entry e if it is a broadcast of this
// namespace that reaches sess (Node's shouldIncludePacket), with e's id as
// offset.
func (a *adapter) missed(sess *rally.Session, e redis.XMessage) (rally.Packet, bool) {
	if nsp, _ := e.Values["nsp"].(string); nsp != a.nsp {
		return rally.Packet{}, false
	}
	if typ, _ := e.Values["type"].(string); typ != strconv.Itoa(int(cluster.Broadcast)) {
		return rally.Packet{}, false
	}
	if entrySize(e.Values) > a.n.opts.MaxEntryBytes {
		return rally.Packet{}, false
	}
	m, err := decodeEntry(e.Values)
	if err != nil {
		a.n.entryLog.Warn(a.log, "redisadapter/streams: skipping a malformed stream entry", "id", e.ID, "error", err)
		return rally.Packet{}, false
	}
	packet, _ := wire.GetMap(m.Data, "packet")
	o, _ := wire.GetMap(m.Data, "opts")
	if !reaches(sess.Rooms, wire.GetRooms(o, "rooms"), wire.GetRooms(o, "except")) {
		return rally.Packet{}, false
	}
	data, _ := packet.Get("data")
	p, err := wire.DataPacket(data)
	if err != nil {
		a.n.entryLog.Warn(a.log, "redisadapter/streams: skipping a malformed stream entry", "id", e.ID, "error", err)
		return rally.Packet{}, false
	}
	return p.WithOffset(e.ID), true
}

// reaches is Node's shouldIncludePacket: the event went to every socket or
// to one of the session's rooms, and to none of them was it excepted.
func reaches(sessionRooms, rooms, except []string) bool {
	included := len(rooms) == 0
	for _, r := range sessionRooms {
		for _, x := range except {
			if r == x {
				return false
			}
		}
		for _, in := range rooms {
			if r == in {
				included = true
			}
		}
	}
	return included
}

// nextOffset is the id right after offset (Node's, for Redis before 6.2,
// which has no exclusive ranges).
func nextOffset(offset string) string {
	ts, seq, _ := strings.Cut(offset, "-")
	n, _ := strconv.ParseUint(seq, 10, 64)
	return ts + "-" + strconv.FormatUint(n+1, 10)
}

// decodeSession reads a session PersistSession, or a Node server, stored.
func decodeSession(raw string) (*rally.Session, error) {
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	v, err := msgpack.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	m, ok := v.(msgpack.Map)
	if !ok {
		return nil, fmt.Errorf("session is %T, want a map", v)
	}
	s := &rally.Session{SID: wire.GetString(m, "sid"), PID: wire.GetString(m, "pid"), Rooms: wire.GetRooms(m, "rooms")}
	if s.SID == "" {
		return nil, fmt.Errorf("session without a sid")
	}
	if d, ok := m.Get("data"); ok && d != nil {
		text, _, err := msgpack.ToJSON(d)
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(text, &s.Data); err != nil {
			return nil, err
		}
	}
	return s, nil
}
