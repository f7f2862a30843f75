package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/storage"
)

// listStore is a Store that keeps every record in memory, gives each a location so
// the broker may drop cached payloads, and can refuse puts on one queue.
type listStore struct {
	mu        sync.Mutex
	records   []storage.Record
	locs      []storage.Location
	payloads  map[storage.Location][]byte
	failPutOn string // queue whose puts are refused
}

var errRefused = errors.New("test store: put refused")

func newListStore() *listStore {
	return &listStore{payloads: make(map[storage.Location][]byte)}
}

func (s *listStore) Append(rec *storage.Record) (storage.Location, storage.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec.Op != storage.OpTake && rec.Queue == s.failPutOn {
		return storage.Location{}, 0, errRefused
	}
	r := *rec
	r.Payload = slices.Clone(rec.Payload)
	loc := storage.Location{Segment: 1, Offset: int64(len(s.records) + 1)}
	s.records = append(s.records, r)
	s.locs = append(s.locs, loc)
	if r.Op != storage.OpTake {
		s.payloads[loc] = r.Payload
	}
	return loc, storage.Ticket(len(s.records)), nil
}

func (s *listStore) Wait(context.Context, storage.Ticket) error { return nil }

func (s *listStore) ReadPayload(loc storage.Location) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payloads[loc]
	if !ok {
		return nil, fmt.Errorf("no put at %v", loc)
	}
	return slices.Clone(p), nil
}

func (s *listStore) Replay(fn func(*storage.Record, storage.Location) error) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next uint64 = 1
	for i := range s.records {
		r := s.records[i]
		if err := fn(&r, s.locs[i]); err != nil {
			return 0, err
		}
		next = max(next, r.ID+1)
	}
	return next, nil
}

func (s *listStore) Close() error { return nil }

func (s *listStore) setFailPutOn(queue string) {
	s.mu.Lock()
	s.failPutOn = queue
	s.mu.Unlock()
}

func newListBroker(t testing.TB, cfg Config) *Broker {
	t.Helper()
	cfg.SweepInterval = time.Hour
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func pushAll(t testing.TB, b *Broker, queue string, at End, values ...string) {
	t.Helper()
	payloads := make([][]byte, len(values))
	for i, v := range values {
		payloads[i] = []byte(v)
	}
	if _, err := b.Push(context.Background(), queue, payloads, at, false); err != nil {
		t.Fatalf("push on %q: %v", queue, err)
	}
}

// contents returns the payloads of the queue, head first.
func contents(t testing.TB, b *Broker, queue string) []string {
	t.Helper()
	msgs, err := b.Range(queue, 0, -1)
	if err != nil {
		t.Fatalf("range %q: %v", queue, err)
	}
	out := []string{}
	for _, m := range msgs {
		out = append(out, string(m.Payload))
	}
	return out
}

func wantContents(t testing.TB, b *Broker, queue string, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := contents(t, b, queue); !slices.Equal(got, want) {
		t.Fatalf("queue %q = %q, want %q", queue, got, want)
	}
}

// cachedOut builds a broker whose cache keeps no payload, so every read goes to the
// store: the paths that read payloads back are then exercised.
func cachedOut(t testing.TB) (*Broker, *listStore) {
	s := newListStore()
	return newListBroker(t, Config{Store: s, CacheBytes: 1}), s
}

func TestListPushReturnsLength(t *testing.T) {
	b := newListBroker(t, Config{})
	ctx := context.Background()

	n, err := b.Push(ctx, "l", [][]byte{[]byte("a"), []byte("b")}, Back, false)
	if err != nil || n != 2 {
		t.Fatalf("rpush = %d, %v; want 2", n, err)
	}
	n, err = b.Push(ctx, "l", [][]byte{[]byte("x"), []byte("y")}, Front, false)
	if err != nil || n != 4 {
		t.Fatalf("lpush = %d, %v; want 4", n, err)
	}
	wantContents(t, b, "l", "y", "x", "a", "b")

	if n, _ := b.Push(ctx, "none", [][]byte{[]byte("a")}, Back, true); n != 0 {
		t.Fatalf("rpushx on missing queue = %d, want 0", n)
	}
	wantContents(t, b, "none")
	if n, _ := b.Push(ctx, "l", [][]byte{[]byte("z")}, Back, true); n != 5 {
		t.Fatalf("rpushx on existing queue = %d, want 5", n)
	}
}

func TestListPushChecksEveryPayloadFirst(t *testing.T) {
	b := newListBroker(t, Config{MaxMessageBytes: 4})
	_, err := b.Push(context.Background(), "l",
		[][]byte{[]byte("ok"), []byte("too long")}, Back, false)
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("push = %v, want ErrMessageTooLarge", err)
	}
	wantContents(t, b, "l")

	_, err = b.Push(context.Background(), "a\x00b", [][]byte{[]byte("v")}, Back, false)
	if !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("push on bad key = %v, want ErrInvalidKey", err)
	}
}

