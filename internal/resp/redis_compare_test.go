package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/redcon"

	"github.com/keyq/keyq/internal/broker"
)

// compareSequence is sent to keyq and to a real Redis; every reply must match byte
// for byte. It leaves out what differs by design: HELLO's server name and ids, INFO,
// COMMAND, SELECT of other databases, KEYS and SCAN over several keys (Redis
// returns them in hash order), and keys keyq refuses.
var compareSequence = [][]string{
	{"PING"}, {"PING", "hello"}, {"ECHO", "x y"},
	{"SELECT", "0"}, {"SELECT", "x"},
	{"RPUSH", "l", "a", "b", "c"}, {"LPUSH", "l", "x", "y"}, {"LLEN", "l"},
	{"LPUSHX", "none", "v"}, {"RPUSHX", "l", "z"}, {"RPUSHX", "none", "v"},
	{"LRANGE", "l", "0", "-1"}, {"LRANGE", "l", "-2", "100"}, {"LRANGE", "l", "5", "1"},
	{"LRANGE", "none", "0", "-1"}, {"LRANGE", "l", "a", "1"},
	{"LINDEX", "l", "0"}, {"LINDEX", "l", "-1"}, {"LINDEX", "l", "99"},
	{"LINDEX", "l", "-99"}, {"LINDEX", "l", "x"}, {"LINDEX", "none", "0"},
	{"LPOP", "l"}, {"RPOP", "l"}, {"LPOP", "l", "2"}, {"RPOP", "l", "0"},
	{"LPOP", "none"}, {"LPOP", "none", "2"}, {"LPOP", "none", "0"}, {"LPOP", "l", "-1"},
	{"LPOP", "l", "x"}, {"RPOP", "l", "10"}, {"EXISTS", "l"}, {"TYPE", "l"},
	{"RPUSH", "r", "x", "a", "x", "b", "x"}, {"LREM", "r", "-1", "x"}, {"LREM", "r", "1", "x"},
	{"LRANGE", "r", "0", "-1"}, {"LREM", "r", "0", "x"}, {"LREM", "none", "0", "x"},
	{"LREM", "r", "x", "a"},
	{"RPUSH", "L", "a", "b", "c"}, {"RPOPLPUSH", "L", "L"}, {"LRANGE", "L", "0", "-1"},
	{"LMOVE", "L", "L", "LEFT", "RIGHT"}, {"LRANGE", "L", "0", "-1"},
	{"LMOVE", "L", "L", "LEFT", "LEFT"}, {"LMOVE", "L", "L", "RIGHT", "RIGHT"},
	{"LRANGE", "L", "0", "-1"}, {"LMOVE", "L", "M", "right", "left"},
	{"LMOVE", "none", "M", "LEFT", "LEFT"}, {"LMOVE", "L", "M", "UP", "LEFT"},
	{"RPOPLPUSH", "none", "M"}, {"LRANGE", "M", "0", "-1"},
	{"BLMOVE", "L", "M", "LEFT", "RIGHT", "0.01"}, {"BLMOVE", "none", "M", "LEFT", "LEFT", "0.01"},
	{"BRPOPLPUSH", "none", "M", "0.01"}, {"BRPOPLPUSH", "M", "L", "0"},
	{"RPUSH", "k2", "1", "2", "3", "4"}, {"RPUSH", "k1", "5", "6"},
	{"BLPOP", "k1", "k2", "1"}, {"BRPOP", "k0", "k2", "1"}, {"BLPOP", "none", "0.01"},
	{"BLPOP", "k1", "-1"}, {"BLPOP", "k1", "nan"}, {"BLPOP", "k1", "abc"},
	{"BRPOP", "k1"},
	{"LMPOP", "2", "none", "k2", "LEFT"}, {"LMPOP", "1", "k2", "RIGHT", "COUNT", "10"},
	{"LMPOP", "1", "none", "LEFT"}, {"LMPOP", "0", "k2", "LEFT"},
	{"LMPOP", "1", "k2", "UP"}, {"LMPOP", "1", "k1", "LEFT", "COUNT", "0"},
	{"LMPOP", "5", "k1", "LEFT"}, {"LMPOP", "1", "k1", "LEFT", "COUNT"},
	{"BLMPOP", "0.01", "1", "none", "LEFT"}, {"BLMPOP", "1", "1", "k1", "RIGHT", "COUNT", "3"},
	{"BLMPOP", "-1", "1", "k1", "LEFT"},
	{"RPUSH", "d1", "a"}, {"RPUSH", "d2", "b"}, {"EXISTS", "d1", "d2", "none", "d1"},
	{"DEL", "d1", "none"}, {"EXISTS", "d1"}, {"TYPE", "d2"}, {"TYPE", "none"},
	{"KEYS", "d?"}, {"DBSIZE"}, {"UNLINK", "d2"},
	{"RPUSH", "gx7", "a"}, {"KEYS", "gx[0-9]"}, {"KEYS", "gx[^0-9]"}, {"KEYS", "g[w-y]\\7"},
	{"KEYS", "gx[7"}, {"SCAN", "0", "MATCH", "g?[5-8]", "COUNT", "1000"}, {"DEL", "gx7"},
	{"CONFIG", "GET", "appendonl[xy]"},
	{"MULTI"}, {"RPUSH", "t", "a", "b"}, {"LPOP", "t"}, {"BLPOP", "none", "5"}, {"EXEC"},
	{"MULTI"}, {"RPUSH", "t", "c"}, {"DISCARD"}, {"LRANGE", "t", "0", "-1"},
	{"MULTI"}, {"RPUSH", "t"}, {"EXEC"}, {"EXEC"}, {"DISCARD"},
	{"CLIENT", "GETNAME"}, {"CLIENT", "SETNAME", "w1"}, {"CLIENT", "GETNAME"},
	{"CLIENT", "SETNAME", "a b"},
	{"NOSUCH", "a", "b"}, {"FLUBBER", "k", "v"}, {"LPUSH", "l"}, {"LLEN"},
	{"CONFIG", "GET", "appendonly"}, {"CONFIG", "GET", "nosuchparam"},
	{"AUTH", "x"}, {"AUTH", "default", "x"}, {"AUTH", "other", "x"}, {"AUTH", "a", "b", "c"},
	{"HELLO", "3", "AUTH", "other", "x"}, {"HELLO", "3", "AUTH", "default"},
	{"PING"},
}

