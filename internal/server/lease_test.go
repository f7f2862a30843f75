package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/testutil"
)

// reserveBody is a RESERVE body for queues with the given options.
func reserveBody(t *testing.T, queues []string, opts ...proto.Option) []byte {
	t.Helper()
	b, err := proto.AppendKeys(nil, queues)
	if err != nil {
		t.Fatal(err)
	}
	b, err = proto.AppendOptions(b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// items decodes an OK reply to RESERVE (lease) or GETBATCH.
func items(t *testing.T, f proto.Frame, lease bool) []proto.Item {
	t.Helper()
	want(t, f, proto.StatusOK, "")
	d := proto.NewBody(f.Body)
	n, err := d.U32()
	if err != nil {
		t.Fatal(err)
	}
	its := make([]proto.Item, n)
	for i := range its {
		if its[i], err = d.Item(lease); err != nil {
			t.Fatalf("item %d of %d: %v", i, n, err)
		}
	}
	if err := d.End(); err != nil {
		t.Fatal(err)
	}
	return its
}

// idBody is the body of an ACK, NACK or TOUCH.
func idBody(id uint64, opts ...proto.Option) []byte {
	b, _ := proto.AppendOptions(proto.AppendU64(nil, id), opts...)
	return b
}

func ms(d time.Duration) proto.Option { return proto.DurationOption(proto.OptReserveLease, d) }

func TestServerReserveAckNackTouch(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	id := put(t, c, 1, "jobs", []byte("payload"))

	before := time.Now()
	its := items(t, c.Do(proto.OpReserve, 2, reserveBody(t, []string{"none", "jobs"},
		ms(time.Minute))), true)
	if len(its) != 1 {
		t.Fatalf("%d items", len(its))
	}
	it := its[0]
	deadline := time.UnixMilli(int64(it.Deadline))
	if it.Queue != "jobs" || it.ID != id || it.Count != 1 || string(it.Payload) != "payload" ||
		deadline.Before(before.Add(59*time.Second)) || it.DeadLetter != nil {
		t.Fatalf("item = %+v (deadline %v)", it, deadline)
	}
	want(t, c.Do(proto.OpReserve, 3, reserveBody(t, []string{"jobs"})), proto.StatusEmpty, "")

	f := c.Do(proto.OpTouch, 4, idBody(it.DeliveryID,
		proto.DurationOption(proto.OptTouchLease, time.Hour)))
	if got := time.UnixMilli(int64(u64(t, f))); got.Before(before.Add(59 * time.Minute)) {
		t.Fatalf("touched deadline %v", got)
	}
	want(t, c.Do(proto.OpNack, 5, idBody(it.DeliveryID)), proto.StatusOK, "")
	want(t, c.Do(proto.OpAck, 6, idBody(it.DeliveryID)), proto.StatusNotFound, "")

	its = items(t, c.Do(proto.OpReserve, 7, reserveBody(t, []string{"jobs"})), true)
	if its[0].Count != 2 {
		t.Fatalf("redelivery count %d", its[0].Count)
	}
	f = c.Do(proto.OpAck, 8, idBody(its[0].DeliveryID))
	want(t, f, proto.StatusOK, "")
	if len(f.Body) != 0 {
		t.Fatalf("ack reply body %q", f.Body)
	}
	want(t, c.Do(proto.OpTouch, 9, idBody(its[0].DeliveryID)), proto.StatusNotFound, "")
	if n := length(t, c, 10, "jobs"); n != 0 {
		t.Fatalf("len %d after ack", n)
	}
}

func TestServerLeaseRequestsRefused(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	tests := []struct {
		name string
		op   proto.Op
		body []byte
		st   proto.Status
		text string
	}{
		{"no queue", proto.OpReserve, []byte{0, 0, 0}, proto.StatusBadRequest, "no queue"},
		{"batch over limit", proto.OpReserve,
			reserveBody(t, []string{"q"}, proto.U32Option(proto.OptGetMax, 1001)),
			proto.StatusBadRequest, "1000"},
		{"bound not 0 or 1", proto.OpReserve,
			reserveBody(t, []string{"q"}, proto.U8Option(proto.OptReserveBound, 2)),
			proto.StatusBadRequest, "neither"},
		{"lease of centuries", proto.OpReserve,
			reserveBody(t, []string{"q"}, proto.U64Option(proto.OptReserveLease, 1<<62)),
			proto.StatusBadRequest, "100 years"},
		{"unknown tag", proto.OpReserve, reserveBody(t, []string{"q"}, proto.U8Option(9, 0)),
			proto.StatusBadRequest, "tag 9"},
		{"invalid key", proto.OpReserve, reserveBody(t, []string{"q", "a\nb"}),
			proto.StatusInvalidKey, "control"},
		{"ack unknown", proto.OpAck, idBody(12345), proto.StatusNotFound, ""},
		{"ack with an option", proto.OpAck,
			idBody(1, proto.DurationOption(proto.OptNackDelay, time.Second)),
			proto.StatusBadRequest, "tag 1"},
		{"nack unknown", proto.OpNack, idBody(12345), proto.StatusNotFound, ""},
		{"touch unknown", proto.OpTouch, idBody(12345), proto.StatusNotFound, ""},
		{"put delay of centuries", proto.OpPut, putBody(t, "q",
			proto.U64Option(proto.OptPutDelay, 1<<62)), proto.StatusBadRequest, "100 years"},
		{"put ttl not a u64", proto.OpPut, putBody(t, "q",
			proto.Option{Tag: proto.OptPutTTL, Value: []byte{1}}), proto.StatusBadRequest, "8"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want(t, c.Do(tt.op, uint32(i), tt.body), tt.st, tt.text)
		})
	}
	// A body cut short breaks the stream: BadFrame, and the connection closes.
	want(t, c.Do(proto.OpAck, 99, []byte{0, 0, 1}), proto.StatusBadFrame, "")
	expectClosed(t, c)
}

func putBody(t *testing.T, key string, opts ...proto.Option) []byte {
	t.Helper()
	b, _ := proto.AppendKey(nil, key)
	b, err := proto.AppendOptions(b, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return append(b, "msg"...)
}

// TestServerDroppedConsumerLeasesReturnC18: a consumer holding bound leases drops its
// connection without a word; every message it held is delivered again exactly once,
// without waiting for the (hour-long) leases.
func TestServerDroppedConsumerLeasesReturnC18(t *testing.T) {
	s := testutil.StartServer(t)
	p := testutil.Dial(t, s.Addr)
	for i := range 8 {
		put(t, p, uint32(i), "work", fmt.Appendf(nil, "m%d", i))
	}

	victim := testutil.Dial(t, s.Addr)
	held := items(t, victim.Do(proto.OpReserve, 1, reserveBody(t, []string{"work"},
		ms(time.Hour), proto.U32Option(proto.OptGetMax, 5))), true)
	// A detached lease is not the connection's: it stays out.
	detached := items(t, victim.Do(proto.OpReserve, 2, reserveBody(t, []string{"work"},
		ms(time.Hour), proto.U8Option(proto.OptReserveBound, 0))), true)
	if len(held) != 5 || len(detached) != 1 {
		t.Fatalf("held %d, detached %d", len(held), len(detached))
	}
	victim.NetConn().Close()

	c := testutil.Dial(t, s.Addr)
	seen := map[string]int{}
	for i := 0; len(seen) < 7; i++ {
		its := items(t, c.Do(proto.OpReserve, uint32(i), reserveBody(t, []string{"work"},
			ms(time.Hour), proto.U32Option(proto.OptGetMax, 10),
			proto.U64Option(proto.OptGetWait, 10_000))), true)
		for _, it := range its {
			seen[string(it.Payload)]++
		}
	}
	for m, n := range seen {
		if n != 1 {
			t.Fatalf("%s delivered %d times", m, n)
		}
	}
	if _, ok := seen[string(detached[0].Payload)]; ok {
		t.Fatal("the detached lease came back with the connection")
	}
	want(t, c.Do(proto.OpReserve, 100, reserveBody(t, []string{"work"})), proto.StatusEmpty, "")
	want(t, c.Do(proto.OpAck, 101, idBody(detached[0].DeliveryID)), proto.StatusOK, "")
}

// TestServerPipelinedReservesAllServed: several waiting RESERVEs on one connection,
// then puts on another, each served once.
func TestServerPipelinedReservesAllServed(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	got := replies(c)
	const n = 4
	for i := range n {
		c.Send(proto.OpReserve, uint32(i), reserveBody(t, []string{"r"},
			proto.U64Option(proto.OptGetWait, 30_000)))
	}
	c.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == n })
	p := testutil.Dial(t, s.Addr)
	for i := range n {
		put(t, p, uint32(i), "r", []byte{byte('a' + i)})
	}
	ids := map[uint32]bool{}
	msgs := map[string]bool{}
	for range n {
		f := next(t, got, 5*time.Second)
		ids[f.ID] = true
		msgs[string(items(t, f, true)[0].Payload)] = true
	}
	if len(ids) != n || len(msgs) != n {
		t.Fatalf("replies %v, messages %v", ids, msgs)
	}
}