func TestListPushWakesEveryWaiterC02(t *testing.T) {
	b := newListBroker(t, Config{})
	got := make(chan string, 3)
	for i := range 3 {
		go func() {
			m, err := b.Get(context.Background(), "k", 5*time.Second)
			if err != nil {
				got <- "error: " + err.Error()
				return
			}
			got <- string(m.Payload)
		}()
		waitWaiting(t, b, int64(i+1))
	}

	n, err := b.Push(context.Background(), "k",
		[][]byte{[]byte("a"), []byte("b"), []byte("c")}, Back, false)
	if err != nil || n != 3 {
		t.Fatalf("push = %d, %v; want 3 (as Redis counts, before waiters are served)", n, err)
	}
	var all []string
	for range 3 {
		all = append(all, <-got)
	}
	slices.Sort(all)
	if !slices.Equal(all, []string{"a", "b", "c"}) {
		t.Fatalf("waiters got %q, want a, b, c once each", all)
	}
}

func waitWaiting(t testing.TB, b *Broker, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.waiting.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting = %d, want %d", b.waiting.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestListPopNTakesFromEitherEnd(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cached  bool
		from    End
		n       int
		want    []string
		remains []string
	}{
		{"front", true, Front, 2, []string{"a", "b"}, []string{"c", "d"}},
		{"back", true, Back, 3, []string{"d", "c", "b"}, []string{"a"}},
		{"more than held", true, Front, 10, []string{"a", "b", "c", "d"}, nil},
		{"from store", false, Back, 2, []string{"d", "c"}, []string{"a", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newListBroker(t, Config{})
			if !tc.cached {
				b, _ = cachedOut(t)
			}
			pushAll(t, b, "l", Back, "a", "b", "c", "d")
			msgs, err := b.PopN(context.Background(), "l", tc.n, tc.from)
			if err != nil {
				t.Fatalf("pop: %v", err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Payload))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("popped %q, want %q", got, tc.want)
			}
			wantContents(t, b, "l", tc.remains...)
		})
	}
}

func TestListPopNOnEmptyQueue(t *testing.T) {
	b := newListBroker(t, Config{})
	if _, err := b.PopN(context.Background(), "none", 2, Front); !errors.Is(err, ErrEmpty) {
		t.Fatalf("pop on missing queue = %v, want ErrEmpty", err)
	}
	if _, err := b.PopN(context.Background(), "none", 0, Front); err == nil {
		t.Fatalf("pop of 0 messages succeeded, want an error")
	}
}

func TestListPopAnyNTakesFromFirstNonEmpty(t *testing.T) {
	b := newListBroker(t, Config{})
	ctx := context.Background()
	pushAll(t, b, "k2", Back, "1", "2", "3")
	pushAll(t, b, "k3", Back, "x")

	queue, msgs, err := b.PopAnyN(ctx, []string{"k1", "k2", "k3"}, 2, Back, 0)
	if err != nil || queue != "k2" || len(msgs) != 2 || string(msgs[0].Payload) != "3" {
		t.Fatalf("lmpop = %q %v %v, want k2 [3 2]", queue, msgs, err)
	}
	if _, _, err := b.PopAnyN(ctx, []string{"e1", "e2"}, 1, Front, 0); !errors.Is(err, ErrEmpty) {
		t.Fatalf("lmpop on empty queues = %v, want ErrEmpty", err)
	}

	done := make(chan []Message, 1)
	go func() {
		_, msgs, _ := b.PopAnyN(ctx, []string{"w1", "w2"}, 5, Front, 5*time.Second)
		done <- msgs
	}()
	waitWaiting(t, b, 1)
	pushAll(t, b, "w2", Back, "a")
	if msgs := <-done; len(msgs) != 1 || string(msgs[0].Payload) != "a" {
		t.Fatalf("blmpop woke with %v, want [a]", msgs)
	}
}