// TestRESPRepliesMatchRedis sends compareSequence to keyq and to a redis-server from
// the system's packages, in RESP2 and in RESP3, and asserts identical replies. It is
// skipped when redis-server is not installed.
func TestRESPRepliesMatchRedis(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	redisAddr := startRedis(t, path)
	ts := startServer(t, broker.Config{})

	for _, proto := range []string{"2", "3"} {
		t.Run("resp"+proto, func(t *testing.T) {
			want := runSequence(t, redisAddr, proto)
			got := runSequence(t, ts.addr, proto)
			for i, args := range compareSequence {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("%q:\n keyq  %q\n redis %q", args, got[i], want[i])
				}
			}
		})
	}
}

func startRedis(t *testing.T, path string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	cmd := exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 10*time.Second, "redis-server to listen", func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err == nil
	})
	return addr
}

// runSequence sends compareSequence on a fresh connection, after HELLO 3 when proto
// is 3, and returns each raw reply; the keys it touches are deleted first.
func runSequence(t *testing.T, addr, proto string) [][]byte {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReader(nc)
	send := func(args ...string) []byte {
		buf := redcon.AppendArray(nil, len(args))
		for _, a := range args {
			buf = redcon.AppendBulkString(buf, a)
		}
		if _, err := nc.Write(buf); err != nil {
			t.Fatalf("write to %s: %v", addr, err)
		}
		reply, err := readReply(rd)
		if err != nil {
			t.Fatalf("%q on %s: %v", args, addr, err)
		}
		return reply
	}

	send("HELLO", proto)
	send("DEL", "l", "r", "L", "M", "k0", "k1", "k2", "d1", "d2", "t", "none", "k")
	var replies [][]byte
	for _, args := range compareSequence {
		replies = append(replies, send(args...))
	}
	return replies
}

// readReply reads one whole RESP2 or RESP3 reply and returns its bytes.
func readReply(rd *bufio.Reader) ([]byte, error) {
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, fmt.Errorf("short reply line %q", line)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(line[1:])))
	out := bytes.Clone(line)
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return out, nil
	case '$', '=', '!':
		if n < 0 {
			return out, nil
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(rd, body); err != nil {
			return nil, err
		}
		return append(out, body...), nil
	case '*', '~', '>', '%', '|':
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range max(n, 0) {
			elem, err := readReply(rd)
			if err != nil {
				return nil, err
			}
			out = append(out, elem...)
		}
		return out, nil
	}
	return nil, errors.New("unknown reply type " + strconv.Quote(string(line[:1])))
}

