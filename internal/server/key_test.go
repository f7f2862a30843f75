package server_test

import (
	"fmt"
	"testing"

	"github.com/keyq/keyq/internal/testutil"
)

// TestServerKeysAlternateOnOneConnection puts to and takes from queues whose names
// alternate and share prefixes, on one connection: the reader reuses the previous
// request's key string only when the key is the same.
func TestServerKeysAlternateOnOneConnection(t *testing.T) {
	s := testutil.StartServer(t)
	c := testutil.Dial(t, s.Addr)

	keys := []string{"a", "ab", "a", "a", "b", "ab", "abc", "b"}
	for i, key := range keys {
		put(t, c, uint32(i), key, fmt.Appendf(nil, "%s-%d", key, i))
	}
	for i, key := range keys {
		if n := length(t, c, uint32(100+i), key); n == 0 {
			t.Fatalf("len(%q) = 0 after puts", key)
		}
	}
	for i, key := range keys {
		msg, ok := get(t, c, uint32(200+i), key)
		if !ok {
			t.Fatalf("get %q: empty", key)
		}
		if got := string(msg[:len(key)+1]); got != key+"-" {
			t.Fatalf("get %q = %q, want a message put to %q", key, msg, key)
		}
	}
}