// TestServerLeaseExpiryRedeliversC13: a lease that runs out while its connection sits
// idle is delivered to a consumer waiting on another connection, with a higher count.
func TestServerLeaseExpiryRedeliversC13(t *testing.T) {
	s := testutil.StartServer(t)
	a := testutil.Dial(t, s.Addr)
	put(t, a, 1, "ttr", []byte("job"))
	start := time.Now()
	first := items(t, a.Do(proto.OpReserve, 2, reserveBody(t, []string{"ttr"},
		ms(300*time.Millisecond))), true)[0]

	b := testutil.Dial(t, s.Addr)
	f := b.Do(proto.OpReserve, 1, reserveBody(t, []string{"ttr"},
		proto.U64Option(proto.OptGetWait, 10_000)))
	took := time.Since(start)
	again := items(t, f, true)[0]
	if again.ID != first.ID || again.Count != 2 || string(again.Payload) != "job" {
		t.Fatalf("redelivery %+v", again)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("redelivered after %v, lease 300ms", took)
	}
	// The first holder's ack comes too late, and changes nothing.
	want(t, a.Do(proto.OpAck, 3, idBody(first.DeliveryID)), proto.StatusNotFound, "")
	want(t, b.Do(proto.OpAck, 2, idBody(again.DeliveryID)), proto.StatusOK, "")
}

