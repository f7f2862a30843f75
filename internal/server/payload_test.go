package server_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/testutil"
	"github.com/keyq/keyq/internal/wal"
)

// payloadSizes cover the broker's payload pools: the smallest class, one just above,
// the middle, one over the connection's write buffer (written around it), and one
// over the largest pooled size.
var payloadSizes = []int{1, 16, 17, 1000, 9000, 70 << 10}

// sizedPayloads returns one payload of each of payloadSizes, each filled with a byte
// of its own, so that a payload that shows another's bytes, or the poison of a
// released buffer (0xA5, under the race detector), is told from its own.
func sizedPayloads() [][]byte {
	ps := make([][]byte, len(payloadSizes))
	for i, n := range payloadSizes {
		ps[i] = bytes.Repeat([]byte{'a' + byte(i)}, n)
	}
	return ps
}

// wantPayload fails t unless got is want.
func wantPayload(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes starting %.8q, want %d of %q (0xa5 is the poison of a "+
			"released buffer)", what, len(got), got, len(want), want[:1])
	}
}

// TestRepliesNeverCarryAReleasedPayload: the server gives each message's buffer back
// to the broker once its reply is written, and the next put of the same size may
// reuse it at once. Pipelined puts and takes make that happen between replies; under
// the race detector a released buffer is poisoned, so a reply written from one after
// its release, or a lease's message whose buffer went back while the broker kept it
// for redelivery, shows here.
func TestRepliesNeverCarryAReleasedPayload(t *testing.T) {
	for _, durable := range []bool{false, true} {
		name := "memory"
		if durable {
			name = "durable"
		}
		t.Run(name, func(t *testing.T) {
			var opts []testutil.Option
			if durable {
				l, err := wal.Open(t.TempDir(), wal.Options{Fsync: wal.FsyncAlways})
				if err != nil {
					t.Fatal(err)
				}
				opts = append(opts, testutil.WithBroker(func(c *broker.Config) { c.Store = l }))
			}
			srv := testutil.StartServer(t, opts...)
			ctx := context.Background()
			c, err := client.Dial(ctx, srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			checkPipelinedGets(t, c)
			checkBatches(t, c)
			checkRedeliveries(t, c)
			checkWaitingGet(t, c, srv)
		})
	}
}

// checkPipelinedGets sends put, get, put, get... in one write: each get's buffer is
// released as its reply goes out, and the next put may take it.
func checkPipelinedGets(t *testing.T, c *client.Client) {
	ps := sizedPayloads()
	p := c.Pipeline()
	var gets []*client.Result[client.Message]
	for range 3 {
		for _, pl := range ps {
			p.Put("pipe", pl)
			gets = append(gets, p.Get("pipe"))
		}
	}
	if err := p.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		m, err := g.Result()
		if err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		wantPayload(t, "pipelined get", m.Data, ps[i%len(ps)])
	}
}

// checkBatches takes batches while puts of the same sizes follow them in the pipeline.
func checkBatches(t *testing.T, c *client.Client) {
	ps := sizedPayloads()
	p := c.Pipeline()
	var batches []*client.Result[[]client.Message]
	for range 3 {
		p.PutBatch("batch", ps)
		batches = append(batches, p.GetBatch([]string{"batch"}, len(ps), 0))
	}
	if err := p.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		ms, err := b.Result()
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range ms {
			wantPayload(t, "batch", m.Data, ps[i])
		}
	}
}

// checkRedeliveries reserves, nacks and reserves again: the broker keeps each leased
// message for its redelivery while the reply's copy is released.
func checkRedeliveries(t *testing.T, c *client.Client) {
	ctx := context.Background()
	ps := sizedPayloads()
	if _, err := c.PutBatch(ctx, "lease", ps); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		var ds []client.Delivery
		for len(ds) < len(ps) {
			got, err := c.Reserve(ctx, []string{"lease"},
				client.ReserveOptions{Max: len(ps), Lease: time.Minute})
			if err != nil {
				t.Fatalf("round %d: reserve: %v", round, err)
			}
			ds = append(ds, got...)
		}
		p := c.Pipeline()
		for i, d := range ds {
			wantPayload(t, "delivery", d.Data, ps[i])
			p.Nack(d.DeliveryID, 0)
			p.Put("other", ps[i]) // may reuse a released buffer
		}
		if err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// checkWaitingGet takes messages handed straight to a waiting get by a put.
func checkWaitingGet(t *testing.T, c *client.Client, srv *testutil.Server) {
	ctx := context.Background()
	other, err := client.Dial(ctx, srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, pl := range sizedPayloads() {
		got := make(chan client.Message, 1)
		go func() {
			m, _ := c.GetWait(ctx, "wait", time.Minute)
			got <- m
		}()
		testutil.WaitFor(t, 10*time.Second, func() bool {
			return srv.Broker.Stats(0).Waiting == 1
		})
		if _, err := other.Put(ctx, "wait", pl); err != nil {
			t.Fatal(err)
		}
		wantPayload(t, "waiting get", (<-got).Data, pl)
	}
}
