package resp

import (
	"os/exec"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

// headerCase is what a client sends, a write at a time, and what Redis 7 answers:
// its reply lines, then, if refuse is set, "-ERR Protocol error: " + refuse and the
// close.
type headerCase struct {
	name    string
	writes  []string
	replies []string
	refuse  string
}

const pingRequest = "*1\r\n$4\r\nPING\r\n"

// headerCases are requests whose headers Redis reads otherwise than redcon: Redis
// skips a request of no elements or fewer and refuses a header number string2ll
// does not take.
var headerCases = []headerCase{
	{name: "EmptyThenPing", writes: []string{"*0\r\n" + pingRequest},
		replies: []string{"+PONG"}},
	{name: "MinusOneThenPing", writes: []string{"*-1\r\n" + pingRequest},
		replies: []string{"+PONG"}},
	{name: "ManySkipped", writes: []string{"PING\r\n*-7\r\n*0\r\n*-1\r\nPING\r\n"},
		replies: []string{"+PONG", "+PONG"}},
	{name: "EmptyAlone", writes: []string{"*0\r\n"}},
	{name: "MinusOneAlone", writes: []string{"*-1\r\n"}},
	{name: "EmptyThenPingApart", writes: []string{"*0\r\n", pingRequest},
		replies: []string{"+PONG"}},
	{name: "MinusOneThenPingApart", writes: []string{"*-1\r\n", "*-3\r", "\n", "PING\r\n"},
		replies: []string{"+PONG"}},
	{name: "MinInt64", writes: []string{"*-9223372036854775808\r\n" + pingRequest},
		replies: []string{"+PONG"}},
	{name: "EmptyInline", writes: []string{"\r\n", "\n  \r\nPING\r\n"},
		replies: []string{"+PONG"}},
	{name: "PlusCount", writes: []string{"*+1\r\n$4\r\nPING\r\n"},
		refuse: "invalid multibulk length"},
	{name: "LeadingZeroCount", writes: []string{"*01\r\n$4\r\nPING\r\n"},
		refuse: "invalid multibulk length"},
	{name: "MinusZeroCount", writes: []string{"*-0\r\n" + pingRequest},
		refuse: "invalid multibulk length"},
	{name: "ZeroZeroCount", writes: []string{"*00\r\n"}, refuse: "invalid multibulk length"},
	{name: "BelowMinInt64", writes: []string{"*-9223372036854775809\r\n"},
		refuse: "invalid multibulk length"},
	{name: "PlusLength", writes: []string{"*1\r\n$+4\r\nPING\r\n"},
		refuse: "invalid bulk length"},
	{name: "LeadingZeroLength", writes: []string{"*1\r\n$04\r\nPING\r\n"},
		refuse: "invalid bulk length"},
	{name: "MinusZeroLength", writes: []string{"*2\r\n$4\r\nECHO\r\n$-0\r\n\r\n"},
		refuse: "invalid bulk length"},
	{name: "PingThenPlusCount", writes: []string{"PING\r\n", "*+1\r\n$4\r\nPING\r\n"},
		replies: []string{"+PONG"}, refuse: "invalid multibulk length"},
}

// runHeaderCases sends each case on a connection of its own to the server at addr
// and checks the replies, and that only that connection closed: a bystander
// connection, open all along, is still served after each.
func runHeaderCases(t *testing.T, addr string) {
	bystander := dialRaw(t, addr)
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr)
			for i, w := range tc.writes {
				if i > 0 {
					// Likely, not sure, to make the server read the writes apart;
					// the reader tests split requests everywhere for certain.
					time.Sleep(5 * time.Millisecond)
				}
				rc.send(t, w)
			}
			for _, want := range tc.replies {
				if got := rc.line(t); got != want {
					t.Fatalf("reply = %q, want %q", got, want)
				}
			}
			if tc.refuse != "" {
				rc.wantProtocolError(t, tc.refuse)
			} else {
				// The next reply is PING's: the skipped requests were answered
				// nothing.
				rc.send(t, "PING\r\n")
				if got := rc.line(t); got != "+PONG" {
					t.Fatalf("reply to a PING after them = %q, want +PONG", got)
				}
			}

			bystander.send(t, pingRequest)
			if got := bystander.line(t); got != "+PONG" {
				t.Fatalf("bystander's reply = %q, want +PONG", got)
			}
		})
	}
}

// TestRESPHeadersAsRedis: keyq reads the headers of headerCases as Redis does, and
// closes only the connection whose request it refuses.
func TestRESPHeadersAsRedis(t *testing.T) {
	ts := startServer(t, broker.Config{})
	healthy := ts.client(t, 2)
	runHeaderCases(t, ts.addr)
	wantServing(t, healthy)
}

// TestRESPHeaderCasesMatchRedis checks headerCases against a real redis-server, if
// one is installed, so that they say what Redis does.
func TestRESPHeaderCasesMatchRedis(t *testing.T) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not on PATH")
	}
	runHeaderCases(t, startRedis(t, path))
}