// TestServerDelayedNotLeasedEarlyC17: a message delayed longer than the lease is
// delivered once, not before its delay.
func TestServerDelayedNotLeasedEarlyC17(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	start := time.Now()
	want(t, c.Do(proto.OpPut, 1, putBody(t, "eta",
		proto.DurationOption(proto.OptPutDelay, 600*time.Millisecond))), proto.StatusOK, "")
	f := c.Do(proto.OpReserve, 2, reserveBody(t, []string{"eta"}, ms(200*time.Millisecond),
		proto.U64Option(proto.OptGetWait, 10_000)))
	it := items(t, f, true)[0]
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("delivered after %v, before its 600ms delay", took)
	}
	want(t, c.Do(proto.OpAck, 3, idBody(it.DeliveryID)), proto.StatusOK, "")
	want(t, c.Do(proto.OpReserve, 4, reserveBody(t, []string{"eta"},
		proto.U64Option(proto.OptGetWait, 400))), proto.StatusEmpty, "")
}

// TestServerAckRacesExpiryC19: acks sent around the lease's deadline: each message is
// either acked once or delivered again intact, never both.
func TestServerAckRacesExpiryC19(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	const lease = 20 * time.Millisecond
	for i := range 30 {
		payload := fmt.Appendf(nil, "job-%d", i)
		put(t, c, 1, "race", payload)
		it := items(t, c.Do(proto.OpReserve, 2, reserveBody(t, []string{"race"}, ms(lease))),
			true)[0]
		time.Sleep(lease + time.Duration(i%5-2)*time.Millisecond)
		acked := c.Do(proto.OpAck, 3, idBody(it.DeliveryID)).Status() == proto.StatusOK

		f := c.Do(proto.OpReserve, 4, reserveBody(t, []string{"race"},
			proto.U64Option(proto.OptGetWait, 200)))
		switch {
		case acked && f.Status() != proto.StatusEmpty:
			t.Fatalf("round %d: acked, then delivered again", i)
		case !acked:
			again := items(t, f, true)[0]
			if string(again.Payload) != string(payload) || again.ID != it.ID {
				t.Fatalf("round %d: redelivered %q id %d", i, again.Payload, again.ID)
			}
			want(t, c.Do(proto.OpAck, 5, idBody(again.DeliveryID)), proto.StatusOK, "")
		}
	}
}

