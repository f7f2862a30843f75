package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

func TestServerPutGetLen(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)

	if c.Hello.Version != 1 || c.Hello.MaxMessage != broker.DefaultMaxMessageBytes ||
		int(c.Hello.MaxFrame) != proto.MaxFrameFor(broker.DefaultMaxMessageBytes) {
		t.Fatalf("hello = %+v", c.Hello)
	}
	id1 := put(t, c, 1, "jobs", []byte("hello"))
	id2 := put(t, c, 2, "jobs", nil) // a zero-byte message is a message
	if id2 <= id1 {
		t.Fatalf("message ids %d then %d, want increasing", id1, id2)
	}
	if n := length(t, c, 3, "jobs"); n != 2 {
		t.Fatalf("len = %d, want 2", n)
	}

	f := c.Do(proto.OpGet, 4, testutil.KeyBody(t, "jobs", nil))
	want(t, f, proto.StatusOK, "")
	if u64(t, f) != id1 || string(f.Body[8:]) != "hello" {
		t.Fatalf("get = id %d %q, want id %d hello", u64(t, f), f.Body[8:], id1)
	}
	f = c.Do(proto.OpGet, 5, testutil.KeyBody(t, "jobs", nil))
	want(t, f, proto.StatusOK, "")
	if len(f.Body) != 8 || u64(t, f) != id2 {
		t.Fatalf("zero-byte get = % x, want just id %d", f.Body, id2)
	}
	f = c.Do(proto.OpGet, 6, testutil.KeyBody(t, "jobs", nil))
	want(t, f, proto.StatusEmpty, "")
	if len(f.Body) != 0 {
		t.Fatalf("empty get body = %q", f.Body)
	}
	if n := length(t, c, 7, "never-used"); n != 0 {
		t.Fatalf("len of unknown queue = %d", n)
	}
}

func TestServerPingAndStats(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)

	f := c.Do(proto.OpPing, 1, []byte("are you there"))
	want(t, f, proto.StatusOK, "")
	if string(f.Body) != "are you there" {
		t.Fatalf("ping echo = %q", f.Body)
	}
	f = c.Do(proto.OpPing, 2, bytes.Repeat([]byte("p"), proto.MaxPingBytes+1))
	want(t, f, proto.StatusBadRequest, "ping body")

	put(t, c, 3, "images", []byte("png"))
	put(t, c, 4, "images", []byte("jpeg"))
	get(t, c, 5, "images")
	get(t, c, 6, "empty")
	testutil.Dial(t, s.Addr) // a second connection to count

	f = c.Do(proto.OpStats, 7)
	want(t, f, proto.StatusOK, "")
	var doc struct {
		Version     string  `json:"version"`
		Uptime      float64 `json:"uptime_seconds"`
		Connections int64   `json:"connections"`
		Queues      int     `json:"queues"`
		Messages    int64   `json:"messages"`
		Bytes       int64   `json:"bytes"`
		Puts        uint64  `json:"puts"`
		Gets        uint64  `json:"gets"`
		EmptyGets   uint64  `json:"empty_gets"`
		QueueStats  []struct {
			Name     string `json:"name"`
			Messages int64  `json:"messages"`
			Bytes    int64  `json:"bytes"`
			Puts     uint64 `json:"puts"`
			Gets     uint64 `json:"gets"`
		} `json:"queue_stats"`
	}
	if err := json.Unmarshal(f.Body, &doc); err != nil {
		t.Fatalf("stats %s: %v", f.Body, err)
	}
	if doc.Version != server.Version || doc.Connections != 2 || doc.Messages != 1 ||
		doc.Bytes != 4 || doc.Puts != 2 || doc.Gets != 1 || doc.EmptyGets != 1 {
		t.Fatalf("stats = %s", f.Body)
	}
	if len(doc.QueueStats) == 0 || doc.QueueStats[0].Name != "images" ||
		doc.QueueStats[0].Messages != 1 || doc.QueueStats[0].Puts != 2 {
		t.Fatalf("queue stats = %s", f.Body)
	}
}

