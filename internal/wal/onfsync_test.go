package wal

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fsyncRecorder is an Options.OnFsync hook that keeps what it was told.
type fsyncRecorder struct {
	mu   sync.Mutex
	took []time.Duration
	errs []error
}

func (r *fsyncRecorder) observe(d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.took = append(r.took, d)
	r.errs = append(r.errs, err)
}

func (r *fsyncRecorder) calls() ([]time.Duration, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.took...), append([]error(nil), r.errs...)
}

// TestLogOnFsyncReportsSyncsAndErrors: each put waits for an fsync, which the hook
// hears of with its duration; a failing fsync reaches the hook with its error.
func TestLogOnFsyncReportsSyncsAndErrors(t *testing.T) {
	const delay = 2 * time.Millisecond
	fs := &faultFS{syncDelay: delay}
	rec := &fsyncRecorder{}
	opts, _ := testOptions(t, 1<<20)
	opts.fs = fs
	opts.OnFsync = rec.observe
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()

	mustPut(t, l, putRec("q", 1, 1, []byte("one")))
	mustPut(t, l, putRec("q", 2, 2, []byte("two")))
	took, errs := rec.calls()
	if len(took) < 2 {
		t.Fatalf("hook called %d times for two synced puts, want at least 2", len(took))
	}
	for i, d := range took {
		if d < delay || errs[i] != nil {
			t.Fatalf("call %d: took %v, err %v; want at least %v and no error",
				i, d, errs[i], delay)
		}
	}

	fs.mu.Lock()
	fs.syncErr = errInjected
	fs.mu.Unlock()
	_, ticket, err := l.Append(putRec("q", 3, 3, []byte("lost")))
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := l.Wait(context.Background(), ticket); !errors.Is(err, errInjected) {
		t.Fatalf("wait: err = %v, want the injected error", err)
	}
	_, errs = rec.calls()
	if last := errs[len(errs)-1]; !errors.Is(last, errInjected) {
		t.Fatalf("hook's last error = %v, want the injected one", last)
	}
}

// TestLogOnFsyncReportsRolls: the fsync of a segment that rolls reaches the hook too.
func TestLogOnFsyncReportsRolls(t *testing.T) {
	rec := &fsyncRecorder{}
	opts, _ := testOptions(t, MinSegmentBytes)
	opts.Fsync = FsyncNever // so that only rolls fsync
	opts.OnFsync = rec.observe
	l := mustOpen(t, t.TempDir(), opts)
	defer l.Close()

	payload := make([]byte, 1000)
	for id := uint64(1); id <= 10; id++ { // about 10 KB: two rolls or more
		mustPut(t, l, putRec("q", id, int64(id), payload))
	}
	if took, _ := rec.calls(); len(took) < 2 {
		t.Fatalf("hook called %d times over two rolls or more, want at least 2", len(took))
	}
}