func TestListRangeCountsLikeRedis(t *testing.T) {
	b, _ := cachedOut(t)
	pushAll(t, b, "l", Back, "a", "b", "c", "d", "e")
	for _, tc := range []struct {
		start, stop int
		want        []string
	}{
		{0, -1, []string{"a", "b", "c", "d", "e"}},
		{0, 0, []string{"a"}},
		{-2, -1, []string{"d", "e"}},
		{-100, 1, []string{"a", "b"}},
		{3, 100, []string{"d", "e"}},
		{3, 1, nil},
		{5, 10, nil},
		{-1, -2, nil},
	} {
		t.Run(fmt.Sprintf("%d..%d", tc.start, tc.stop), func(t *testing.T) {
			msgs, err := b.Range("l", tc.start, tc.stop)
			if err != nil {
				t.Fatalf("range: %v", err)
			}
			var got []string
			for _, m := range msgs {
				got = append(got, string(m.Payload))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("range = %q, want %q", got, tc.want)
			}
		})
	}
	if msgs, err := b.Range("missing", 0, -1); err != nil || len(msgs) != 0 {
		t.Fatalf("range of missing queue = %v, %v; want nothing", msgs, err)
	}
}

func TestListPeekLeavesMessage(t *testing.T) {
	b := newListBroker(t, Config{})
	pushAll(t, b, "l", Back, "a", "b", "c")
	for _, tc := range []struct {
		index int
		want  string
	}{{0, "a"}, {2, "c"}, {-1, "c"}, {-3, "a"}, {3, ""}, {-4, ""}} {
		m, err := b.Peek("l", tc.index)
		if tc.want == "" {
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("peek %d = %q, %v; want ErrEmpty", tc.index, m.Payload, err)
			}
			continue
		}
		if err != nil || string(m.Payload) != tc.want {
			t.Fatalf("peek %d = %q, %v; want %q", tc.index, m.Payload, err, tc.want)
		}
	}
	wantContents(t, b, "l", "a", "b", "c")
}

func TestListRemoveCountsLikeRedis(t *testing.T) {
	for _, tc := range []struct {
		count   int
		removed int
		remains []string
	}{
		{2, 2, []string{"b", "c", "x", "x"}},
		{-2, 2, []string{"x", "x", "b", "c"}},
		{0, 4, []string{"b", "c"}},
		{10, 4, []string{"b", "c"}},
	} {
		for _, cached := range []bool{true, false} {
			name := fmt.Sprintf("count %d cached %v", tc.count, cached)
			t.Run(name, func(t *testing.T) {
				b, s := cachedOut(t)
				if cached {
					s = newListStore()
					b = newListBroker(t, Config{Store: s})
				}
				pushAll(t, b, "l", Back, "x", "x", "b", "c", "x", "x")
				n, err := b.Remove(context.Background(), "l", tc.count, []byte("x"))
				if err != nil || n != tc.removed {
					t.Fatalf("remove = %d, %v; want %d", n, err, tc.removed)
				}
				wantContents(t, b, "l", tc.remains...)
				if takes := countOps(s, storage.OpTake); takes != tc.removed {
					t.Fatalf("store holds %d takes, want %d", takes, tc.removed)
				}
			})
		}
	}
}

func countOps(s *listStore, op storage.Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.records {
		if r.Op == op {
			n++
		}
	}
	return n
}

func TestListDeleteRecordsEachTake(t *testing.T) {
	s := newListStore()
	b := newListBroker(t, Config{Store: s})
	pushAll(t, b, "l", Back, "a", "b", "c")

	n, err := b.Delete(context.Background(), "l")
	if err != nil || n != 3 {
		t.Fatalf("delete = %d, %v; want 3", n, err)
	}
	if ok, _ := b.Exists("l"); ok {
		t.Fatalf("queue exists after delete")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.records[3:] {
		if r.Op != storage.OpTake || r.Ref != s.locs[i] || r.ID != s.records[i].ID {
			t.Fatalf("record %d = %+v, want the take of put %+v at %v",
				i+3, r, s.records[i], s.locs[i])
		}
	}
}

func TestListExists(t *testing.T) {
	b := newListBroker(t, Config{})
	if ok, err := b.Exists("l"); ok || err != nil {
		t.Fatalf("exists on missing = %v, %v", ok, err)
	}
	pushAll(t, b, "l", Back, "a")
	if ok, err := b.Exists("l"); !ok || err != nil {
		t.Fatalf("exists = %v, %v; want true", ok, err)
	}
	if _, err := b.Exists(""); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("exists on empty key = %v, want ErrInvalidKey", err)
	}
}

