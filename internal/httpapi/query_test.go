package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHTTPDurationParametersStrict: every duration parameter of every route refuses
// a malformed query with 400 naming the parameter, and a value out of range (however
// large, C06) with 400 "over the limit of", never a wrapped negative duration.
func TestHTTPDurationParametersStrict(t *testing.T) {
	a := startAPI(t)
	routes := []struct{ path, param string }{
		{"/v1/queues/q/get", "wait"},
		{"/v1/queues/q/reserve", "wait"},
		{"/v1/queues/q/reserve", "lease"},
		{"/v1/queues/q/messages", "delay"},
		{"/v1/queues/q/messages", "ttl"},
		{"/v1/deliveries/1/nack", "delay"},
		{"/v1/deliveries/1/touch", "lease"},
	}
	cases := []struct{ value, want string }{
		{"1e10", "over the limit of"},
		{"Inf", "over the limit of"},
		{"1e400", "over the limit of"},
		{"3155760000", "over the limit of"},
		{"9999999999999h", "over the limit of"},
		{"-1s", "is negative"},
		{"-Inf", "is negative"},
		{"NaN", "is not a duration"},
		{"soon", "is not a duration"},
		{"5parsecs", "is not a duration"},
		{"%ZZ", "is malformed"},
		{"1s;x=1", "';'"},
	}
	for _, rt := range routes {
		for _, c := range cases {
			t.Run(rt.param+"="+c.value+" "+rt.path, func(t *testing.T) {
				path := rt.path + "?" + rt.param + "=" + c.value
				resp, body := a.do("POST", path, strings.NewReader("x"))
				e := wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
				if !strings.Contains(e.Message, c.want) ||
					!strings.Contains(e.Message, rt.param) {
					t.Fatalf("message %q lacks %q or the parameter %s",
						e.Message, c.want, rt.param)
				}
				if strings.Contains(e.Message, "-2562047h") {
					t.Fatalf("message %q shows an overflow", e.Message)
				}
			})
		}
	}
}

// TestHTTPQueryMalformedElsewhereIs400: a bad escape or a repeated parameter in any
// route's query is refused, not silently dropped.
func TestHTTPQueryMalformedElsewhereIs400(t *testing.T) {
	a := startAPI(t)
	for _, path := range []string{
		"/v1/queues?limit=%ZZ",
		"/v1/queues/q/get?wait=1ms&wait=2s",
		"/v1/queues/q/get?%ZZ=1",
	} {
		method := "POST"
		if strings.HasPrefix(path, "/v1/queues?") {
			method = "GET"
		}
		resp, body := a.do(method, path, nil)
		wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
	}
}

