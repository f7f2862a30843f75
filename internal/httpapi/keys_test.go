package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/wal"
)

// C25: queue names with NUL, newline or invalid UTF-8 must be refused the same way on
// every path (PUT, GET, LEN, DELETE), and listing must keep working for the others.
func TestHTTPBadKeysRefusedOnEveryPathC25(t *testing.T) {
	a := startAPI(t)
	good := oddValidNames()
	for _, name := range good {
		a.put(name, "before")
	}
	queuesBefore := a.broker.Stats(0).Queues

	bad := map[string]string{
		"empty":       "",
		"nul":         "\x00",
		"inner nul":   "a\x00b",
		"not utf-8":   "\xff\xfe",
		"newline":     "line\n",
		"64 KiB":      strings.Repeat("k", 64<<10),
		"256 bytes":   strings.Repeat("k", broker.MaxKeyBytes+1),
		"c1 control":  "a\u0085b",
		"del":         "a\x7f",
		"cr in name":  "a\rb",
		"tab in name": "\tx",
	}
	for label, key := range bad {
		t.Run(label, func(t *testing.T) {
			want := broker.ValidateKey(key)
			if want == nil {
				t.Fatalf("broker accepts %q", key)
			}
			// The native path (the broker itself) says the same.
			if _, err := a.broker.Put(context.Background(), key, []byte("x")); err == nil ||
				err.Error() != want.Error() {
				t.Fatalf("broker put: %v, want %v", err, want)
			}

			path := queuePath(key)
			calls := []struct{ method, path, body string }{
				{"POST", path + "/messages", "x"},
				{"POST", path + "/get", ""},
				{"POST", path + "/get?wait=10ms", ""},
				{"GET", path, ""},
				{"DELETE", path, ""},
			}
			for _, c := range calls {
				resp, body := a.do(c.method, c.path, strings.NewReader(c.body))
				e := wantError(t, resp, body, http.StatusBadRequest, "invalid_key", 20)
				if e.Message != want.Error() {
					t.Errorf("%s: message %q, want the broker's %q", c.method, e.Message, want)
				}
			}
		})
	}

	if got := a.broker.Stats(0).Queues; got != queuesBefore {
		t.Errorf("queues = %d after bad keys, want %d: one was created", got, queuesBefore)
	}
	checkListed(t, a, good)
}

// Names that are valid but easy to mangle in a URL or in JSON go through every path
// unchanged, whichever front door created them.
func TestHTTPOddValidNamesRoundTripC25(t *testing.T) {
	a := startAPI(t)
	names := oddValidNames()
	for i, name := range names {
		if i%2 == 0 {
			a.put(name, name)
		} else if _, err := a.broker.Put(context.Background(), name, []byte(name)); err != nil {
			t.Fatalf("broker put on %q: %v", name, err) // as the native door would
		}
		a.put(name, "second")
	}
	checkListed(t, a, names)

	for _, name := range names {
		path := queuePath(name)
		var q queueReply
		resp, body := a.do("GET", path, nil)
		decode(t, body, &q)
		if resp.StatusCode != http.StatusOK || q.Name != name || q.Messages != 2 {
			t.Errorf("len %q = %d %+v, want 2 messages", name, resp.StatusCode, q)
		}

		resp, body = a.do("POST", path+"/get", nil)
		if resp.StatusCode != http.StatusOK || string(body) != name {
			t.Errorf("get %q = %d %q", name, resp.StatusCode, body)
		}

		var d deleteReply
		resp, body = a.do("DELETE", path, nil)
		decode(t, body, &d)
		if resp.StatusCode != http.StatusOK || d.Deleted != 1 {
			t.Errorf("delete %q = %d %+v, want 1 deleted", name, resp.StatusCode, d)
		}
		if n, _ := a.broker.Len(name); n != 0 {
			t.Errorf("len %q after delete = %d", name, n)
		}
	}
}

func oddValidNames() []string {
	return []string{
		"plain", "a/b", "/lead", "trail/", "%41", ".", "..", "...", "sp ace", "q?x#y&z",
		"ünïcødé", "日本語", `quo"te\`, "<b>&amp;", "+plus+", "~tilde", "emoji 🦀",
		strings.Repeat("k", broker.MaxKeyBytes),
	}
}

// checkListed asserts that GET /v1/queues answers 200 and names exactly want.
func checkListed(t *testing.T, a *testAPI, want []string) {
	t.Helper()
	resp, body := a.do("GET", "/v1/queues", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list status = %d, body %s", resp.StatusCode, body)
	}
	var l listReply
	decode(t, body, &l)

	listed := make(map[string]bool)
	for _, q := range l.QueueStats {
		listed[q.Name] = true
	}
	for _, name := range want {
		if !listed[name] {
			t.Errorf("list lacks %q", name)
		}
	}
	if len(l.QueueStats) != len(want) {
		t.Errorf("list has %d queues, want %d", len(l.QueueStats), len(want))
	}
}

// Names put over HTTP come back unchanged from the durable log after a restart.
func TestHTTPNamesSurviveRestartC25(t *testing.T) {
	dir := t.TempDir()
	names := oddValidNames()

	open := func() *testAPI {
		l, err := wal.Open(dir, wal.Options{})
		if err != nil {
			t.Fatalf("open log: %v", err)
		}
		b, err := broker.New(broker.Config{Store: l, SweepInterval: time.Hour})
		if err != nil {
			l.Close()
			t.Fatalf("new broker: %v", err)
		}
		t.Cleanup(func() { b.Close() })
		return serveAPI(t, b, apiSetup{})
	}

	a := open()
	for _, name := range names {
		a.put(name, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.broker.Close(); err != nil {
		t.Fatalf("close broker: %v", err)
	}

	a = open()
	checkListed(t, a, names)
	for _, name := range names {
		resp, body := a.do("POST", queuePath(name)+"/get", nil)
		if resp.StatusCode != http.StatusOK || string(body) != name {
			t.Errorf("get %q after restart = %d %q", name, resp.StatusCode, body)
		}
	}
}
