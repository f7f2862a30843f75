package bench

import (
	"context"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/testutil"
)

func TestKeyqDriverDeliversExactlyOnce(t *testing.T) {
	srv := testutil.StartServer(t)
	for _, cfg := range []Config{
		{Count: 300, QueuePrefix: "one-"},
		{Producers: 4, Consumers: 4, Queues: 4, Depth: 16, MessageBytes: 1024,
			Count: 3000, QueuePrefix: "four-"},
		{Producers: 3, Consumers: 2, Queues: 5, Depth: 4, Count: 500, QueuePrefix: "odd-"},
		{Producers: 2, Consumers: 2, Queues: 2, Depth: 2, Batch: 16, Count: 1000,
			QueuePrefix: "batch-"},
		{Producers: 2, Consumers: 2, Queues: 2, Depth: 4, Mix: MixPutReserveAck,
			Count: 400, QueuePrefix: "lease-"},
		{Producers: 1, Consumers: 2, Batch: 8, Mix: MixPutReserveAck, Count: 200,
			QueuePrefix: "lease-batch-"},
	} {
		cfg.Duration = time.Minute // an upper bound; the count ends the run
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := Run(ctx, cfg, &KeyqDriver{Addr: srv.Addr})
		cancel()
		if err != nil {
			t.Fatalf("run %+v: %v", cfg, err)
		}
		if !res.ExactlyOnce || res.Errors != 0 || res.Delivered != cfg.Count {
			t.Fatalf("delivered %d of %d, exactly once %v, errors %d %v", res.Delivered,
				cfg.Count, res.ExactlyOnce, res.Errors, res.ErrorSample)
		}
		for _, q := range queueNames(cfg) {
			if n, err := srv.Broker.Len(q); err != nil || n != 0 {
				t.Errorf("queue %s holds %d messages (%v), want 0", q, n, err)
			}
		}
	}
}

func TestKeyqDriverReportsDialError(t *testing.T) {
	srv := testutil.StartServer(t)
	addr := srv.Addr
	srv.Server.Close()
	_, err := Run(context.Background(), Config{Count: 1}, &KeyqDriver{Addr: addr})
	if err == nil {
		t.Fatal("run against a closed server succeeded")
	}
}