func TestListMoveBetweenQueues(t *testing.T) {
	b, s := cachedOut(t)
	ctx := context.Background()
	pushAll(t, b, "src", Back, "a", "b", "c")
	pushAll(t, b, "dst", Back, "x")

	m, err := b.Move(ctx, "src", "dst", Back, Front)
	if err != nil || string(m.Payload) != "c" || m.Queue != "dst" {
		t.Fatalf("move = %+v, %v; want c in dst", m, err)
	}
	wantContents(t, b, "src", "a", "b")
	wantContents(t, b, "dst", "c", "x")

	s.mu.Lock()
	put, take := s.records[len(s.records)-2], s.records[len(s.records)-1]
	srcPut := s.locs[2]
	s.mu.Unlock()
	if put.Op != storage.OpPutFront || put.Queue != "dst" || string(put.Payload) != "c" {
		t.Fatalf("move recorded put %+v, want put-front of c on dst", put)
	}
	if take.Op != storage.OpTake || take.Queue != "src" || take.Ref != srcPut {
		t.Fatalf("move recorded take %+v, want the take of c from src at %v", take, srcPut)
	}

	if _, err := b.Move(ctx, "empty", "dst", Front, Front); !errors.Is(err, ErrEmpty) {
		t.Fatalf("move from empty = %v, want ErrEmpty", err)
	}
}

func TestListMoveSameQueueRotatesC12(t *testing.T) {
	b, _ := cachedOut(t)
	ctx := context.Background()
	pushAll(t, b, "L", Back, "a", "b", "c")

	for i, want := range [][]string{{"c", "a", "b"}, {"b", "c", "a"}, {"a", "b", "c"}} {
		m, err := b.Move(ctx, "L", "L", Back, Front)
		if err != nil || string(m.Payload) != want[0] {
			t.Fatalf("rpoplpush %d = %q, %v; want %q", i, m.Payload, err, want[0])
		}
		wantContents(t, b, "L", want...)
	}

	for _, tc := range []struct {
		from, to End
		reply    string
		want     []string
	}{
		{Front, Back, "a", []string{"b", "c", "a"}},
		{Back, Front, "a", []string{"a", "b", "c"}},
		{Front, Front, "a", []string{"a", "b", "c"}},
		{Back, Back, "c", []string{"a", "b", "c"}},
	} {
		m, err := b.Move(ctx, "L", "L", tc.from, tc.to)
		if err != nil || string(m.Payload) != tc.reply {
			t.Fatalf("lmove L L %v %v = %q, %v; want %q", tc.from, tc.to, m.Payload, err,
				tc.reply)
		}
		wantContents(t, b, "L", tc.want...)
	}

	pushAll(t, b, "one", Back, "x")
	if m, err := b.Move(ctx, "one", "one", Back, Front); err != nil || string(m.Payload) != "x" {
		t.Fatalf("rotate of one = %q, %v", m.Payload, err)
	}
	wantContents(t, b, "one", "x")
}

