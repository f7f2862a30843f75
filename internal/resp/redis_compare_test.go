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
	{"MULTI"}, {"RPUSH", "t", "a", "b"}, {"LPOP", "t"}, {"BLPOP", "none", "5"}, {"EXEC"},
	{"MULTI"}, {"RPUSH", "t", "c"}, {"DISCARD"}, {"LRANGE", "t", "0", "-1"},
	{"MULTI"}, {"RPUSH", "t"}, {"EXEC"}, {"EXEC"}, {"DISCARD"},
	{"CLIENT", "GETNAME"}, {"CLIENT", "SETNAME", "w1"}, {"CLIENT", "GETNAME"},
	{"CLIENT", "SETNAME", "a b"},
	{"NOSUCH", "a", "b"}, {"FLUBBER", "k", "v"}, {"LPUSH", "l"}, {"LLEN"},
	{"CONFIG", "GET", "appendonly"}, {"CONFIG", "GET", "nosuchparam"},
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
