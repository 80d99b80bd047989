package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

// request publishes a request and waits for want answers, until the
// requests timeout or ctx ends.
func (a *adapter) request(ctx context.Context, op string, req msgpack.Map, id string, want int) ([]msgpack.Map, error) {
	p := &pendingRequest{answers: make(chan msgpack.Map, want)}
	if err := a.addPending(id, p); err != nil {
		return nil, err
	}
	defer a.removePending(id)
	payload, err := encodeMessage(req, false)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: %s: encoding the request: %w", op, err)
	}
	if err := a.publish(ctx, a.requestChannel, payload); err != nil {
		return nil, fmt.Errorf("redisadapter: %s: publishing the request: %w", op, err)
	}
	timer := time.NewTimer(a.timeout)
	defer timer.Stop()
	answers := make([]msgpack.Map, 0, want)
	for len(answers) < want {
		select {
		case m := <-p.answers:
			answers = append(answers, m)
		case <-timer.C:
			err := &timeoutError{Op: op, NSP: a.nsp, Got: len(answers), Want: want, After: a.timeout}
			a.local.Report(rally.AdapterEvent{Kind: rally.AdapterTimeout, Err: err})
			return answers, err
		case <-ctx.Done():
			return answers, fmt.Errorf("redisadapter: %s: %d of %d answers: %w", op, len(answers), want, ctx.Err())
		case <-a.ctx.Done():
			return answers, ErrClosed
		}
	}
	return answers, nil
}

func (a *adapter) serverCount(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	n, err := numSub(ctx, a.client, a.requestChannel)
	if err != nil {
		return 0, fmt.Errorf("redisadapter: counting the servers of %q: %w", a.nsp, err)
	}
	return n, nil
}

// Broadcast delivers p to the selected local sockets and, unless
// opts.Local, queues it to be published for the other servers. It fails
// with ErrPublishQueueFull when Redis is too far behind.
func (a *adapter) Broadcast(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions) error {
	if opts.Local {
		return a.local.Broadcast(ctx, p, opts)
	}
	data, err := packetData(p)
	if err != nil {
		return err
	}
	msg, err := broadcastMessage(a.uid, a.nsp, data, opts)
	if err != nil {
		return fmt.Errorf("redisadapter: encoding a broadcast: %w", err)
	}
	if err := a.local.Broadcast(ctx, p, opts); err != nil {
		return err
	}
	// Not waited for, as in Node: the next broadcast is pipelined behind
	// it. Failures go to the observers and the log.
	if err := a.pub.Send(broadcastChannel(a.channel, opts.Rooms), msg); err != nil {
		return fmt.Errorf("redisadapter: publishing a broadcast: %w", err)
	}
	return nil
}

// BroadcastWithAck publishes a BROADCAST request, whose receivers answer
// with their client count and their clients' acks, then sends p to the
// local sockets. The number of servers is the namespace's subscriber
// count.
func (a *adapter) BroadcastWithAck(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions, clients func(int), ack func(rally.Reply)) (int, error) {
	if opts.Local {
		return a.local.BroadcastWithAck(ctx, p, opts, clients, ack)
	}
	data, err := packetData(p)
	if err != nil {
		return 0, err
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return 0, err
	}
	id := newID()
	timeout := int64(-1)
	if deadline, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(deadline).Milliseconds(), 0)
	}
	req, err := broadcastRequest(a.uid, id, a.nsp, data, opts, timeout)
	if err != nil {
		return 0, fmt.Errorf("redisadapter: encoding a broadcast with ack: %w", err)
	}
	handle := func(resp msgpack.Map) {
		typ, _ := getInt(resp, "type")
		switch typ {
		case typeBroadcastClientCount:
			n, _ := getInt(resp, "clientCount")
			clients(int(n))
		case typeBroadcastAck:
			v, present := resp.Get("packet")
			r, err := replyOf(v, present)
			if err != nil {
				a.log.Warn("redisadapter: skipping an ack that cannot be converted", "error", err)
				return
			}
			ack(r)
		}
	}
	if err := a.addPending(id, &pendingRequest{handle: handle}); err != nil {
		return 0, err
	}
	context.AfterFunc(ctx, func() { a.removePending(id) })
	if err := a.publish(ctx, a.requestChannel, req); err != nil {
		a.removePending(id)
		return 0, fmt.Errorf("redisadapter: publishing a broadcast with ack: %w", err)
	}
	if _, err := a.local.BroadcastWithAck(ctx, p, opts, clients, ack); err != nil {
		return 0, err
	}
	return max(servers, 1), nil
}

// SocketsJoin applies the join locally and publishes it for the others.
func (a *adapter) SocketsJoin(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	if err := a.local.SocketsJoin(ctx, opts, rooms); err != nil || opts.Local {
		return err
	}
	return a.publishRequest(ctx, "socketsJoin", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "type", Value: typeRemoteJoin}, {Key: "opts", Value: selector(opts)}, {Key: "rooms", Value: strs(rooms)},
	})
}

