package resp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/broker"
)

// forEachProto runs fn against a fresh server once with RESP2 and once with RESP3.
func forEachProto(t *testing.T, fn func(t *testing.T, ts *testServer, rc *redis.Client)) {
	for _, proto := range []int{2, 3} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			ts := startServer(t, broker.Config{})
			fn(t, ts, ts.client(t, proto))
		})
	}
}

func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Fatalf("err = %v, want one starting %q", err, prefix)
	}
}

func wantList(t *testing.T, rc *redis.Client, key string, want ...string) {
	t.Helper()
	got, err := rc.LRange(context.Background(), key, 0, -1).Result()
	if err != nil {
		t.Fatalf("lrange %s: %v", key, err)
	}
	if want == nil {
		want = []string{}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %q, want %q", key, got, want)
	}
}

func TestRESPConnectionCommands(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		if got, err := rc.Ping(ctx).Result(); err != nil || got != "PONG" {
			t.Fatalf("ping = %q, %v", got, err)
		}
		if got, err := rc.Do(ctx, "PING", "hi").Text(); err != nil || got != "hi" {
			t.Fatalf("ping hi = %q, %v", got, err)
		}
		if got, err := rc.Echo(ctx, "a b").Result(); err != nil || got != "a b" {
			t.Fatalf("echo = %q, %v", got, err)
		}
		if err := rc.Do(ctx, "SELECT", "0").Err(); err != nil {
			t.Fatalf("select 0: %v", err)
		}
		wantErr(t, rc.Do(ctx, "SELECT", "1").Err(), "ERR DB index is out of range")
		wantErr(t, rc.Do(ctx, "SELECT", "x").Err(), "ERR value is not an integer")

		if got, err := rc.ClientGetName(ctx).Result(); err != redis.Nil {
			t.Fatalf("client getname before setname = %q, %v; want nil", got, err)
		}
		if err := rc.Do(ctx, "CLIENT", "SETNAME", "worker-1").Err(); err != nil {
			t.Fatalf("client setname: %v", err)
		}
		if got, _ := rc.ClientGetName(ctx).Result(); got != "worker-1" {
			t.Fatalf("client getname = %q, want worker-1", got)
		}
		wantErr(t, rc.Do(ctx, "CLIENT", "SETNAME", "a b").Err(), "ERR Client names cannot")
		if id, err := rc.ClientID(ctx).Result(); err != nil || id <= 0 {
			t.Fatalf("client id = %d, %v", id, err)
		}
		wantErr(t, rc.Do(ctx, "CLIENT", "NOPE").Err(), "ERR unknown subcommand 'nope'")
		wantErr(t, rc.Do(ctx, "AUTH", "pw").Err(), "ERR AUTH <password> called without")
	})
}

func TestRESPHelloSwitchesProtocol(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 2)
	ctx := context.Background()

	reply, err := rc.Do(ctx, "HELLO", "3").Result()
	if err != nil {
		t.Fatalf("hello 3: %v", err)
	}
	m, ok := reply.(map[any]any)
	if !ok || m["proto"] != int64(3) || m["server"] != "keyq" || m["mode"] != "standalone" {
		t.Fatalf("hello 3 = %#v, want a map with proto 3", reply)
	}
	// A RESP3 null now answers a pop on a missing key.
	if err := rc.Do(ctx, "LPOP", "missing").Err(); err != redis.Nil {
		t.Fatalf("lpop missing = %v, want nil", err)
	}
	wantErr(t, rc.Do(ctx, "HELLO", "4").Err(), "NOPROTO")
	wantErr(t, rc.Do(ctx, "HELLO", "x").Err(), "ERR Protocol version is not an integer")

	reply, err = rc.Do(ctx, "HELLO", "2", "SETNAME", "n1").Result()
	if err != nil {
		t.Fatalf("hello 2: %v", err)
	}
	if flat, ok := reply.([]any); !ok || len(flat) != 14 {
		t.Fatalf("hello 2 = %#v, want a flat array of 14", reply)
	}
	if got, _ := rc.ClientGetName(ctx).Result(); got != "n1" {
		t.Fatalf("name after hello setname = %q", got)
	}
}

func TestRESPQuitClosesConnection(t *testing.T) {
	ts := startServer(t, broker.Config{})
	rc := ts.client(t, 3)
	ctx := context.Background()
	if err := rc.Do(ctx, "QUIT").Err(); err != nil {
		t.Fatalf("quit: %v", err)
	}
	waitFor(t, 5*time.Second, "connection to close", func() bool { return ts.s.connCount() == 0 })
	// The pool dials again.
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("ping after quit: %v", err)
	}
}

