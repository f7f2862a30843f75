package resp

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"

	"github.com/keyq/keyq/internal/broker"
)

// The failure cases of shared/cases, through RESP. Each test names its case.

// sendRaw opens a plain connection and sends one command, for tests that must close
// the socket while the command blocks.
func sendRaw(t *testing.T, addr string, args ...string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	buf := redcon.AppendArray(nil, len(args))
	for _, a := range args {
		buf = redcon.AppendBulkString(buf, a)
	}
	if _, err := nc.Write(buf); err != nil {
		t.Fatalf("write: %v", err)
	}
	return nc
}

func TestRESPBlockedPopCancelledOnDisconnectC01(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	a := sendRaw(t, ts.addr, "BLPOP", "K", "0")
	ts.waitBlocked(t, 1)
	a.Close()
	ts.waitBlocked(t, 0)

	rc.RPush(ctx, "K", "V")
	if n, _ := rc.LLen(ctx, "K").Result(); n != 1 {
		t.Fatalf("llen K = %d, want 1: the push went to a gone client", n)
	}
	if v, _ := rc.LPop(ctx, "K").Result(); v != "V" {
		t.Fatalf("lpop K = %q, want V", v)
	}
}

func TestRESPBlockedMoveCancelledOnDisconnectC01(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	a := sendRaw(t, ts.addr, "BLMOVE", "S", "D", "LEFT", "RIGHT", "0")
	ts.waitBlocked(t, 1)
	a.Close()
	ts.waitBlocked(t, 0)

	rc.RPush(ctx, "S", "V")
	wantList(t, rc, "S", "V")
	wantList(t, rc, "D")
}

func TestRESPWaitersServedInOrderC02(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	waiters := make([]*redis.Client, 3)
	for i := range waiters {
		waiters[i] = ts.client(t, 3)
	}
	block := func() []chan string {
		chans := make([]chan string, len(waiters))
		for i, w := range waiters {
			chans[i] = make(chan string, 1)
			go func() {
				v, err := w.BLPop(ctx, 0, "K").Result()
				if err != nil {
					chans[i] <- "error: " + err.Error()
					return
				}
				chans[i] <- v[1]
			}()
			ts.waitBlocked(t, int64(i+1)) // W1, W2, W3 block in that order
		}
		return chans
	}

	// (a) one push at a time: the oldest waiter is served first.
	chans := block()
	for _, v := range []string{"a", "b", "c"} {
		rc.RPush(ctx, "K", v)
	}
	for i, want := range []string{"a", "b", "c"} {
		if got := <-chans[i]; got != want {
			t.Fatalf("W%d got %q, want %q", i+1, got, want)
		}
	}

	// (b) one push of three values serves all three waiters, each once.
	chans = block()
	if n, _ := rc.RPush(ctx, "K", "a", "b", "c").Result(); n != 3 {
		t.Fatalf("rpush = %d, want 3", n)
	}
	for i, want := range []string{"a", "b", "c"} {
		if got := <-chans[i]; got != want {
			t.Fatalf("W%d got %q, want %q", i+1, got, want)
		}
	}
	if n, _ := rc.LLen(ctx, "K").Result(); n != 0 {
		t.Fatalf("llen = %d after every value was delivered", n)
	}
}

func TestRESPPushRacesBlockingPopC04(t *testing.T) {
	ts := startServer(t, broker.Config{})
	ctx := context.Background()
	popper, pusher := ts.client(t, 3), ts.client(t, 3)

	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		want := fmt.Sprint(i)
		got := make(chan []string, 1)
		go func() {
			v, _ := popper.BLPop(ctx, 5*time.Second, "K").Result()
			got <- v
		}()
		if err := pusher.RPush(ctx, "K", want).Err(); err != nil {
			t.Fatalf("rpush: %v", err)
		}
		if v := <-got; len(v) != 2 || v[1] != want {
			n, _ := pusher.LLen(ctx, "K").Result()
			t.Fatalf("round %d: blpop = %q with %d left in K, want [K %s]", i, v, n, want)
		}
	}
}