// TestListMoveRotatesAFullQueue: a rotation leaves a queue as long as it was, so a
// queue at its limits neither refuses it nor drops a message for it. Dropping the
// oldest for it dropped the very message being moved, and the move then took the
// next one off the queue as well, without a record: lost until a restart.
func TestListMoveRotatesAFullQueue(t *testing.T) {
	for _, tc := range []struct {
		name     string
		settings QueueSettings
	}{
		{"max length, refuse", QueueSettings{MaxLength: 3}},
		{"max length, drop oldest", QueueSettings{MaxLength: 3, Overflow: OverflowDropOldest}},
		{"max bytes, drop oldest", QueueSettings{MaxBytes: 3, Overflow: OverflowDropOldest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newListStore()
			b := newListBroker(t, Config{Store: s})
			ctx := context.Background()
			if err := b.SetQueue(ctx, "L", tc.settings); err != nil {
				t.Fatal(err)
			}
			pushAll(t, b, "L", Back, "a", "b", "c")

			for _, step := range []struct {
				from, to End
				want     []string
			}{
				{Front, Back, []string{"b", "c", "a"}},
				{Back, Front, []string{"a", "b", "c"}},
			} {
				m, err := b.Move(ctx, "L", "L", step.from, step.to)
				if err != nil {
					t.Fatalf("lmove L L %v %v: %v", step.from, step.to, err)
				}
				m.Release()
				wantContents(t, b, "L", step.want...)
			}
			if st, _ := b.QueueStats("L"); st.Dropped != 0 {
				t.Fatalf("%d messages dropped by rotations", st.Dropped)
			}
			b.Close()
			wantContents(t, newListBroker(t, Config{Store: s}), "L", "a", "b", "c")
		})
	}
}

func TestListMoveSurvivesRestart(t *testing.T) {
	s := newListStore()
	b := newListBroker(t, Config{Store: s})
	ctx := context.Background()
	pushAll(t, b, "L", Back, "a", "b", "c")
	pushAll(t, b, "D", Back, "x")
	for range 2 {
		if _, err := b.Move(ctx, "L", "L", Back, Front); err != nil {
			t.Fatalf("rotate: %v", err)
		}
	}
	if _, err := b.Move(ctx, "L", "D", Front, Back); err != nil {
		t.Fatalf("move: %v", err)
	}
	wantContents(t, b, "L", "c", "a")
	b.Close()

	again := newListBroker(t, Config{Store: s})
	wantContents(t, again, "L", "c", "a")
	wantContents(t, again, "D", "x", "b")
}

func TestListMoveHandsToWaiterOnDestination(t *testing.T) {
	b := newListBroker(t, Config{})
	pushAll(t, b, "src", Back, "a")

	got := make(chan string, 1)
	go func() {
		m, err := b.Get(context.Background(), "dst", 5*time.Second)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(m.Payload)
	}()
	waitWaiting(t, b, 1)

	if _, err := b.Move(context.Background(), "src", "dst", Front, Back); err != nil {
		t.Fatalf("move: %v", err)
	}
	if g := <-got; g != "a" {
		t.Fatalf("waiter on dst got %q, want a", g)
	}
	wantContents(t, b, "src")
	wantContents(t, b, "dst")
}