// SocketsLeave applies the leave locally and publishes it for the others.
func (a *adapter) SocketsLeave(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	if err := a.local.SocketsLeave(ctx, opts, rooms); err != nil || opts.Local {
		return err
	}
	return a.publishRequest(ctx, "socketsLeave", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "type", Value: typeRemoteLeave}, {Key: "opts", Value: selector(opts)}, {Key: "rooms", Value: strs(rooms)},
	})
}

// DisconnectSockets disconnects the local sockets and publishes the
// request for the others.
func (a *adapter) DisconnectSockets(ctx context.Context, opts rally.BroadcastOptions, closeConn bool) error {
	if err := a.local.DisconnectSockets(ctx, opts, closeConn); err != nil || opts.Local {
		return err
	}
	return a.publishRequest(ctx, "disconnectSockets", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "type", Value: typeRemoteDisconnect}, {Key: "opts", Value: selector(opts)}, {Key: "close", Value: closeConn},
	})
}

func (a *adapter) publishRequest(ctx context.Context, op string, req msgpack.Map) error {
	payload, err := encodeMessage(req, false)
	if err != nil {
		return fmt.Errorf("redisadapter: %s: %w", op, err)
	}
	if err := a.publish(ctx, a.requestChannel, payload); err != nil {
		return fmt.Errorf("redisadapter: %s: publishing the request: %w", op, err)
	}
	return nil
}

// FetchSockets returns the selected local sockets and those of every other
// server, which each answer once (possibly with none).
func (a *adapter) FetchSockets(ctx context.Context, opts rally.BroadcastOptions) ([]rally.SocketInfo, error) {
	infos, err := a.local.FetchSockets(ctx, opts)
	if err != nil || opts.Local {
		return infos, err
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if servers <= 1 {
		return infos, nil
	}
	id := newID()
	answers, err := a.request(ctx, "fetchSockets", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "requestId", Value: id}, {Key: "type", Value: typeRemoteFetch}, {Key: "opts", Value: selector(opts)},
	}, id, servers-1)
	for _, ans := range answers {
		v, ok := ans.Get("sockets")
		if !ok {
			continue
		}
		text, _, jerr := msgpack.ToJSON(v)
		var sockets []remoteSocket
		if jerr == nil {
			jerr = json.Unmarshal(text, &sockets)
		}
		if jerr != nil {
			a.log.Warn("redisadapter: skipping a malformed fetchSockets answer", "error", jerr)
			continue
		}
		for _, rs := range sockets {
			infos = append(infos, fromRemoteSocket(rs))
		}
	}
	return infos, err
}

// ServerSideEmit publishes a server-side event for the other servers and,
// with ack, collects one answer from each: the first result of its
// handler, as one Reply.
func (a *adapter) ServerSideEmit(ctx context.Context, p rally.Packet, ack bool) ([]rally.Reply, error) {
	data, err := packetData(p)
	if err != nil {
		return nil, err
	}
	event := data[0].(string)
	if !ack {
		return nil, a.publishRequest(ctx, "serverSideEmit", msgpack.Map{
			{Key: "uid", Value: a.uid}, {Key: "type", Value: typeServerSideEmit}, {Key: "data", Value: data},
		})
	}
	servers, err := a.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if servers-1 <= 0 {
		return []rally.Reply{}, nil
	}
	id := newID()
	answers, err := a.request(ctx, "serverSideEmit", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "requestId", Value: id}, {Key: "type", Value: typeServerSideEmit}, {Key: "data", Value: data},
	}, id, servers-1)
	replies := make([]rally.Reply, 0, len(answers))
	var failed error
	for _, ans := range answers {
		v, present := ans.Get("data")
		r, cerr := replyOf(v, present)
		if cerr != nil {
			a.log.Warn("redisadapter: skipping a malformed serverSideEmit answer", "error", cerr)
			continue
		}
		replies = append(replies, r)
		var ackErr *rally.AckError
		if failed == nil && errors.As(r.Err(), &ackErr) {
			failed = &rally.EventError{Event: event, Err: ackErr}
			if ackErr.Message == rally.ErrNoHandler.Error() {
				failed = &rally.EventError{Event: event, Err: rally.ErrNoHandler}
			}
		}
	}
	if err == nil {
		err = failed
	}
	return replies, err
}

// allRooms returns the rooms of every server.
func (a *adapter) allRooms(ctx context.Context) ([]string, error) {
	rooms := a.local.Rooms()
	servers, err := a.serverCount(ctx)
	if err != nil {
		return nil, err
	}
	if servers <= 1 {
		return rooms, nil
	}
	id := newID()
	answers, err := a.request(ctx, "allRooms", msgpack.Map{
		{Key: "uid", Value: a.uid}, {Key: "requestId", Value: id}, {Key: "type", Value: typeAllRooms},
	}, id, servers-1)
	for _, ans := range answers {
		rooms = append(rooms, getRooms(ans, "rooms")...)
	}
	slices.Sort(rooms)
	return slices.Compact(rooms), err
}
