package broker

import (
	"context"
	"testing"
	"time"
)

// TestReserveMaxBytesStopsTheBatch: a reserve with MaxBytes takes messages while
// their payloads fit it, and always the first, whatever its size.
func TestReserveMaxBytesStopsTheBatch(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	for _, n := range []int{300, 100, 100, 100} {
		if _, err := b.Put(ctx, "q", make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}

	ds, err := b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 4, MaxBytes: 250})
	if err != nil || len(ds) != 1 || len(ds[0].Payload) != 300 {
		t.Fatalf("first reserve = %d deliveries, %v; want the 300-byte one alone", len(ds), err)
	}
	ds, err = b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 4, MaxBytes: 250})
	if err != nil || len(ds) != 2 {
		t.Fatalf("second reserve = %d deliveries, %v; want 2 of 100 bytes", len(ds), err)
	}
	if n, _ := b.Len("q"); n != 1 {
		t.Fatalf("len = %d, want 1 left untouched", n)
	}
	ds, err = b.Reserve(ctx, []string{"q"}, ReserveOptions{Max: 4})
	if err != nil || len(ds) != 1 || ds[0].Count != 1 {
		t.Fatalf("the message left = %+v, %v; want its first delivery", ds, err)
	}
}

// TestReserveMaxBytesAfterWaiting: a reserve woken by a batch put still keeps to
// MaxBytes for the messages it takes after the first.
func TestReserveMaxBytesAfterWaiting(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	got := make(chan []Delivery, 1)
	go func() {
		ds, err := b.Reserve(ctx, []string{"w"},
			ReserveOptions{Max: 3, MaxBytes: 150, Wait: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- ds
	}()
	deadline := time.Now().Add(5 * time.Second)
	for b.Stats(0).Waiting != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the reserve never waited")
		}
		time.Sleep(time.Millisecond)
	}
	msgs := [][]byte{make([]byte, 100), make([]byte, 100), make([]byte, 100)}
	if _, err := b.PutBatch(ctx, "w", msgs, PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if ds := <-got; len(ds) != 1 {
		t.Fatalf("woken reserve took %d, want 1 within 150 bytes", len(ds))
	}
	if n, _ := b.Len("w"); n != 2 {
		t.Fatalf("len = %d, want 2", n)
	}
}

// TestGetBatchWithinStopsTheBatch: GetBatchWithin takes messages while their payloads
// fit maxBytes, and always the first.
func TestGetBatchWithinStopsTheBatch(t *testing.T) {
	b := newTestBroker(t, Config{})
	ctx := context.Background()
	for _, n := range []int{300, 100, 100, 100} {
		if _, err := b.Put(ctx, "g", make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []int{1, 2, 1} {
		msgs, err := b.GetBatchWithin(ctx, []string{"g"}, 4, 250, 0)
		if err != nil || len(msgs) != want {
			t.Fatalf("GetBatchWithin = %d messages, %v; want %d", len(msgs), err, want)
		}
	}
	if _, err := b.GetBatchWithin(ctx, []string{"g"}, 4, 250, 0); err != ErrEmpty {
		t.Fatalf("empty queue: %v", err)
	}
}
