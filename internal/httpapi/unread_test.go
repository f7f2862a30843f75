package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTPReplyBeforeBodyIsNotHeld: a request answered without its body being read
// (a Content-Length over the message limit, a bad queue name, a route that takes no
// body) gets its answer at once, with Connection: close, and the connection closes,
// though the body never comes. The body timeout is 5 minutes, so only an answer that
// does not wait for the body arrives within testTimeout. One refused before its body
// is read gets no 100 Continue.
func TestHTTPReplyBeforeBodyIsNotHeld(t *testing.T) {
	s, addr := serveLimited(t, Config{IdleTimeout: 5 * time.Minute})
	tooLarge := s.broker.MaxMessageBytes() + 1
	cases := []struct {
		name, head, sent, want, code string
	}{
		{"too large", fmt.Sprintf("POST /v1/queues/a/messages HTTP/1.1\r\n"+
			"Content-Length: %d\r\n", tooLarge), "", "413", "message_too_large"},
		{"too large, expect 100-continue", fmt.Sprintf("POST /v1/queues/a/messages "+
			"HTTP/1.1\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", tooLarge),
			"", "413", "message_too_large"},
		{"bad key", "POST /v1/queues/%00/messages HTTP/1.1\r\nContent-Length: 10\r\n",
			"", "400", "invalid_key"},
		{"bad key, expect 100-continue", "POST /v1/queues/%00/messages HTTP/1.1\r\n" +
			"Content-Length: 10\r\nExpect: 100-continue\r\n", "", "400", "invalid_key"},
		{"bad key, body stalled", "POST /v1/queues/%00/messages HTTP/1.1\r\n" +
			"Content-Length: 10\r\n", "x", "400", "invalid_key"},
		{"get with a body", "POST /v1/queues/a/get HTTP/1.1\r\nContent-Length: 10\r\n",
			"x", "204", ""},
		{"ack with a body", "POST /v1/deliveries/1/ack HTTP/1.1\r\nContent-Length: 10\r\n",
			"", "404", "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nc := dialRaw(t, addr)
			fmt.Fprint(nc, c.head+"Host: x\r\n\r\n"+c.sent)
			got := readUntilClosed(t, nc)
			if !strings.HasPrefix(got, "HTTP/1.1 "+c.want) || !strings.Contains(got, c.code) {
				t.Fatalf("answered %q, want %s %s", got, c.want, c.code)
			}
			if !strings.Contains(got, "\r\nConnection: close\r\n") {
				t.Errorf("answer %q lacks Connection: close", got)
			}
			if strings.Contains(got, "100 Continue") {
				t.Errorf("a request refused before its body was read got %q", got)
			}
		})
	}
	if n, _ := s.broker.Len("a"); n != 0 {
		t.Fatalf("queue holds %d messages after refused puts", n)
	}
}

// TestHTTPExpectContinueAccepted: a put that asks for 100 Continue gets it, sends its
// body, is stored, and its connection stays open for the next request.
func TestHTTPExpectContinueAccepted(t *testing.T) {
	s, addr := serveLimited(t, Config{IdleTimeout: 5 * time.Minute})
	nc := dialRaw(t, addr)
	br := bufio.NewReader(nc)
	fmt.Fprint(nc, "POST /v1/queues/a/messages HTTP/1.1\r\nHost: x\r\n"+
		"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("before the body: %v, %v; want 100 Continue", resp, err)
	}
	fmt.Fprint(nc, "hello")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Close {
		t.Fatalf("put = %d, close %v; want 201 on a kept-alive connection",
			resp.StatusCode, resp.Close)
	}
	if n, _ := s.broker.Len("a"); n != 1 {
		t.Fatalf("queue holds %d messages, want 1", n)
	}

	fmt.Fprint(nc, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("second request on the connection: %v, %v", resp, err)
	}
	resp.Body.Close()
}