// TestRESPReadReplyParsesNestedReplies keeps the comparison's reader honest.
func TestRESPReadReplyParsesNestedReplies(t *testing.T) {
	raw := "*2\r\n$1\r\na\r\n%1\r\n+k\r\n*-1\r\n:5\r\n"
	rd := bufio.NewReader(strings.NewReader(raw))
	first, err := readReply(rd)
	if err != nil || string(first) != "*2\r\n$1\r\na\r\n%1\r\n+k\r\n*-1\r\n" {
		t.Fatalf("first reply = %q, %v", first, err)
	}
	if second, _ := readReply(rd); string(second) != ":5\r\n" {
		t.Fatalf("second reply = %q", second)
	}
}

// A blockStep is one command of a scenario with several clients: client sends args
// and reads the reply at once, or, with block set, leaves the command blocked until
// a later step with no args reads its reply.
type blockStep struct {
	client int
	args   []string
	block  bool
}

func send(client int, args ...string) blockStep { return blockStep{client: client, args: args} }

func block(client int, args ...string) blockStep {
	return blockStep{client: client, args: args, block: true}
}

func reply(client int) blockStep { return blockStep{client: client} }

// blockedScenarios are sequences in which pushes serve blocked clients; keyq must
// serve the same clients with the same elements as Redis (cases C02 and C09).
var blockedScenarios = map[string][]blockStep{
	"c09-transaction": {
		block(1, "BLPOP", "key1", "key2", "0"),
		send(0, "MULTI"), send(0, "RPUSH", "key2", "1", "2", "3", "4"),
		send(0, "RPUSH", "key1", "5", "6", "7"), send(0, "EXEC"),
		reply(1), send(0, "LRANGE", "key1", "0", "-1"), send(0, "LRANGE", "key2", "0", "-1"),
	},
	"lpush-several-onto-blpop": {
		block(1, "BLPOP", "k", "0"), block(2, "BLPOP", "k", "0"), block(3, "BLPOP", "k", "0"),
		send(0, "LPUSH", "k", "a", "b", "c"), reply(1), reply(2), reply(3),
		send(0, "LLEN", "k"),
	},
	"rpush-several-onto-both-ends": {
		block(1, "BRPOP", "k", "0"), block(2, "BLPOP", "k", "0"),
		send(0, "RPUSH", "k", "a", "b", "c", "d"), reply(1), reply(2),
		send(0, "LRANGE", "k", "0", "-1"),
	},
	"transaction-serves-key-by-key": {
		block(1, "BLPOP", "a", "0"), block(2, "BLPOP", "b", "a", "0"),
		block(3, "BRPOP", "a", "0"),
		send(0, "MULTI"), send(0, "RPUSH", "a", "x", "y", "z"), send(0, "RPUSH", "b", "v"),
		send(0, "EXEC"), reply(1), reply(2), reply(3), send(0, "LRANGE", "a", "0", "-1"),
	},
	"transaction-first-filled-key-first": {
		block(1, "BLPOP", "b", "0"), block(2, "BLPOP", "b", "a", "0"),
		send(0, "MULTI"), send(0, "RPUSH", "a", "x"), send(0, "RPUSH", "b", "v"),
		send(0, "EXEC"), reply(2), send(0, "LRANGE", "a", "0", "-1"),
		send(0, "RPUSH", "b", "u"), reply(1),
	},
	"blmpop-right-after-lpush": {
		block(1, "BLMPOP", "0", "1", "k", "RIGHT", "COUNT", "2"),
		send(0, "LPUSH", "k", "a", "b", "c"), reply(1), send(0, "LRANGE", "k", "0", "-1"),
	},
	"blmpop-count-before-next-waiter": {
		block(1, "BLMPOP", "0", "1", "k", "LEFT", "COUNT", "2"), block(2, "BLPOP", "k", "0"),
		send(0, "RPUSH", "k", "a", "b", "c"), reply(1), reply(2), send(0, "LLEN", "k"),
	},
	"transaction-move-then-push": {
		send(0, "RPUSH", "src", "x", "y"), block(1, "BLPOP", "d", "0"),
		send(0, "MULTI"), send(0, "LMOVE", "src", "d", "LEFT", "LEFT"),
		send(0, "LPUSH", "d", "w"), send(0, "EXEC"), reply(1),
		send(0, "LRANGE", "d", "0", "-1"), send(0, "LRANGE", "src", "0", "-1"),
	},
}

// since72 names the scenarios in which Redis before 7.2 differs: it served a
// client blocked on several keys from the key that was pushed first, where 7.2
// re-runs the client's command, which takes from the first of its keys with an
// element. keyq follows 7.2 (case C09).
var since72 = map[string]bool{
	"c09-transaction":                    true,
	"transaction-serves-key-by-key":      true,
	"transaction-first-filled-key-first": true,
}