func TestServerRefusesBadRequestsAndGoesOn(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithBroker(func(c *broker.Config) {
		c.MaxMessageBytes = 1024
	}))
	c := testutil.Dial(t, s.Addr)

	f := c.Do(0x42, 1, []byte("future"))
	want(t, f, proto.StatusUnknownOp, "0x42")
	f = c.Do(proto.OpDelete, 2)
	want(t, f, proto.StatusUnknownOp, "")

	body := testutil.KeyBody(t, "q", []byte("x"))
	if err := c.SendRaw(proto.AppendFrame(nil, proto.OpPut, 1, 3, body)); err != nil {
		t.Fatal(err)
	}
	c.Flush()
	f, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	want(t, f, proto.StatusBadRequest, "flags")

	withOption, _ := proto.AppendKey(nil, "q")
	withOption, _ = proto.AppendOptions(withOption,
		proto.Option{Tag: 9, Value: proto.AppendU64(nil, 100)})
	f = c.Do(proto.OpGet, 4, withOption)
	want(t, f, proto.StatusBadRequest, "unknown option tag 9")

	f = c.Do(proto.OpPut, 5, testutil.KeyBody(t, "q", make([]byte, 1025)))
	want(t, f, proto.StatusMessageTooLarge, "1025 bytes")
	put(t, c, 6, "q", make([]byte, 1024))

	if n := length(t, c, 7, "q"); n != 1 {
		t.Fatalf("len = %d, want 1: only the valid put stands", n)
	}
}

func TestServerVersionNegotiation(t *testing.T) {
	s := testutil.StartServer(t)
	tests := []struct {
		offer, want uint16
	}{{1, 1}, {7, 1}, {0, 0}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("offer %d", tt.offer), func(t *testing.T) {
			nc := dialTCP(t, s.Addr)
			nc.Write(proto.ClientHello{Version: tt.offer}.Append(nil))
			h, err := proto.ReadServerHello(nc)
			if h.Version != tt.want {
				t.Fatalf("version = %d (%v), want %d", h.Version, err, tt.want)
			}
		})
	}

	t.Run("bad magic", func(t *testing.T) {
		nc := dialTCP(t, s.Addr)
		nc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := nc.Read(make([]byte, 16))
		if n != 0 || err == nil {
			t.Fatalf("read %d bytes, %v: want a close without an answer", n, err)
		}
	})
}

// TestServerInvalidKeysC25 sends each key of case C25 that the wire can carry (a u8
// length cannot say 64 KiB) through PUT, GET and LEN: each is refused with InvalidKey
// naming the rule, nothing is stored, and the connection stays usable.
func TestServerInvalidKeysC25(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)
	keys := []struct {
		key, rule string
	}{
		{"", "must not be empty"},
		{"\x00", "control character 0x00 at byte 0"},
		{"a\x00b", "control character 0x00 at byte 1"},
		{"\xff\xfe", "not valid UTF-8 at byte 0"},
		{"line\n", "control character 0x0a at byte 4"},
		{"tab\there", "control character 0x09"},
		{"del\x7f", "control character 0x7f"},
		{"c1\u0085", "control character 0x85"},
	}
	id := uint32(0)
	for _, k := range keys {
		t.Run(fmt.Sprintf("%q", k.key), func(t *testing.T) {
			id++
			f := c.Do(proto.OpPut, id, testutil.KeyBody(t, k.key, []byte("m")))
			want(t, f, proto.StatusInvalidKey, k.rule)
			id++
			f = c.Do(proto.OpGet, id, testutil.KeyBody(t, k.key, nil))
			want(t, f, proto.StatusInvalidKey, k.rule)
			id++
			f = c.Do(proto.OpLen, id, testutil.Key(t, k.key))
			want(t, f, proto.StatusInvalidKey, k.rule)
			id++
			want(t, c.Do(proto.OpPing, id), proto.StatusOK, "")
		})
	}

	// The longest key the wire can carry is fine; a longer one cannot be encoded.
	long := strings.Repeat("k", 255)
	put(t, c, 100, long, []byte("m"))
	if msg, ok := get(t, c, 101, long); !ok || string(msg) != "m" {
		t.Fatalf("get of a 255-byte key = %q, %v", msg, ok)
	}
	if _, err := proto.AppendKey(nil, strings.Repeat("k", 64<<10)); err == nil {
		t.Fatal("a 64 KiB key must not be encodable")
	}

	stats := c.Do(proto.OpStats, 102)
	want(t, stats, proto.StatusOK, "")
	if !json.Valid(stats.Body) || s.Broker.Stats(0).Puts != 1 {
		t.Fatalf("stats after refused keys = %s", stats.Body)
	}
}