// TestServerBlockedGetRacesPutC04: waits started together with puts always get the
// message; none times out while the queue holds one.
func TestServerBlockedGetRacesPutC04(t *testing.T) {
	s := testutil.StartServer(t)
	a := testutil.Dial(t, s.Addr)
	b := testutil.Dial(t, s.Addr)
	for i := range 200 {
		var wg sync.WaitGroup
		var f proto.Frame
		wg.Go(func() { f = a.Do(proto.OpGet, uint32(i), getWaitBody(t, "c04", 5000)) })
		put(t, b, uint32(i), "c04", fmt.Appendf(nil, "%d", i))
		wg.Wait()
		want(t, f, proto.StatusOK, "")
		if string(f.Body[8:]) != fmt.Sprint(i) {
			t.Fatalf("round %d got %q", i, f.Body[8:])
		}
	}
}

// TestServerBatchReplyFitsMaxFrame: a batch whose messages would not fit one reply is
// cut; the rest stay in the queue (GETBATCH) or go back to it (RESERVE).
func TestServerBatchReplyFitsMaxFrame(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithBroker(func(c *broker.Config) {
		c.MaxMessageBytes = 1024
	}))
	c := testutil.Dial(t, s.Addr)
	for _, op := range []proto.Op{proto.OpGetBatch, proto.OpReserve} {
		for i := range 6 {
			put(t, c, uint32(i), "big", make([]byte, 1000))
		}
		f := c.Do(op, 9, reserveBody(t, []string{"big"}, proto.U32Option(proto.OptGetMax, 6)))
		its := items(t, f, op == proto.OpReserve)
		if len(its) == 0 || len(its) >= 6 || len(f.Body)+proto.HeaderSize > int(c.Hello.MaxFrame) {
			t.Fatalf("%s: %d items in %d bytes", op, len(its), len(f.Body))
		}
		if n := length(t, c, 10, "big"); int(n) != 6-len(its) {
			t.Fatalf("%s: len %d after taking %d of 6", op, n, len(its))
		}
		rest := items(t, c.Do(proto.OpGetBatch, 11, reserveBody(t, []string{"big"},
			proto.U32Option(proto.OptGetMax, 6))), false)
		if len(rest) != 6-len(its) {
			t.Fatalf("%s: %d left", op, len(rest))
		}
	}
}

func TestServerPutBatchAllOrNone(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithBroker(func(c *broker.Config) {
		c.MaxMessageBytes = 1024
	}))
	c := testutil.Dial(t, s.Addr)
	batch := func(msgs ...[]byte) []byte {
		b, _ := proto.AppendKey(nil, "pb")
		b, _ = proto.AppendOptions(b)
		b = proto.AppendU32(b, uint32(len(msgs)))
		for _, m := range msgs {
			b = proto.AppendBytes(b, m)
		}
		return b
	}
	f := c.Do(proto.OpPutBatch, 1, batch([]byte("a"), nil, []byte("c")))
	want(t, f, proto.StatusOK, "")
	d := proto.NewBody(f.Body)
	if n, _ := d.U32(); n != 3 || d.Len() != 24 {
		t.Fatalf("reply % x", f.Body)
	}
	// One message over the limit: none is stored.
	want(t, c.Do(proto.OpPutBatch, 2, batch([]byte("x"), make([]byte, 1025))),
		proto.StatusMessageTooLarge, "")
	want(t, c.Do(proto.OpPutBatch, 3, batch()), proto.StatusBadRequest, "no message")
	if n := length(t, c, 4, "pb"); n != 3 {
		t.Fatalf("len %d, want 3", n)
	}
	// A count that claims more messages than the body holds breaks the stream.
	short := batch()
	short[len(short)-1] = 9
	want(t, c.Do(proto.OpPutBatch, 5, short), proto.StatusBadFrame, "9 messages")
	expectClosed(t, c)
}