// TestRESPBlockedRepliesMatchRedis runs blockedScenarios against keyq and a real
// Redis and asserts identical replies, step by step. It is skipped when redis-server
// is not installed, and so is each scenario of since72 when it is older than 7.2.
func TestRESPBlockedRepliesMatchRedis(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	redisAddr := startRedis(t, path)
	ts := startServer(t, broker.Config{})
	redisBlocked := func(t *testing.T, n int64) { waitRedisBlocked(t, redisAddr, n) }
	keyqBlocked := func(t *testing.T, n int64) { ts.waitBlocked(t, n) }
	version := installedRedisVersion(t, redisAddr)

	for name, steps := range blockedScenarios {
		for _, proto := range []string{"2", "3"} {
			t.Run(name+"/resp"+proto, func(t *testing.T) {
				if since72[name] && versionBefore(version, 7, 2) {
					t.Skipf("redis %s serves this as Redis before 7.2 did", version)
				}
				want := runBlocked(t, redisAddr, proto, steps, redisBlocked)
				got := runBlocked(t, ts.addr, proto, steps, keyqBlocked)
				for i, s := range steps {
					if !bytes.Equal(got[i], want[i]) {
						t.Errorf("step %d %d%q:\n keyq  %q\n redis %q", i, s.client, s.args,
							got[i], want[i])
					}
				}
			})
		}
	}
}

// runBlocked runs steps on fresh connections to addr and returns, for each step, the
// reply it read (nil for a step that only blocked). blocked(n) waits until the
// server has n clients blocked.
func runBlocked(
	t *testing.T, addr, proto string, steps []blockStep, blocked func(*testing.T, int64),
) [][]byte {
	conns := map[int]*bufio.ReadWriter{}
	conn := func(i int) *bufio.ReadWriter {
		if rw := conns[i]; rw != nil {
			return rw
		}
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(30 * time.Second))
		rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
		conns[i] = rw
		writeCommand(t, rw, "HELLO", proto)
		mustRead(t, rw)
		return rw
	}
	rw := conn(0)
	writeCommand(t, rw, "DEL", "key1", "key2", "k", "a", "b", "d", "src")
	mustRead(t, rw)

	replies := make([][]byte, len(steps))
	var n int64
	for i, s := range steps {
		rw := conn(s.client)
		switch {
		case s.args == nil:
			replies[i] = mustRead(t, rw)
			n--
		case s.block:
			writeCommand(t, rw, s.args...)
			n++
			blocked(t, n) // clients block in the order the steps give
		default:
			writeCommand(t, rw, s.args...)
			replies[i] = mustRead(t, rw)
		}
	}
	return replies
}

func writeCommand(t *testing.T, rw *bufio.ReadWriter, args ...string) {
	t.Helper()
	buf := redcon.AppendArray(nil, len(args))
	for _, a := range args {
		buf = redcon.AppendBulkString(buf, a)
	}
	if _, err := rw.Write(buf); err != nil {
		t.Fatalf("write %q: %v", args, err)
	}
	if err := rw.Flush(); err != nil {
		t.Fatalf("write %q: %v", args, err)
	}
}

func mustRead(t *testing.T, rw *bufio.ReadWriter) []byte {
	t.Helper()
	r, err := readReply(rw.Reader)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return r
}

// waitRedisBlocked polls Redis' INFO clients until it counts n blocked clients.
func waitRedisBlocked(t *testing.T, addr string, n int64) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	want := fmt.Sprintf("blocked_clients:%d\r\n", n)
	waitFor(t, 5*time.Second, "redis blocked clients", func() bool {
		writeCommand(t, rw, "INFO", "clients")
		return bytes.Contains(mustRead(t, rw), []byte(want))
	})
}

// installedRedisVersion returns the redis_version INFO reports, such as "7.0.15".
func installedRedisVersion(t *testing.T, addr string) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer nc.Close()
	rw := bufio.NewReadWriter(bufio.NewReader(nc), bufio.NewWriter(nc))
	writeCommand(t, rw, "INFO", "server")
	for line := range strings.SplitSeq(string(mustRead(t, rw)), "\r\n") {
		if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
			return v
		}
	}
	t.Fatal("INFO server names no redis_version")
	return ""
}

// versionBefore reports whether version (major.minor.patch) is older than
// major.minor.
func versionBefore(version string, major, minor int) bool {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return false
	}
	gotMajor, _ := strconv.Atoi(parts[0])
	gotMinor, _ := strconv.Atoi(parts[1])
	return gotMajor < major || gotMajor == major && gotMinor < minor
}
