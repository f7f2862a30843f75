package httpapi

import (
	"net/http"
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
