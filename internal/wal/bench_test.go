package wal

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
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

// BenchmarkLogAppendWait measures the log alone under fsync always: W writers each
// append a 100-byte put (or a batch of them) and wait for it, as the server's
// connections do. An op is one acknowledged record. It reports how many records
// each fsync covered and where a record's time goes: its append (lock and copy),
// its wait for the syncer, and the mean fsync.
//
//	go test -run '^$' -bench LogAppendWait -benchtime 2s ./internal/wal/
func BenchmarkLogAppendWait(b *testing.B) {
	cases := []struct{ writers, batch int }{{1, 1}, {16, 1}, {64, 1}, {8, 64}}
	for _, c := range cases {
		name := fmt.Sprintf("writers=%d", c.writers)
		if c.batch > 1 {
			name += fmt.Sprintf("/batch=%d", c.batch)
		}
		b.Run(name, func(b *testing.B) { benchAppendWait(b, c.writers, c.batch) })
	}
}

// benchAppendWait has each writer append batch records and wait for the last.
func benchAppendWait(b *testing.B, writers, batch int) {
	var fsyncs fsyncRecorder
	l := mustOpen(b, b.TempDir(), Options{Fsync: FsyncAlways, OnFsync: fsyncs.observe})
	defer l.Close()
	payload := make([]byte, 100)

	b.ReportAllocs()
	b.ResetTimer()
	var appendNs, waitNs atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		queue := fmt.Sprintf("q%d", w)
		wg.Go(func() {
			var app, wait time.Duration
			for i := 0; i < n; i += batch {
				var ticket storage.Ticket
				var err error
				t0 := time.Now()
				for j := i; j < min(n, i+batch) && err == nil; j++ {
					rec := putRec(queue, uint64(w*b.N+j+1), int64(j), payload)
					_, ticket, err = l.Append(rec)
				}
				t1 := time.Now()
				if err == nil {
					err = l.Wait(context.Background(), ticket)
				}
				if err != nil {
					b.Error(err)
					return
				}
				app += t1.Sub(t0)
				wait += time.Since(t1) * time.Duration(min(batch, n-i))
			}
			appendNs.Add(int64(app))
			waitNs.Add(int64(wait))
		})
	}
	wg.Wait()
	b.StopTimer()

	took, _ := fsyncs.calls()
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	if len(took) > 0 {
		b.ReportMetric(float64(b.N)/float64(len(took)), "records/fsync")
		b.ReportMetric(float64(sum.Microseconds())/float64(len(took)), "µs/fsync")
	}
	b.ReportMetric(float64(appendNs.Load())/float64(b.N), "ns/append")
	b.ReportMetric(float64(waitNs.Load())/1e3/float64(b.N), "µs/wait")
}
