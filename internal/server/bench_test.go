package server_test

import (
	"testing"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/testutil"
	"github.com/keyq/keyq/internal/wal"
)

// benchMessage is the payload of every benchmark message.
var benchMessage = make([]byte, 128)

// BenchmarkServerPut measures one PUT round trip at a time over loopback TCP.
func BenchmarkServerPut(b *testing.B) {
	s := testutil.StartServer(b)
	c := testutil.Dial(b, s.Addr)
	body := testutil.KeyBody(b, "bench", benchMessage)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		roundTrip(b, c, proto.OpPut, uint32(i), body)
	}
}

// BenchmarkServerGet measures one GET round trip at a time, from a queue filled first.
func BenchmarkServerGet(b *testing.B) {
	s := testutil.StartServer(b)
	c := testutil.Dial(b, s.Addr)
	putBody := testutil.KeyBody(b, "bench", benchMessage)
	getBody := testutil.KeyBody(b, "bench", nil)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		roundTrip(b, c, proto.OpPut, uint32(i), putBody)
		b.StartTimer()
		roundTrip(b, c, proto.OpGet, uint32(i), getBody)
	}
}

// BenchmarkServerPipelined measures PUT then GET on one connection with 64 requests
// in flight; ns/op is per request.
func BenchmarkServerPipelined(b *testing.B) {
	const depth = 64
	s := testutil.StartServer(b)
	c := testutil.Dial(b, s.Addr)
	putBody := testutil.KeyBody(b, "bench", benchMessage)
	getBody := testutil.KeyBody(b, "bench", nil)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	sent, recvd := 0, 0
	for b.Loop() {
		op, body := proto.OpPut, putBody
		if sent%2 == 1 {
			op, body = proto.OpGet, getBody
		}
		if err := c.Send(op, uint32(sent), body); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-recvd >= depth {
			recvd += drain(b, c, depth/2)
		}
	}
	drain(b, c, sent-recvd)
}

func roundTrip(b *testing.B, c *testutil.Conn, op proto.Op, id uint32, body []byte) {
	if err := c.Send(op, id, body); err != nil {
		b.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	f, err := c.Recv()
	if err != nil || f.Status() != proto.StatusOK || f.ID != id {
		b.Fatalf("%s reply: %+v, %v", op, f, err)
	}
}

// drain flushes and reads n replies.
func drain(b *testing.B, c *testutil.Conn, n int) int {
	if err := c.Flush(); err != nil {
		b.Fatal(err)
	}
	for range n {
		f, err := c.Recv()
		if err != nil || f.Status() != proto.StatusOK {
			b.Fatalf("reply: %+v, %v", f, err)
		}
	}
	return n
}

// BenchmarkServerPipelinedDurablePut measures PUTs on one connection, 64 in flight, to
// a broker on a write-ahead log that fsyncs every put (the default); ns/op is per put.
func BenchmarkServerPipelinedDurablePut(b *testing.B) {
	const depth = 64
	l, err := wal.Open(b.TempDir(), wal.Options{Fsync: wal.FsyncAlways})
	if err != nil {
		b.Fatal(err)
	}
	s := testutil.StartServer(b, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = l
	}))
	c := testutil.Dial(b, s.Addr)
	body := testutil.KeyBody(b, "bench", benchMessage)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	sent, recvd := 0, 0
	for b.Loop() {
		if err := c.Send(proto.OpPut, uint32(sent), body); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-recvd >= depth {
			recvd += drain(b, c, depth/2)
		}
	}
	drain(b, c, sent-recvd)
}

// BenchmarkServerPipelinedDurable measures PUT then GET on one connection, 64 in
// flight, on a write-ahead log that fsyncs every change; ns/op is per request.
func BenchmarkServerPipelinedDurable(b *testing.B) {
	const depth = 64
	l, err := wal.Open(b.TempDir(), wal.Options{Fsync: wal.FsyncAlways})
	if err != nil {
		b.Fatal(err)
	}
	s := testutil.StartServer(b, testutil.WithBroker(func(cfg *broker.Config) {
		cfg.Store = l
	}))
	c := testutil.Dial(b, s.Addr)
	putBody := testutil.KeyBody(b, "bench", benchMessage)
	getBody := testutil.KeyBody(b, "bench", nil)

	b.SetBytes(int64(len(benchMessage)))
	b.ReportAllocs()
	sent, recvd := 0, 0
	for b.Loop() {
		op, body := proto.OpPut, putBody
		if sent%2 == 1 {
			op, body = proto.OpGet, getBody
		}
		if err := c.Send(op, uint32(sent), body); err != nil {
			b.Fatal(err)
		}
		sent++
		if sent-recvd >= depth {
			recvd += drain(b, c, depth/2)
		}
	}
	drain(b, c, sent-recvd)
}

// BenchmarkServerBatch measures a PUTBATCH of 64 messages then a GETBATCH of up to
// 64, one round trip each; an op is the pair, so allocs/op is per 64 messages.
func BenchmarkServerBatch(b *testing.B) {
	const n = 64
	s := testutil.StartServer(b)
	c := testutil.Dial(b, s.Addr)
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = string(benchMessage)
	}
	putBody := putBatchBody(b, "bench", msgs...)
	getBody := batchBody(b, "bench", n)

	b.SetBytes(n * int64(len(benchMessage)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		roundTrip(b, c, proto.OpPutBatch, uint32(2*i), putBody)
		roundTrip(b, c, proto.OpGetBatch, uint32(2*i+1), getBody)
	}
}