func TestRESPUnknownCommandKeepsConnection(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		err := rc.Do(ctx, "SET", "k", "v").Err()
		wantErr(t, err, "ERR unknown command 'SET', with args beginning with: 'k' 'v' ")
		wantErr(t, rc.Do(ctx, "LPUSH", "k").Err(),
			"ERR wrong number of arguments for 'lpush' command")
		if err := rc.Ping(ctx).Err(); err != nil {
			t.Fatalf("ping after errors: %v", err)
		}
	})
}

func TestRESPCommandAndInfo(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		n, err := rc.Do(ctx, "COMMAND", "COUNT").Int64()
		if err != nil || n != int64(len(commands)) {
			t.Fatalf("command count = %d, %v; want %d", n, err, len(commands))
		}
		infos, err := rc.Command(ctx).Result()
		if err != nil {
			t.Fatalf("command: %v", err)
		}
		if lp := infos["lpush"]; lp == nil || lp.Arity != -3 || lp.FirstKeyPos != 1 {
			t.Fatalf("command info of lpush = %+v", lp)
		}
		docs, err := rc.Do(ctx, "COMMAND", "DOCS", "lpush").Result()
		if err != nil || !strings.Contains(fmt.Sprint(docs), "Prepends one or more") {
			t.Fatalf("command docs lpush = %v, %v", docs, err)
		}
		list, err := rc.Do(ctx, "COMMAND", "LIST").StringSlice()
		if err != nil || !slices.Contains(list, "blmove") {
			t.Fatalf("command list = %v, %v", list, err)
		}

		cfg, err := rc.ConfigGet(ctx, "save").Result()
		if err != nil || len(cfg) != 1 || cfg["save"] != "" {
			t.Fatalf("config get save = %v, %v", cfg, err)
		}
		if cfg, _ := rc.ConfigGet(ctx, "*").Result(); cfg["appendonly"] != "no" {
			t.Fatalf("config get * = %v", cfg)
		}
		wantErr(t, rc.ConfigSet(ctx, "save", "1 1").Err(), "ERR unknown subcommand 'set'")

		rc.RPush(ctx, "q1", "a", "b")
		info, err := rc.Info(ctx).Result()
		if err != nil {
			t.Fatalf("info: %v", err)
		}
		for _, want := range []string{"# Server\r\n", "redis_version:", "# Clients\r\n",
			"connected_clients:1\r\n", "blocked_clients:0\r\n", "# Keyspace\r\n",
			"db0:keys=1,expires=0,avg_ttl=0\r\n"} {
			if !strings.Contains(info, want) {
				t.Fatalf("info lacks %q:\n%s", want, info)
			}
		}
		ks, _ := rc.Info(ctx, "keyspace").Result()
		if ks != "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n" {
			t.Fatalf("info keyspace = %q", ks)
		}
	})
}

func TestRESPKeyCommands(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		for _, k := range []string{"jobs:1", "jobs:2", "mail", "jobs:10"} {
			rc.RPush(ctx, k, "x")
		}
		if n, _ := rc.DBSize(ctx).Result(); n != 4 {
			t.Fatalf("dbsize = %d, want 4", n)
		}
		if n, _ := rc.Exists(ctx, "jobs:1", "nope", "jobs:1").Result(); n != 2 {
			t.Fatalf("exists = %d, want 2", n)
		}
		if typ, _ := rc.Type(ctx, "mail").Result(); typ != "list" {
			t.Fatalf("type mail = %q", typ)
		}
		if typ, _ := rc.Type(ctx, "nope").Result(); typ != "none" {
			t.Fatalf("type nope = %q", typ)
		}
		keys, _ := rc.Keys(ctx, "jobs:?").Result()
		slices.Sort(keys)
		if !slices.Equal(keys, []string{"jobs:1", "jobs:2"}) {
			t.Fatalf("keys jobs:? = %q", keys)
		}

		var scanned []string
		var cursor uint64
		for i := 0; ; i++ {
			ks, next, err := rc.Scan(ctx, cursor, "jobs:*", 1).Result()
			if err != nil || i > 10 {
				t.Fatalf("scan: %v after %d calls", err, i)
			}
			scanned = append(scanned, ks...)
			if cursor = next; cursor == 0 {
				break
			}
		}
		slices.Sort(scanned)
		if !slices.Equal(scanned, []string{"jobs:1", "jobs:10", "jobs:2"}) {
			t.Fatalf("scan jobs:* = %q", scanned)
		}
		if ks, _, _ := rc.ScanType(ctx, 0, "*", 100, "string").Result(); len(ks) != 0 {
			t.Fatalf("scan type string = %q, want none", ks)
		}
		wantErr(t, rc.Do(ctx, "SCAN", "x").Err(), "ERR invalid cursor")

		if n, _ := rc.Del(ctx, "jobs:1", "nope", "mail").Result(); n != 2 {
			t.Fatalf("del = %d, want 2", n)
		}
		if n, _ := rc.Exists(ctx, "jobs:1", "mail").Result(); n != 0 {
			t.Fatalf("exists after del = %d", n)
		}
		if n, _ := rc.Unlink(ctx, "jobs:2").Result(); n != 1 {
			t.Fatalf("unlink = %d", n)
		}
	})
}