// TestServerManyClientsPipelining runs clients that each pipeline puts then gets on
// their own queue and on one shared queue; every result is exact.
func TestServerManyClientsPipelining(t *testing.T) {
	s := testutil.StartServer(t)
	const clients, perClient = 16, 300

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() { errs <- pipelineClient(s.Addr, i, perClient) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	c := testutil.Dial(t, s.Addr)
	if n := length(t, c, 1, "shared"); n != clients*perClient {
		t.Fatalf("shared len = %d, want %d", n, clients*perClient)
	}
	seen := make(map[string]bool)
	for i := range clients * perClient {
		msg, ok := get(t, c, uint32(i), "shared")
		if !ok || seen[string(msg)] {
			t.Fatalf("shared get %d: %q, ok %v, seen before %v", i, msg, ok, seen[string(msg)])
		}
		seen[string(msg)] = true
	}
}

// pipelineClient sends n puts to its own queue and to "shared" in one write, reads
// the replies, then pipelines n gets and checks they come back in order.
func pipelineClient(addr string, client, n int) error {
	c, err := testutil.DialRaw(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	own := fmt.Sprintf("client-%d", client)

	for i := range n {
		msg := fmt.Appendf(nil, "%d/%d", client, i)
		c.Send(proto.OpPut, uint32(2*i), keyBody(own, msg))
		c.Send(proto.OpPut, uint32(2*i+1), keyBody("shared", msg))
	}
	if err := c.Flush(); err != nil {
		return err
	}
	if err := expectReplies(c, 2*n, func(i int, f proto.Frame) error {
		if f.ID != uint32(i) || f.Status() != proto.StatusOK {
			return fmt.Errorf("client %d put reply %d: id %d status %v", client, i, f.ID,
				f.Status())
		}
		return nil
	}); err != nil {
		return err
	}

	for i := range n {
		c.Send(proto.OpGet, uint32(i), keyBody(own, nil))
	}
	if err := c.Flush(); err != nil {
		return err
	}
	return expectReplies(c, n, func(i int, f proto.Frame) error {
		want := fmt.Sprintf("%d/%d", client, i)
		if f.ID != uint32(i) || f.Status() != proto.StatusOK || string(f.Body[8:]) != want {
			return fmt.Errorf("client %d get %d: id %d status %v body %q, want %q",
				client, i, f.ID, f.Status(), f.Body, want)
		}
		return nil
	})
}

func expectReplies(c *testutil.Conn, n int, check func(int, proto.Frame) error) error {
	for i := range n {
		f, err := c.Recv()
		if err != nil {
			return fmt.Errorf("reply %d: %w", i, err)
		}
		if err := check(i, f); err != nil {
			return err
		}
	}
	return nil
}

// keyBody is testutil.KeyBody for goroutines, where t.Fatal may not be called.
func keyBody(key string, rest []byte) []byte {
	b, _ := proto.AppendKey(nil, key)
	b, _ = proto.AppendOptions(b)
	return append(b, rest...)
}

// TestServerStatsFitsMaxFrame: with a small max message (so a small max frame), STATS
// lists fewer queues rather than send a reply the client may not read.
func TestServerStatsFitsMaxFrame(t *testing.T) {
	s := testutil.StartServer(t, testutil.WithBroker(func(c *broker.Config) {
		c.MaxMessageBytes = 16
	}))
	c := testutil.Dial(t, s.Addr)
	for i := range 100 {
		put(t, c, uint32(i), fmt.Sprintf("%s-%03d", strings.Repeat("<q>", 60), i), nil)
	}

	f := c.Do(proto.OpStats, 1000) // Recv reads with the announced max frame
	want(t, f, proto.StatusOK, "")
	var doc struct {
		Queues     int               `json:"queues"`
		QueueStats []json.RawMessage `json:"queue_stats"`
	}
	if err := json.Unmarshal(f.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Queues != 100 || len(doc.QueueStats) == 0 || len(doc.QueueStats) >= 100 {
		t.Fatalf("stats lists %d of %d queues in %d bytes", len(doc.QueueStats), doc.Queues,
			len(f.Body))
	}
}