func TestParseDurationValues(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"1.5s", 1500 * time.Millisecond},
		{"0.5", 500 * time.Millisecond},
		{"1e-12", time.Nanosecond}, // positive never rounds to 0 (C05)
		{"1m30s", 90 * time.Second},
		{"3153600000", maxDuration},
	}
	for _, c := range cases {
		got, err := parseDuration("delay", c.in, maxDuration)
		if err != nil || got != c.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// paramRoutes are the API's routes with the query parameters each takes, as
// docs/HTTP.md lists them.
var paramRoutes = []struct {
	method, path string
	params       []string
}{
	{"POST", "/v1/queues/q/messages", []string{"delay", "ttl"}},
	{"POST", "/v1/queues/q/get", []string{"wait"}},
	{"POST", "/v1/queues/q/reserve", []string{"wait", "lease"}},
	{"POST", "/v1/deliveries/1/ack", nil},
	{"POST", "/v1/deliveries/1/nack", []string{"delay"}},
	{"POST", "/v1/deliveries/1/touch", []string{"lease"}},
	{"GET", "/v1/queues/q", nil},
	{"HEAD", "/v1/queues/q", nil},
	{"DELETE", "/v1/queues/q", nil},
	{"GET", "/v1/queues", []string{"limit"}},
	{"GET", "/healthz", nil},
	{"GET", "/readyz", nil},
}

// TestHTTPUnknownQueryParameterRefused: every route refuses a parameter it does not
// take (a typo of one it takes, one another route takes, any other) with 400
// bad_request naming it and the parameters the route takes, and does nothing: a
// ?dealy=10s must not put a message for now.
func TestHTTPUnknownQueryParameterRefused(t *testing.T) {
	a := startAPI(t)
	for _, rt := range paramRoutes {
		for _, q := range []string{"bogus=1", "dealy=10s", "wait=1s&limit=1", "Wait=1s",
			"x", "=1"} {
			if slices.Contains(rt.params, "wait") && strings.HasPrefix(q, "wait=") {
				q = "lease=1s&limit=1" // wait is taken: try ones that are not
				if slices.Contains(rt.params, "lease") {
					q = "limit=1"
				}
			}
			t.Run(rt.method+" "+rt.path+"?"+q, func(t *testing.T) {
				resp, body := a.do(rt.method, rt.path+"?"+q, nil)
				if rt.method == "HEAD" {
					if resp.StatusCode != http.StatusBadRequest {
						t.Fatalf("status = %d, want 400", resp.StatusCode)
					}
					return
				}
				e := wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
				if !strings.Contains(e.Message, "unknown query parameter") {
					t.Fatalf("message %q does not say the parameter is unknown", e.Message)
				}
				for _, p := range rt.params {
					if !strings.Contains(e.Message, p) {
						t.Errorf("message %q does not list %s", e.Message, p)
					}
				}
				if len(rt.params) == 0 && !strings.Contains(e.Message, "no query parameters") {
					t.Errorf("message %q does not say the route takes none", e.Message)
				}
			})
		}
	}
	if n, _ := a.broker.Len("q"); n != 0 {
		t.Fatalf("refused puts left %d messages", n)
	}

	_, body := a.do("POST", "/v1/queues/q/messages?dealy=10s", strings.NewReader("x"))
	var reply errorReply
	decode(t, body, &reply)
	want := `bad request: unknown query parameter "dealy": ` +
		"POST /v1/queues/{queue}/messages takes only delay, ttl"
	if reply.Error.Message != want {
		t.Fatalf("message %q, want %q", reply.Error.Message, want)
	}
}

// TestHTTPEmptyQueryValueRefused: a parameter a route takes, given with no value
// (?wait= or ?wait), is refused rather than read as not given.
func TestHTTPEmptyQueryValueRefused(t *testing.T) {
	a := startAPI(t)
	for _, rt := range paramRoutes {
		for _, p := range rt.params {
			for _, q := range []string{p + "=", p} {
				t.Run(rt.method+" "+rt.path+"?"+q, func(t *testing.T) {
					resp, body := a.do(rt.method, rt.path+"?"+q, nil)
					e := wantError(t, resp, body, http.StatusBadRequest, "bad_request", 19)
					want := fmt.Sprintf("query parameter %q has no value", p)
					if !strings.Contains(e.Message, want) {
						t.Fatalf("message %q lacks %q", e.Message, want)
					}
				})
			}
		}
	}
}

// TestHTTPDocumentedQueryParametersAccepted: every route still takes each parameter
// docs/HTTP.md gives it, all at once, and an empty query or a lone '?' or '&'.
func TestHTTPDocumentedQueryParametersAccepted(t *testing.T) {
	a := startAPI(t)
	want := func(method, path string, status int) *http.Response {
		t.Helper()
		resp, body := a.do(method, path, nil)
		if resp.StatusCode != status {
			t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, body, status)
		}
		return resp
	}
	want("POST", "/v1/queues/q/messages?delay=0s&ttl=1h", http.StatusCreated)
	want("POST", "/v1/queues/q/messages?", http.StatusCreated)
	want("POST", "/v1/queues/q/get?wait=1ms", http.StatusOK)
	resp := want("POST", "/v1/queues/q/reserve?wait=1ms&lease=30s", http.StatusOK)
	d := "/v1/deliveries/" + resp.Header.Get(DeliveryIDHeader)
	want("POST", d+"/touch?lease=1m", http.StatusOK)
	want("POST", d+"/nack?delay=0", http.StatusNoContent)
	resp = want("POST", "/v1/queues/q/reserve?&", http.StatusOK)
	want("POST", "/v1/deliveries/"+resp.Header.Get(DeliveryIDHeader)+"/ack?",
		http.StatusNoContent)
	want("GET", "/v1/queues/q?", http.StatusOK)
	want("GET", "/v1/queues?limit=10", http.StatusOK)
	want("DELETE", "/v1/queues/q?", http.StatusOK)
	want("GET", "/healthz?", http.StatusOK)
	want("GET", "/readyz", http.StatusOK)
	// The operators' handlers keep their own parameters.
	want("GET", "/metrics?name[]=keyq_queues", http.StatusOK)
}