func TestRESPPushPopCommands(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		if n, _ := rc.RPush(ctx, "l", "a", "b", "c").Result(); n != 3 {
			t.Fatalf("rpush = %d", n)
		}
		if n, _ := rc.LPush(ctx, "l", "x", "y").Result(); n != 5 {
			t.Fatalf("lpush = %d", n)
		}
		wantList(t, rc, "l", "y", "x", "a", "b", "c")
		if n, _ := rc.LPushX(ctx, "none", "v").Result(); n != 0 {
			t.Fatalf("lpushx on missing key = %d", n)
		}
		if n, _ := rc.RPushX(ctx, "l", "z").Result(); n != 6 {
			t.Fatalf("rpushx = %d", n)
		}
		if n, _ := rc.LLen(ctx, "l").Result(); n != 6 {
			t.Fatalf("llen = %d", n)
		}
		if v, _ := rc.LIndex(ctx, "l", -1).Result(); v != "z" {
			t.Fatalf("lindex -1 = %q", v)
		}
		if err := rc.LIndex(ctx, "l", 10).Err(); err != redis.Nil {
			t.Fatalf("lindex 10 = %v, want nil", err)
		}
		if got, _ := rc.LRange(ctx, "l", 1, 2).Result(); !slices.Equal(got, []string{"x", "a"}) {
			t.Fatalf("lrange 1 2 = %q", got)
		}

		if v, _ := rc.LPop(ctx, "l").Result(); v != "y" {
			t.Fatalf("lpop = %q", v)
		}
		if v, _ := rc.RPop(ctx, "l").Result(); v != "z" {
			t.Fatalf("rpop = %q", v)
		}
		if vs, _ := rc.LPopCount(ctx, "l", 2).Result(); !slices.Equal(vs, []string{"x", "a"}) {
			t.Fatalf("lpop 2 = %q", vs)
		}
		if vs, _ := rc.RPopCount(ctx, "l", 5).Result(); !slices.Equal(vs, []string{"c", "b"}) {
			t.Fatalf("rpop 5 = %q", vs)
		}
		if err := rc.LPop(ctx, "l").Err(); err != redis.Nil {
			t.Fatalf("lpop on empty = %v, want nil", err)
		}
		if err := rc.LPopCount(ctx, "l", 2).Err(); err != redis.Nil {
			t.Fatalf("lpop count on missing = %v, want nil", err)
		}
		wantErr(t, rc.Do(ctx, "LPOP", "l", "-1").Err(), "ERR value is out of range")
		if n, _ := rc.Exists(ctx, "l").Result(); n != 0 {
			t.Fatalf("drained list exists")
		}
	})
}

func TestRESPLRem(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		rc.RPush(ctx, "l", "x", "a", "x", "b", "x")
		if n, _ := rc.LRem(ctx, "l", -1, "x").Result(); n != 1 {
			t.Fatalf("lrem -1 = %d", n)
		}
		wantList(t, rc, "l", "x", "a", "x", "b")
		if n, _ := rc.LRem(ctx, "l", 0, "x").Result(); n != 2 {
			t.Fatalf("lrem 0 = %d", n)
		}
		wantList(t, rc, "l", "a", "b")
		if n, _ := rc.LRem(ctx, "missing", 0, "x").Result(); n != 0 {
			t.Fatalf("lrem on missing = %d", n)
		}
	})
}

func TestRESPBlockingPops(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		rc.RPush(ctx, "k2", "v2")
		got, err := rc.BLPop(ctx, time.Second, "k1", "k2").Result()
		if err != nil || !slices.Equal(got, []string{"k2", "v2"}) {
			t.Fatalf("blpop = %q, %v", got, err)
		}
		if err := rc.Do(ctx, "BRPOP", "k1", "0.01").Err(); err != redis.Nil {
			t.Fatalf("brpop timeout = %v, want nil", err)
		}

		other := ts.client(t, 3)
		done := make(chan []string, 1)
		go func() {
			v, _ := other.BRPop(ctx, 0, "k1", "k2").Result()
			done <- v
		}()
		ts.waitBlocked(t, 1)
		if n, _ := rc.RPush(ctx, "k2", "a", "b").Result(); n != 2 {
			t.Fatalf("rpush onto a waiter = %d, want 2 as Redis counts", n)
		}
		// As in Redis, the waiter is served once both values are in, from the tail.
		if v := <-done; !slices.Equal(v, []string{"k2", "b"}) {
			t.Fatalf("brpop woke with %q, want [k2 b]", v)
		}
		wantList(t, rc, "k2", "a")

		wantErr(t, rc.Do(ctx, "BLPOP", "k", "-1").Err(), "ERR timeout is negative")
		wantErr(t, rc.Do(ctx, "BLPOP", "k", "x").Err(), "ERR timeout is not a float")
	})
}

