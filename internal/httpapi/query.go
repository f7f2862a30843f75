package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// strictQuery refuses a request whose query string is malformed (a bad % escape, a
// ';' separator, a parameter given twice) with 400 naming the parameter, so that a
// handler never acts on a query that url.Values silently dropped part of.
func strictQuery(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkQuery(r.URL.RawQuery); err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkQuery parses raw as a query string and reports the first parameter it cannot
// take as it is.
func checkQuery(raw string) error {
	seen := make(map[string]bool)
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		key, rawValue, err := splitParam(part)
		if err != nil {
			return err
		}
		if strings.Contains(part, ";") {
			return fmt.Errorf("%w: query parameter %q holds a ';': separate parameters "+
				"with '&' and escape a ';' in a value as %%3B", errBadRequest, key)
		}
		if _, err := url.QueryUnescape(rawValue); err != nil {
			return fmt.Errorf("%w: query parameter %q is malformed: %w",
				errBadRequest, key, err)
		}
		if seen[key] {
			return fmt.Errorf("%w: query parameter %q is given more than once",
				errBadRequest, key)
		}
		seen[key] = true
	}
	return nil
}

// splitParam splits one "key=value" part of a query string into its unescaped key
// and its value as sent.
func splitParam(part string) (key, rawValue string, err error) {
	rawKey, rawValue, _ := strings.Cut(part, "=")
	if key, err = url.QueryUnescape(rawKey); err != nil {
		return "", "", fmt.Errorf("%w: query parameter %q is malformed: %w",
			errBadRequest, rawKey, err)
	}
	return key, rawValue, nil
}

// takes wraps the handler of a route that takes the query parameters params (none if
// empty): one it does not take, or one with no value, is refused with 400 naming it and
// those the route takes, as the native protocol refuses an unknown option. A misspelt
// ?dealy=10s must not put a message for now, nor ?wait= mean no wait by accident.
// strictQuery has refused malformed and repeated parameters before.
func (s *Server) takes(h http.HandlerFunc, params ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkParams(r.URL.RawQuery, r.Pattern, params); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	})
}

// checkParams reports the first parameter of the query raw that the route pattern does
// not take, or that has no value.
func checkParams(raw, pattern string, params []string) error {
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		key, rawValue, err := splitParam(part)
		if err != nil {
			return err
		}
		if !slices.Contains(params, key) {
			takes := "no query parameters"
			if len(params) > 0 {
				takes = "only " + strings.Join(params, ", ")
			}
			return fmt.Errorf("%w: unknown query parameter %q: %s takes %s",
				errBadRequest, key, pattern, takes)
		}
		if rawValue == "" {
			return fmt.Errorf("%w: query parameter %q has no value", errBadRequest, key)
		}
	}
	return nil
}

// parseDuration reads the query duration name: a Go duration ("1.5s", "250ms") or a
// number of seconds ("5", "0.5"); empty (not given: takes refused an empty value) is 0.
// A value that is neither is malformed; a negative one, or one over limit (however
// large, even past what time.Duration holds), is refused naming the limit. A positive
// value never rounds to 0.
func parseDuration(name, v string, limit time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	secs, err := durationSeconds(v)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%w: %s %q is not a duration: use a Go duration such as "+
			"1.5s or a number of seconds", errBadRequest, name, v)
	case secs < 0:
		return 0, fmt.Errorf("%w: %s %q is negative", errBadRequest, name, v)
	case secs > limit.Seconds():
		return 0, fmt.Errorf("%w: %s %q is over the limit of %s",
			errBadRequest, name, v, limitText(limit))
	}
	d := time.Duration(math.Ceil(secs * float64(time.Second)))
	return min(d, limit), nil
}

// durationSeconds reads v as a Go duration or a number of seconds, in seconds, as a
// float so that no value overflows: "1e10", "Inf" and "9999999999h" come out huge, not
// wrapped. NaN is an error.
func durationSeconds(v string) (float64, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return d.Seconds(), nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if math.IsNaN(secs) {
			return 0, fmt.Errorf("%q is not a number", v)
		}
		return secs, nil
	}
	return goDurationSeconds(v)
}

// unitSeconds are the units of a Go duration, in seconds.
var unitSeconds = map[string]float64{
	"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3,
	"s": 1, "m": 60, "h": 3600,
}

// goDurationSeconds reads a Go duration that time.ParseDuration refused, which it
// does for a well-formed one too long for time.Duration, in seconds.
func goDurationSeconds(v string) (float64, error) {
	rest, sign := v, 1.0
	if r, ok := strings.CutPrefix(rest, "-"); ok {
		rest, sign = r, -1
	} else {
		rest = strings.TrimPrefix(rest, "+")
	}
	if rest == "" {
		return 0, fmt.Errorf("%q is not a duration", v)
	}
	var total float64
	for rest != "" {
		n := strings.IndexFunc(rest, func(r rune) bool { return !isNumberRune(r) })
		if n <= 0 {
			return 0, fmt.Errorf("%q is not a duration", v)
		}
		num, err := strconv.ParseFloat(rest[:n], 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration", v)
		}
		rest = rest[n:]
		u := strings.IndexFunc(rest, isNumberRune)
		if u < 0 {
			u = len(rest)
		}
		scale, ok := unitSeconds[rest[:u]]
		if !ok {
			return 0, fmt.Errorf("%q is not a duration", v)
		}
		total += num * scale
		rest = rest[u:]
	}
	return sign * total, nil
}

func isNumberRune(r rune) bool { return r == '.' || r >= '0' && r <= '9' }

// limitText names a limit for an error: "100 years" for maxDuration, else Go's form.
func limitText(limit time.Duration) string {
	if limit == maxDuration {
		return "100 years"
	}
	return limit.String()
}