func TestRESPTinyTimeoutsC05(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	for _, timeout := range []string{"0.002", "0.001", "0.0001", "1e-9"} {
		start := time.Now()
		err := rc.Do(ctx, "BLMOVE", "k1", "k2", "LEFT", "RIGHT", timeout).Err()
		if err != redis.Nil {
			t.Fatalf("blmove with timeout %s = %v, want nil", timeout, err)
		}
		// A timeout rounded to 0 would block forever; the bound is loose for slow CI.
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("timeout %s took %v", timeout, took)
		}
	}

	for _, tc := range []struct{ timeout, err string }{
		{"-1", "ERR timeout is negative"},
		{"-0.001", "ERR timeout is negative"},
		{"nan", "ERR timeout is not a float or out of range"},
		{"abc", "ERR timeout is not a float or out of range"},
		{"", "ERR timeout is not a float or out of range"},
	} {
		wantErr(t, rc.Do(ctx, "BLPOP", "K", tc.timeout).Err(), tc.err)
		wantErr(t, rc.Do(ctx, "BLMOVE", "k1", "k2", "LEFT", "RIGHT", tc.timeout).Err(), tc.err)
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatalf("ping after timeout %q: %v", tc.timeout, err)
		}
	}

	// 0 blocks until data arrives.
	got := make(chan []string, 1)
	other := ts.client(t, 3)
	go func() {
		v, _ := other.Do(ctx, "BLPOP", "K", "0").StringSlice()
		got <- v
	}()
	ts.waitBlocked(t, 1)
	rc.RPush(ctx, "K", "v")
	if v := <-got; !slices.Equal(v, []string{"K", "v"}) {
		t.Fatalf("blpop K 0 = %q", v)
	}
}

func TestRESPHugeTimeoutsNeverReturnEarlyC06(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	// Timeouts whose deadline overflows are refused; the others block.
	refused := []string{"1e18", "9.2e18", "1e400", "inf"}
	for _, timeout := range refused {
		wantErr(t, rc.Do(ctx, "BLPOP", "K", timeout).Err(), "ERR timeout is out of range")
	}

	blocking := []string{"2148", "4294967296", "9007199254740992", "1e12"}
	type result struct {
		timeout string
		err     error
	}
	got := make(chan result, len(blocking))
	for i, timeout := range blocking {
		key := fmt.Sprintf("K%d", i)
		c := ts.client(t, 3)
		go func() {
			v, err := c.Do(ctx, "BLPOP", key, timeout).StringSlice()
			if err == nil && (len(v) != 2 || v[1] != "v") {
				err = fmt.Errorf("blpop = %q", v)
			}
			got <- result{timeout, err}
		}()
	}
	ts.waitBlocked(t, int64(len(blocking)))

	// None may come back, timed out or not, before it is given a value.
	select {
	case r := <-got:
		t.Fatalf("blpop with timeout %s returned early: %v", r.timeout, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	for i := range blocking {
		rc.RPush(ctx, fmt.Sprintf("K%d", i), "v")
	}
	for range blocking {
		if r := <-got; r.err != nil {
			t.Fatalf("blpop with timeout %s: %v", r.timeout, r.err)
		}
	}
}

func TestRESPEachWaiterKeepsItsTimeoutC07(t *testing.T) {
	ts := startServer(t, broker.Config{})
	ctx := context.Background()

	timeouts := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond,
		300 * time.Millisecond, 400 * time.Millisecond}
	type result struct {
		err  error
		took time.Duration
	}
	results := make([]chan result, len(timeouts))
	for i, d := range timeouts {
		results[i] = make(chan result, 1)
		c := ts.client(t, 3)
		go func() {
			start := time.Now()
			err := c.Do(ctx, "BLPOP", "foo", fmt.Sprint(d.Seconds())).Err()
			results[i] <- result{err, time.Since(start)}
		}()
		// A later arrival, which leaves again at once, must not disturb the others.
		drop := sendRaw(t, ts.addr, "BLPOP", "foo", "5")
		ts.waitBlocked(t, int64(i+2))
		drop.Close()
		ts.waitBlocked(t, int64(i+1))
	}

	for i, d := range timeouts {
		r := <-results[i]
		if r.err != redis.Nil {
			t.Fatalf("waiter %d = %v, want nil", i, r.err)
		}
		if r.took < d || r.took > d+5*time.Second {
			t.Fatalf("waiter %d with timeout %v returned after %v", i, d, r.took)
		}
	}
	ts.waitBlocked(t, 0)
}

func TestRESPTimeoutUnderConnectionChurnC08(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Churn: short-lived connections, each sending PING, until the pop returns,
	// bounded in count.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i := 0; i < 500 && ctx.Err() == nil; i++ {
				nc, err := net.Dial("tcp", ts.addr)
				if err != nil {
					continue
				}
				nc.Write([]byte("*1\r\n$4\r\nPING\r\n"))
				buf := make([]byte, 16)
				nc.Read(buf)
				nc.Close()
			}
		})
	}

	start := time.Now()
	err := rc.Do(context.Background(), "BLPOP", "Q", "0.5").Err()
	took := time.Since(start)
	cancel()
	wg.Wait()

	if err != redis.Nil {
		t.Fatalf("blpop = %v, want nil", err)
	}
	if took < 500*time.Millisecond || took > 3*time.Second {
		t.Fatalf("blpop with timeout 0.5s under churn took %v", took)
	}
}

