package wal

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// benchPayload is the message size of the throughput benchmarks.
const benchPayload = 256

// BenchmarkBrokerPutGet measures a put and a get of one message through a broker on
// the log, with P producers each on its own queue; an op is one put plus one get.
// It reports the fsyncs per op (a put and a get each wait for one).
//
//	go test -run '^$' -bench BrokerPutGet -benchtime 2s ./internal/wal/
func BenchmarkBrokerPutGet(b *testing.B) {
	cases := []struct {
		fsync     FsyncPolicy
		producers int
	}{
		{FsyncAlways, 1}, {FsyncAlways, 8}, {FsyncAlways, 64},
		{FsyncInterval, 64}, {FsyncNever, 64},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("fsync=%v/producers=%d", c.fsync, c.producers), func(b *testing.B) {
			benchBroker(b, c.fsync, c.producers, true)
		})
	}
}

// BenchmarkBrokerPut measures puts alone (an op is one acknowledged put) with fsync
// always and 64 producers, and reports the fsyncs per acknowledged put.
//
//	go test -run '^$' -bench BrokerPut$ -benchtime 2s ./internal/wal/
func BenchmarkBrokerPut(b *testing.B) {
	for _, producers := range []int{1, 64} {
		b.Run(fmt.Sprintf("fsync=always/producers=%d", producers), func(b *testing.B) {
			benchBroker(b, FsyncAlways, producers, false)
		})
	}
}

// benchBroker runs b.N ops split over producers, each on its own queue: a put, and
// a get of it when withGet is set.
func benchBroker(b *testing.B, fsync FsyncPolicy, producers int, withGet bool) {
	l := mustOpen(b, b.TempDir(), Options{Fsync: fsync})
	br, err := broker.New(broker.Config{Store: l})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx := context.Background()
	payload := make([]byte, benchPayload)

	b.SetBytes(benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	syncs := l.Stats().Syncs
	start := time.Now()
	var wg sync.WaitGroup
	for p := range producers {
		n := b.N / producers
		if p < b.N%producers {
			n++
		}
		queue := fmt.Sprintf("bench-%d", p)
		wg.Go(func() {
			for range n {
				if _, err := br.Put(ctx, queue, payload); err != nil {
					b.Error(err)
					return
				}
				if !withGet {
					continue
				}
				if _, err := br.Get(ctx, queue, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(l.Stats().Syncs-syncs)/float64(b.N), "fsyncs/op")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

// BenchmarkRecovery measures Open plus Replay of a log of 128 MiB of 4 KiB live
// messages, and reports the time per GiB of log.
//
//	go test -run '^$' -bench Recovery -benchtime 5x ./internal/wal/
func BenchmarkRecovery(b *testing.B) {
	const size, payloadSize = 128 << 20, 4096
	dir := b.TempDir()
	opts := Options{Fsync: FsyncNever}
	l := mustOpen(b, dir, opts)
	payload := make([]byte, payloadSize)
	for id := uint64(1); id <= size/payloadSize; id++ {
		rec := storage.Record{Op: storage.OpPut, Queue: fmt.Sprintf("q%d", id%1000), ID: id,
			Pos: int64(id), Payload: payload}
		if _, _, err := l.Append(&rec); err != nil {
			b.Fatal(err)
		}
	}
	diskBytes := l.Stats().DiskBytes
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}

	b.SetBytes(diskBytes)
	b.ResetTimer()
	for b.Loop() {
		l := mustOpen(b, dir, opts)
		n := 0
		if _, err := l.Replay(func(*storage.Record, storage.Location) error {
			n++
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		l.Close()
		if n != size/payloadSize {
			b.Fatalf("replayed %d puts, want %d", n, size/payloadSize)
		}
	}
	perGiB := b.Elapsed().Seconds() / float64(b.N) * float64(1<<30) / float64(diskBytes)
	b.ReportMetric(perGiB, "s/GiB")
}