func TestRESPMultiPops(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		rc.RPush(ctx, "b", "1", "2", "3")
		key, vals, err := rc.LMPop(ctx, "right", 2, "a", "b").Result()
		if err != nil || key != "b" || !slices.Equal(vals, []string{"3", "2"}) {
			t.Fatalf("lmpop = %q %q %v", key, vals, err)
		}
		if err := rc.LMPop(ctx, "left", 1, "a", "c").Err(); err != redis.Nil {
			t.Fatalf("lmpop on empty = %v, want nil", err)
		}
		key, vals, err = rc.BLMPop(ctx, time.Second, "left", 5, "a", "b").Result()
		if err != nil || key != "b" || !slices.Equal(vals, []string{"1"}) {
			t.Fatalf("blmpop = %q %q %v", key, vals, err)
		}
		if err := rc.Do(ctx, "BLMPOP", "0.01", "1", "a", "LEFT").Err(); err != redis.Nil {
			t.Fatalf("blmpop timeout = %v, want nil", err)
		}
		wantErr(t, rc.Do(ctx, "LMPOP", "0", "a", "LEFT").Err(),
			"ERR numkeys should be greater than 0")
		wantErr(t, rc.Do(ctx, "LMPOP", "1", "a", "UP").Err(), "ERR syntax error")
		wantErr(t, rc.Do(ctx, "LMPOP", "1", "a", "LEFT", "COUNT", "0").Err(),
			"ERR count should be greater than 0")
	})
}

func TestRESPMoves(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		rc.RPush(ctx, "src", "a", "b", "c")
		if v, _ := rc.LMove(ctx, "src", "dst", "LEFT", "RIGHT").Result(); v != "a" {
			t.Fatalf("lmove = %q", v)
		}
		if v, _ := rc.RPopLPush(ctx, "src", "dst").Result(); v != "c" {
			t.Fatalf("rpoplpush = %q", v)
		}
		wantList(t, rc, "dst", "c", "a")
		if v, _ := rc.BLMove(ctx, "src", "dst", "right", "left", time.Second).Result(); v != "b" {
			t.Fatalf("blmove = %q", v)
		}
		wantList(t, rc, "dst", "b", "c", "a")
		if err := rc.LMove(ctx, "src", "dst", "LEFT", "LEFT").Err(); err != redis.Nil {
			t.Fatalf("lmove from empty = %v, want nil", err)
		}
		err := rc.Do(ctx, "BRPOPLPUSH", "src", "dst", "0.01").Err()
		if err != redis.Nil {
			t.Fatalf("brpoplpush timeout = %v, want nil", err)
		}
		wantErr(t, rc.Do(ctx, "LMOVE", "src", "dst", "UP", "LEFT").Err(), "ERR syntax error")

		// The reliable-queue pattern: move to a processing list, then drop it there.
		rc.RPush(ctx, "jobs", "j1")
		job, _ := rc.BLMove(ctx, "jobs", "processing", "LEFT", "RIGHT", time.Second).Result()
		if n, _ := rc.LRem(ctx, "processing", 1, job).Result(); n != 1 {
			t.Fatalf("lrem of finished job = %d", n)
		}
	})
}

func TestRESPMultiExec(t *testing.T) {
	forEachProto(t, func(t *testing.T, ts *testServer, rc *redis.Client) {
		ctx := context.Background()
		cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.RPush(ctx, "t", "a", "b")
			p.LPop(ctx, "t")
			p.BLPop(ctx, time.Hour, "empty") // does not block inside EXEC
			return nil
		})
		if !errors.Is(err, redis.Nil) || len(cmds) != 3 {
			t.Fatalf("tx = %v, %v", cmds, err)
		}
		if v := cmds[1].(*redis.StringCmd).Val(); v != "a" {
			t.Fatalf("lpop in tx = %q", v)
		}
		wantErr(t, rc.Do(ctx, "EXEC").Err(), "ERR EXEC without MULTI")
		wantErr(t, rc.Do(ctx, "DISCARD").Err(), "ERR DISCARD without MULTI")
	})
}

func TestRESPRefusesLargeValues(t *testing.T) {
	ts := startServer(t, broker.Config{MaxMessageBytes: 8})
	rc := ts.client(t, 3)
	ctx := context.Background()
	wantErr(t, rc.RPush(ctx, "l", "ok", "much too long").Err(), "ERR message too large")
	if n, _ := rc.LLen(ctx, "l").Result(); n != 0 {
		t.Fatalf("llen after refused push = %d, want 0", n)
	}
}
