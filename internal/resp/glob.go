package resp

// globMatch reports whether key matches pattern as Redis' glob-style patterns do
// (KEYS, SCAN MATCH, CONFIG GET): '*' matches any run of bytes, '?' any one byte,
// "[...]" one byte of a set ("[abc]", "[a-z]", "[^a]" for any byte but those), and
// '\' makes the next byte literal, outside sets and in them. Bytes are compared, not
// runes, as Redis does; an unclosed '[' takes the rest of the pattern as its set.
//
// It keeps only the last '*' to resume from. That is exact for these patterns, since
// every other element matches exactly one byte, and bounds the work at
// len(key)*len(pattern) steps, so no pattern can stall a connection.
func globMatch(key, pattern string) bool {
	k, p := 0, 0
	starP, starK := -1, 0 // the pattern after the last '*', and the key byte it resumes at
	for k < len(key) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starK = p, k
				continue
			default:
				if n, ok := matchOne(key[k], pattern[p:]); ok {
					k++
					p += n
					continue
				}
			}
		}

		// A mismatch: let the last '*' take one more byte, or fail without one.
		if starP < 0 {
			return false
		}
		starK++
		k, p = starK, starP
	}

	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchOne matches c against the element at the start of pat, which is not '*', and
// returns the element's length in pat.
func matchOne(c byte, pat string) (n int, ok bool) {
	switch pat[0] {
	case '?':
		return 1, true
	case '[':
		return matchSet(c, pat)
	case '\\':
		if len(pat) >= 2 {
			return 2, pat[1] == c
		}
	}
	return 1, pat[0] == c
}

// matchSet matches c against the set "[...]" at the start of pat and returns the
// set's length in pat, its closing ']' included when there is one.
func matchSet(c byte, pat string) (n int, ok bool) {
	i := 1
	negate := i < len(pat) && pat[i] == '^'
	if negate {
		i++
	}

	found := false
	for i < len(pat) && pat[i] != ']' {
		switch {
		case pat[i] == '\\' && i+1 < len(pat):
			found = found || pat[i+1] == c
			i += 2
		case i+2 < len(pat) && pat[i+1] == '-':
			lo, hi := pat[i], pat[i+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			found = found || (lo <= c && c <= hi)
			i += 3
		default:
			found = found || pat[i] == c
			i++
		}
	}
	if i < len(pat) {
		i++ // the closing ']'
	}
	return i, found != negate
}