func TestRESPBlockingPopKeyOrderC09(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	// Both keys hold data: the first key in argument order is served.
	rc.RPush(ctx, "key2", "1", "2", "3", "4")
	rc.RPush(ctx, "key1", "5", "6", "7")
	v, err := rc.BLPop(ctx, time.Second, "key1", "key2").Result()
	if err != nil || !slices.Equal(v, []string{"key1", "5"}) {
		t.Fatalf("blpop key1 key2 = %q, %v; want [key1 5]", v, err)
	}
	wantList(t, rc, "key1", "6", "7")
	wantList(t, rc, "key2", "1", "2", "3", "4")
	rc.Del(ctx, "key1", "key2")

	// A single-key push wakes the waiter on whichever key it hit.
	for _, key := range []string{"key2", "key1"} {
		a := ts.client(t, 3)
		got := make(chan []string, 1)
		go func() {
			v, _ := a.BLPop(ctx, 0, "key1", "key2").Result()
			got <- v
		}()
		ts.waitBlocked(t, 1)
		rc.RPush(ctx, key, "x")
		if v := <-got; !slices.Equal(v, []string{key, "x"}) {
			t.Fatalf("push on %s woke the waiter with %q", key, v)
		}
		ts.waitBlocked(t, 0)
	}
}

func TestRESPBlockedMoveErrorLeavesSourceC11(t *testing.T) {
	ts := startServer(t, broker.Config{Store: failingStore{queue: "target"}})
	rc := ts.client(t, 3)
	a := ts.client(t, 3)
	ctx := context.Background()

	errc := make(chan error, 1)
	go func() { errc <- a.Do(ctx, "BLMOVE", "blist", "target", "LEFT", "RIGHT", "0").Err() }()
	ts.waitBlocked(t, 1)
	rc.RPush(ctx, "blist", "foo")

	wantErr(t, <-errc, "ERR")
	wantList(t, rc, "blist", "foo")
	wantList(t, rc, "target")
	ts.waitBlocked(t, 0)

	// The waiter is fully gone: the next blocking move blocks normally.
	rc.Del(ctx, "blist")
	go func() { errc <- a.Do(ctx, "BLMOVE", "blist", "target", "LEFT", "RIGHT", "0").Err() }()
	ts.waitBlocked(t, 1)
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping: %v", err)
	}
	a.Close()
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatalf("blocked move did not end when its client closed")
	}
	ts.waitBlocked(t, 0)
}

func TestRESPMoveOntoItselfRotatesC12(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()

	rc.RPush(ctx, "L", "a", "b", "c")
	for _, want := range [][]string{{"c", "a", "b"}, {"b", "c", "a"}, {"a", "b", "c"}} {
		if v, _ := rc.RPopLPush(ctx, "L", "L").Result(); v != want[0] {
			t.Fatalf("rpoplpush L L = %q, want %q", v, want[0])
		}
		wantList(t, rc, "L", want...)
	}
	for _, tc := range []struct {
		from, to, reply string
		want            []string
	}{
		{"LEFT", "RIGHT", "a", []string{"b", "c", "a"}},
		{"RIGHT", "LEFT", "a", []string{"a", "b", "c"}},
		{"LEFT", "LEFT", "a", []string{"a", "b", "c"}},
		{"RIGHT", "RIGHT", "c", []string{"a", "b", "c"}},
	} {
		if v, _ := rc.LMove(ctx, "L", "L", tc.from, tc.to).Result(); v != tc.reply {
			t.Fatalf("lmove L L %s %s = %q, want %q", tc.from, tc.to, v, tc.reply)
		}
		wantList(t, rc, "L", tc.want...)
	}

	rc.RPush(ctx, "one", "x")
	if v, _ := rc.RPopLPush(ctx, "one", "one").Result(); v != "x" {
		t.Fatalf("rpoplpush of one element = %q", v)
	}
	wantList(t, rc, "one", "x")

	err := rc.Do(ctx, "BLMOVE", "E", "E", "RIGHT", "LEFT", "0.05").Err()
	if err != redis.Nil {
		t.Fatalf("blmove on empty E E = %v, want nil after the timeout", err)
	}
}