func TestListMoveOppositeDirectionsDoNotDeadlock(t *testing.T) {
	b := newListBroker(t, Config{})
	pushAll(t, b, "p", Back, "1", "2", "3")
	pushAll(t, b, "q", Back, "4", "5", "6")

	var wg sync.WaitGroup
	for _, pair := range [][2]string{{"p", "q"}, {"q", "p"}} {
		wg.Go(func() {
			for range 2000 {
				_, err := b.Move(context.Background(), pair[0], pair[1], Front, Back)
				if err != nil && !errors.Is(err, ErrEmpty) {
					t.Errorf("move %s to %s: %v", pair[0], pair[1], err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := len(contents(t, b, "p")) + len(contents(t, b, "q")); n != 6 {
		t.Fatalf("queues hold %d messages after moves, want 6", n)
	}
}

func TestListBlockingMoveWaitsForSource(t *testing.T) {
	b, _ := cachedOut(t)
	done := make(chan Message, 1)
	go func() {
		m, err := b.BlockingMove(context.Background(), "src", "dst", Back, Front, Forever)
		if err != nil {
			t.Errorf("blocking move: %v", err)
		}
		done <- m
	}()
	waitWaiting(t, b, 1)

	pushAll(t, b, "src", Back, "a")
	if m := <-done; string(m.Payload) != "a" || m.Queue != "dst" {
		t.Fatalf("blocking move = %+v, want a in dst", m)
	}
	wantContents(t, b, "src")
	wantContents(t, b, "dst", "a")
	waitWaiting(t, b, 0)
}

func TestListBlockingMoveOnEmptySameQueueTimesOutC12(t *testing.T) {
	b := newListBroker(t, Config{})
	start := time.Now()
	_, err := b.BlockingMove(context.Background(), "L", "L", Back, Front, 20*time.Millisecond)
	if !errors.Is(err, ErrEmpty) {
		t.Fatalf("blocking move = %v, want ErrEmpty", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatalf("returned after %v, before its wait", time.Since(start))
	}
	waitWaiting(t, b, 0)
}

func TestListBlockingMoveDestinationRefusesC11(t *testing.T) {
	s := newListStore()
	b := newListBroker(t, Config{Store: s})
	s.setFailPutOn("target")

	errc := make(chan error, 1)
	go func() {
		_, err := b.BlockingMove(context.Background(), "blist", "target", Front, Back, Forever)
		errc <- err
	}()
	waitWaiting(t, b, 1)
	pushAll(t, b, "blist", Back, "foo")

	if err := <-errc; !errors.Is(err, errRefused) {
		t.Fatalf("blocking move = %v, want the store's refusal", err)
	}
	wantContents(t, b, "blist", "foo")
	wantContents(t, b, "target")
	waitWaiting(t, b, 0)
	if st := b.Stats(0); st.Waiting != 0 || waitersOn(b, "blist") != 0 {
		t.Fatalf("waiters left after the refusal: %+v", st)
	}

	// The waiter is gone for good: the next blocking move blocks and works.
	if _, err := b.Delete(context.Background(), "blist"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	s.setFailPutOn("")
	done := make(chan Message, 1)
	go func() {
		m, _ := b.BlockingMove(context.Background(), "blist", "target", Front, Back, Forever)
		done <- m
	}()
	waitWaiting(t, b, 1)
	pushAll(t, b, "blist", Back, "bar")
	if m := <-done; string(m.Payload) != "bar" {
		t.Fatalf("second blocking move = %q, want bar", m.Payload)
	}
	wantContents(t, b, "target", "bar")
}

func waitersOn(b *Broker, queue string) int {
	q := b.lookup(queue, false)
	if q == nil {
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiters.len()
}

func TestListBlockingMoveCancelledLeavesSourceC01(t *testing.T) {
	b := newListBroker(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.BlockingMove(ctx, "S", "D", Back, Front, Forever)
		errc <- err
	}()
	waitWaiting(t, b, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocking move = %v, want context.Canceled", err)
	}
	waitWaiting(t, b, 0)

	pushAll(t, b, "S", Back, "V")
	wantContents(t, b, "S", "V")
	wantContents(t, b, "D")
}

func TestListBlockingMoveClaimedAsCancelledGoesBack(t *testing.T) {
	// A put that claims the waiter as its context ends: the message must end in S, at
	// the end it was taken from, or in D; never nowhere.
	for i := range 200 {
		b := newListBroker(t, Config{})
		pushAll(t, b, "S", Back, "first")
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := b.PopN(context.Background(), "S", 1, Front); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := b.BlockingMove(ctx, "S", "D", Back, Front, Forever)
			errc <- err
		}()
		waitWaiting(t, b, 1)
		go cancel()
		pushAll(t, b, "S", Back, "V")
		<-errc

		s, d := contents(t, b, "S"), contents(t, b, "D")
		if len(s)+len(d) != 1 {
			t.Fatalf("round %d: S = %q, D = %q; want V in exactly one", i, s, d)
		}
		b.Close()
	}
}

func TestListFruitlessCallsLeaveNoQueue(t *testing.T) {
	s := newListStore()
	s.setFailPutOn("refusing")
	b := newListBroker(t, Config{Store: s})
	ctx := context.Background()

	b.Move(ctx, "src", "dst", Front, Back)
	b.Move(ctx, "self", "self", Back, Front)
	b.BlockingMove(ctx, "bsrc", "bdst", Front, Back, time.Millisecond)
	b.Push(ctx, "x", [][]byte{[]byte("v")}, Back, true)
	pushAll(t, b, "from", Back, "v")
	if _, err := b.Move(ctx, "from", "refusing", Front, Back); !errors.Is(err, errRefused) {
		t.Fatalf("move into a refusing queue = %v", err)
	}
	b.PopN(ctx, "from", 1, Front)

	b.sweep()
	b.sweep()
	if names := b.QueueNames(); len(names) != 0 {
		t.Fatalf("queues left after fruitless calls and two sweeps: %q", names)
	}
}

func TestListPopAndMoveSkipExpiredMessages(t *testing.T) {
	b := newListBroker(t, Config{})
	ctx := context.Background()
	for _, q := range []string{"pop", "move"} {
		_, err := b.PutWith(ctx, q, []byte("old"), PutOptions{TTL: time.Millisecond})
		if err != nil {
			t.Fatalf("put with ttl: %v", err)
		}
		pushAll(t, b, q, Back, "fresh")
	}
	time.Sleep(2 * time.Millisecond) // the TTL runs on the wall clock

	msgs, err := b.PopN(ctx, "pop", 2, Front)
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "fresh" {
		t.Fatalf("pop = %v, %v; want only the fresh message", msgs, err)
	}
	m, err := b.Move(ctx, "move", "dst", Front, Back)
	if err != nil || string(m.Payload) != "fresh" {
		t.Fatalf("move = %q, %v; want the fresh message", m.Payload, err)
	}
}

// TestListPushServesWaitersAfterAllValues: as in Redis, a push of several values
// serves waiters once all are in, each from its own end: LPUSH k a b c d leaves
// d c b a, so three BLPOP waiters get d, c and b, in the order they began to wait.
func TestListPushServesWaitersAfterAllValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   End
		back bool
		want []string // what the three waiters get, then what stays
	}{
		{"lpush-blpop", Front, false, []string{"d", "c", "b", "a"}},
		{"rpush-brpop", Back, true, []string{"d", "c", "b", "a"}},
		{"rpush-blpop", Back, false, []string{"a", "b", "c", "d"}},
		{"lpush-brpop", Front, true, []string{"a", "b", "c", "d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newListBroker(t, Config{})
			var ws []<-chan result
			for range 3 {
				ws = append(ws, startPop(t, b, []string{"k"}, tc.back))
			}
			pushAll(t, b, "k", tc.at, "a", "b", "c", "d")
			for i, w := range ws {
				wantResult(t, w, "k", tc.want[i])
			}
			wantContents(t, b, "k", tc.want[3])
		})
	}
}

// TestListPopAnyNTakesItsCountBeforeNextWaiter: a push of several values gives a
// waiting PopAnyN its whole count before a later waiter is served, as Redis serves
// BLMPOP COUNT 2 and then BLPOP after RPUSH k a b c.
func TestListPopAnyNTakesItsCountBeforeNextWaiter(t *testing.T) {
	for _, from := range []End{Front, Back} {
		b := newListBroker(t, Config{})
		type popped struct {
			msgs []Message
			err  error
		}
		first := make(chan popped, 1)
		go func() {
			_, msgs, err := b.PopAnyN(context.Background(), []string{"k"}, 2, from,
				10*time.Second)
			first <- popped{msgs, err}
		}()
		waitWaiting(t, b, 1)
		second := startPop(t, b, []string{"k"}, from == Back)

		pushAll(t, b, "k", Back, "a", "b", "c")
		want, rest := []string{"a", "b"}, "c"
		if from == Back {
			want, rest = []string{"c", "b"}, "a"
		}
		p := <-first
		var got []string
		for _, m := range p.msgs {
			got = append(got, string(m.Payload))
		}
		if p.err != nil || !slices.Equal(got, want) {
			t.Fatalf("from %v: first waiter got %q, %v; want %q", from, got, p.err, want)
		}
		for i, m := range p.msgs { // each owns its buffer, so Release recycles it
			if m.holder == nil {
				t.Fatalf("from %v: message %d of the waiter owns no buffer", from, i)
			}
		}
		wantResult(t, second, "k", rest)
	}
}

// TestListRequeuePutsSeveralBackInOrder: the messages of a waiter that took several
// and then left go back to their end in their order.
func TestListRequeuePutsSeveralBackInOrder(t *testing.T) {
	for _, back := range []bool{false, true} {
		b := newListBroker(t, Config{})
		pushAll(t, b, "k", Back, "a", "b", "c", "d")
		q := b.lookup("k", false)
		w := newWaiter([]string{"k"}, back, nil)
		w.count = 3
		q.mu.Lock()
		b.handLocked(q, w)
		q.mu.Unlock()
		d := <-w.ch
		if d.err != nil || len(d.more) != 2 {
			t.Fatalf("back=%v: hand = %d more, %v; want 2", back, len(d.more), d.err)
		}
		b.requeue(d)
		wantContents(t, b, "k", "a", "b", "c", "d")
	}
}