func TestServerQueueSetAndShow(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	body := func(key string, opts ...proto.Option) []byte {
		b, _ := proto.AppendKey(nil, key)
		b, _ = proto.AppendOptions(b, opts...)
		return b
	}
	f := c.Do(proto.OpQueueSet, 1, body("qs",
		proto.U64Option(proto.OptQueueMaxLength, 5),
		proto.U8Option(proto.OptQueueOverflow, proto.OverflowDropOldest),
		proto.Option{Tag: proto.OptQueueDeadLetter, Value: []byte("graveyard")},
		proto.DurationOption(proto.OptQueueLease, 90*time.Second)))
	want(t, f, proto.StatusOK, "")
	for _, part := range []string{`"name":"qs"`, `"max_length":5`, `"overflow":"drop-oldest"`,
		`"dead_letter":"graveyard"`, `"default_lease_ms":90000`, `"inflight":0`} {
		if !strings.Contains(string(f.Body), part) {
			t.Fatalf("QUEUE_SET reply %s lacks %s", f.Body, part)
		}
	}
	show := c.Do(proto.OpQueueShow, 2, body("qs"))
	want(t, show, proto.StatusOK, "")
	if string(show.Body) != string(f.Body) {
		t.Fatalf("show %s\nset  %s", show.Body, f.Body)
	}
	// A queue with no settings shows the defaults.
	want(t, c.Do(proto.OpQueueShow, 3, body("fresh")), proto.StatusOK, `"dead_letter":"fresh.dlq"`)

	want(t, c.Do(proto.OpQueueSet, 4, body("qs", proto.U8Option(proto.OptQueueOverflow, 7))),
		proto.StatusBadRequest, "overflow")
	want(t, c.Do(proto.OpQueueSet, 5, body("qs", proto.U8Option(42, 0))),
		proto.StatusBadRequest, "tag 42")
	want(t, c.Do(proto.OpQueueShow, 6, body("a\x00b")), proto.StatusInvalidKey, "")
	want(t, c.Do(proto.OpQueueShow, 7, body("qs")), proto.StatusOK, `"max_length":5`)
}

// TestServerBlockedReserveCancelledOnCloseC01: a waiting RESERVE or GETBATCH whose
// client closes takes nothing with it, and leaves no waiter behind.
func TestServerBlockedReserveCancelledOnCloseC01(t *testing.T) {
	s := testutil.StartServer(t)
	a := testutil.Dial(t, s.Addr)
	wait := proto.U64Option(proto.OptGetWait, 60_000)
	a.Send(proto.OpReserve, 1, reserveBody(t, []string{"k"}, wait))
	a.Send(proto.OpGetBatch, 2, reserveBody(t, []string{"k", "other"}, wait))
	a.Flush()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 2 })
	a.Close()
	testutil.WaitFor(t, 5*time.Second, func() bool { return waiting(s) == 0 })

	b := testutil.Dial(t, s.Addr)
	put(t, b, 1, "k", []byte("v"))
	if n := length(t, b, 2, "k"); n != 1 {
		t.Fatalf("len = %d, want 1", n)
	}
	its := items(t, b.Do(proto.OpGetBatch, 3, reserveBody(t, []string{"k"})), false)
	if len(its) != 1 || string(its[0].Payload) != "v" {
		t.Fatalf("items %+v", its)
	}
}

// TestServerReserveBatchOverFrameCountsNoDelivery: the messages a RESERVE batch
// leaves behind because they would not fit its reply are not delivered, so a queue
// with max-deliveries 1 dead-letters none of them.
func TestServerReserveBatchOverFrameCountsNoDelivery(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithBroker(func(c *broker.Config) {
		c.MaxMessageBytes = 1024
	}))
	settings := broker.QueueSettings{MaxDeliveries: 1}
	if err := s.Broker.SetQueue(t.Context(), "one", settings); err != nil {
		t.Fatal(err)
	}
	c := testutil.Dial(t, s.Addr)
	for i := range 6 {
		put(t, c, uint32(i), "one", make([]byte, 1000))
	}
	total := 0
	for i := 0; total < 6; i++ {
		its := items(t, c.Do(proto.OpReserve, uint32(i), reserveBody(t, []string{"one"},
			proto.U32Option(proto.OptGetMax, 6))), true)
		for _, it := range its {
			if it.Count != 1 {
				t.Fatalf("delivery count %d, want 1", it.Count)
			}
		}
		total += len(its)
		if i > 6 {
			t.Fatalf("only %d of 6 delivered", total)
		}
	}
	if st := s.Broker.Stats(0); st.QueueStats[0].DeadLettered != 0 {
		t.Fatalf("%d dead-lettered", st.QueueStats[0].DeadLettered)
	}
}
