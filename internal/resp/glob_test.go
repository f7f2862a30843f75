package resp

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	cases := []struct {
		key, pattern string
		want         bool
	}{
		{"", "", true},
		{"", "*", true},
		{"", "?", false},
		{"a", "", false},
		{"abc", "*", true},
		{"abc", "a*", true},
		{"abc", "*c", true},
		{"abc", "a*c", true},
		{"abc", "a**c", true},
		{"abc", "a*b", false},
		{"abc", "?bc", true},
		{"abc", "??", false},
		{"user:1:name", "user:*:name", true},
		{"user:1:nam", "user:*:name", false},
		{"aXbXc", "*X*X*", true},
		{"q1", "q[12]", true},
		{"q3", "q[12]", false},
		{"q3", "q[^12]", true},
		{"q1", "q[^12]", false},
		{"qb", "q[a-c]", true},
		{"qb", "q[c-a]", true}, // a reversed range is read as its reverse
		{"qd", "q[a-c]", false},
		{"q-", "q[a\\-]", true},
		{"q]", "q[\\]]", true},
		{"q]", "q[]]", false}, // "[]" is an empty set; the ']' after it is literal
		{"q]]", "q[]]", false},
		{"qx", "q[", false},
		{"qa", "q[abc", true}, // an unclosed set runs to the end
		{"q*", "q\\*", true},
		{"qa", "q\\*", false},
		{"q?", "q\\?", true},
		{"q\\", "q\\", true}, // a trailing '\' is itself
		{"a[b", "a\\[b", true},
		{"h\xc3\xa9", "h?", false}, // bytes, not runes
		{"h\xc3\xa9", "h??", true},
		{"images", "*[gs]", true},
		{"images", "*[^s]", false},
		{"maxmemory", "max*", true},
	}
	for _, c := range cases {
		if got := globMatch(c.key, c.pattern); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.key, c.pattern, got, c.want)
		}
		if got := refGlob(c.key, c.pattern); got != c.want {
			t.Errorf("refGlob(%q, %q) = %v, want %v (the test's reference is wrong)",
				c.key, c.pattern, got, c.want)
		}
	}
}

// TestGlobMatchHostilePattern matches a pattern that costs an exponential
// backtracking matcher dearly; globMatch's work stays len(key)*len(pattern).
func TestGlobMatchHostilePattern(t *testing.T) {
	key := strings.Repeat("a", 4096)
	pattern := strings.Repeat("*a", 64) + "b"
	if globMatch(key, pattern) {
		t.Fatal("matched a key without a 'b'")
	}
}

// FuzzGlobMatch checks globMatch against refGlob, a plain recursive reading of the
// same rules written separately.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"abc", "a*c"}, {"q1", "q[12]"}, {"q]", "q[\\]]"}, {"x-y", "*[a-]*"},
		{"aab", "*a?b"}, {"\\", "\\"}, {"[", "["}, {"ab", "[^b]?"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, key, pattern string) {
		if len(key) > 64 || strings.Count(pattern, "*") > 6 {
			return // keep the exponential reference quick
		}
		if got, want := globMatch(key, pattern), refGlob(key, pattern); got != want {
			t.Fatalf("globMatch(%q, %q) = %v, reference says %v", key, pattern, got, want)
		}
	})
}

// refGlob is the test's reference matcher: it tries every split at each '*'.
func refGlob(key, pat string) bool {
	if pat == "" {
		return key == ""
	}
	if pat[0] == '*' {
		for i := 0; i <= len(key); i++ {
			if refGlob(key[i:], pat[1:]) {
				return true
			}
		}
		return false
	}
	if key == "" {
		return false
	}

	n, ok := 1, false
	switch {
	case pat[0] == '?':
		ok = true
	case pat[0] == '\\' && len(pat) > 1:
		n, ok = 2, pat[1] == key[0]
	case pat[0] == '[':
		n, ok = refSet(key[0], pat)
	default:
		ok = pat[0] == key[0]
	}
	return ok && refGlob(key[1:], pat[n:])
}

// refSet reads the set at the start of pat element by element, as a list of
// single bytes and ranges, then tests c against that list.
func refSet(c byte, pat string) (int, bool) {
	body := pat[1:]
	negate := strings.HasPrefix(body, "^")
	if negate {
		body = body[1:]
	}

	type span struct{ lo, hi byte }
	var spans []span
	for len(body) > 0 && body[0] != ']' {
		switch {
		case body[0] == '\\' && len(body) > 1:
			spans = append(spans, span{body[1], body[1]})
			body = body[2:]
		case len(body) > 2 && body[1] == '-':
			lo, hi := min(body[0], body[2]), max(body[0], body[2])
			spans = append(spans, span{lo, hi})
			body = body[3:]
		default:
			spans = append(spans, span{body[0], body[0]})
			body = body[1:]
		}
	}
	used := len(pat) - len(body)
	if len(body) > 0 {
		used++ // ']'
	}

	in := false
	for _, s := range spans {
		in = in || (s.lo <= c && c <= s.hi)
	}
	return used, in != negate
}