func TestRESPBadKeysRefusedEverywhereC25(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()
	rc.RPush(ctx, "good", "v")

	bad := []string{"", "\x00", "a\x00b", "\xff\xfe", "line\n", strings.Repeat("k", 64<<10)}
	for _, key := range bad {
		name := fmt.Sprintf("%q", clip(key, 8))
		for _, args := range [][]any{
			{"RPUSH", key, "v"}, {"LPUSH", key, "v"}, {"LPOP", key}, {"LLEN", key},
			{"DEL", key}, {"EXISTS", key}, {"BLPOP", key, "0.01"}, {"LRANGE", key, 0, -1},
			{"LMOVE", "good", key, "LEFT", "LEFT"}, {"BLMOVE", key, "good", "LEFT", "LEFT", "0"},
		} {
			wantErrKey(t, name, args, rc.Do(ctx, args...).Err())
		}
	}
	wantList(t, rc, "good", "v")
	if keys, err := rc.Keys(ctx, "*").Result(); err != nil || !slices.Equal(keys, []string{"good"}) {
		t.Fatalf("keys * = %q, %v", keys, err)
	}
}

func wantErrKey(t *testing.T, name string, args []any, err error) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), "ERR invalid key") {
		t.Fatalf("%v on key %s = %v, want ERR invalid key", args[0], name, err)
	}
}

// TestRESPBlockingPopAfterTransactionC09 is case C09 with MULTI/EXEC: the waiter is
// served once the whole transaction has run, from the first of its keys with data.
func TestRESPBlockingPopAfterTransactionC09(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		a := ts.client(t, 3)
		got := make(chan []string, 1)
		go func() {
			v, err := a.BLPop(ctx, 0, "key1", "key2").Result()
			if err != nil {
				v = []string{"error", err.Error()}
			}
			got <- v
		}()
		ts.waitBlocked(t, 1)

		_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.RPush(ctx, "key2", "1", "2", "3", "4")
			p.RPush(ctx, "key1", "5", "6", "7")
			return nil
		})
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		if v := <-got; !slices.Equal(v, []string{"key1", "5"}) {
			t.Fatalf("blpop key1 key2 = %q, want [key1 5]", v)
		}
		wantList(t, rc, "key2", "1", "2", "3", "4")
		wantList(t, rc, "key1", "6", "7")
		ts.waitBlocked(t, 0)
	})
}

// TestRESPPushOfSeveralServesWaitersAfterAll: LPUSH k a b c serves three BLPOP
// waiters with c, b and a, the head after all three pushes, as Redis does; a
// transaction's LMOVE onto a waiter's key is held the same way.
func TestRESPPushOfSeveralServesWaitersAfterAll(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		block := func(n int, pop func(*redis.Client) ([]string, error)) []chan string {
			chans := make([]chan string, n)
			for i := range chans {
				w := ts.client(t, 3)
				chans[i] = make(chan string, 1)
				go func() {
					v, err := pop(w)
					if err != nil {
						chans[i] <- "error: " + err.Error()
						return
					}
					chans[i] <- v[1]
				}()
				ts.waitBlocked(t, int64(i+1))
			}
			return chans
		}
		want := func(chans []chan string, values ...string) {
			t.Helper()
			for i, v := range values {
				if got := <-chans[i]; got != v {
					t.Fatalf("W%d got %q, want %q", i+1, got, v)
				}
			}
			ts.waitBlocked(t, 0)
		}

		blpop := func(w *redis.Client) ([]string, error) { return w.BLPop(ctx, 0, "k").Result() }
		chans := block(3, blpop)
		rc.LPush(ctx, "k", "a", "b", "c")
		want(chans, "c", "b", "a")

		brpop := func(w *redis.Client) ([]string, error) { return w.BRPop(ctx, 0, "k").Result() }
		chans = block(2, brpop)
		rc.RPush(ctx, "k", "a", "b", "c")
		want(chans, "c", "b")
		wantList(t, rc, "k", "a")

		rc.RPush(ctx, "src", "x", "y")
		chans = block(1, func(w *redis.Client) ([]string, error) {
			return w.BLPop(ctx, 0, "d").Result()
		})
		_, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.LMove(ctx, "src", "d", "LEFT", "LEFT")
			p.LPush(ctx, "d", "w")
			return nil
		})
		if err != nil {
			t.Fatalf("exec: %v", err)
		}
		want(chans, "w")
		wantList(t, rc, "d", "x")
		wantList(t, rc, "src", "y")
	})
}
