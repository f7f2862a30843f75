package resp

import (
	"cmp"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
)

func keyCommands() []command {
	return []command{
		{name: "exists", arity: -2, flags: []string{"readonly", "fast"}, firstKey: 1,
			lastKey: -1, keyStep: 1, group: "generic", since: "1.0.0",
			summary: "Determines whether one or more keys exist.", run: handleExists},
		{name: "del", arity: -2, flags: []string{"write"}, firstKey: 1, lastKey: -1,
			keyStep: 1, group: "generic", since: "1.0.0",
			summary: "Deletes one or more keys.", run: handleDel},
		{name: "unlink", arity: -2, flags: []string{"write", "fast"}, firstKey: 1,
			lastKey: -1, keyStep: 1, group: "generic", since: "4.0.0",
			summary: "Deletes one or more keys.", run: handleDel},
		{name: "type", arity: 2, flags: []string{"readonly", "fast"}, firstKey: 1,
			lastKey: 1, keyStep: 1, group: "generic", since: "1.0.0",
			summary: "Determines the type of value stored at a key.", run: handleType},
		{name: "keys", arity: 2, flags: []string{"readonly"}, group: "generic",
			since: "1.0.0", summary: "Returns all key names that match a pattern.",
			run: handleKeys},
		{name: "scan", arity: -2, flags: []string{"readonly"}, group: "generic",
			since: "2.8.0", summary: "Iterates over the key names in the database.",
			run: handleScan},
		{name: "dbsize", arity: 1, flags: []string{"readonly", "fast"}, group: "server",
			since: "1.0.0", summary: "Returns the number of keys in the database.",
			run: handleDBSize},
	}
}

func handleExists(c *conn, args [][]byte) {
	var n int64
	for _, key := range args[1:] {
		ok, err := c.s.broker.Exists(string(key))
		if err != nil {
			c.writeBrokerError(err)
			return
		}
		if ok {
			n++
		}
	}
	c.writeInt(n)
}

func handleDel(c *conn, args [][]byte) {
	for _, key := range args[1:] {
		if err := validKey(key); err != nil {
			c.writeBrokerError(err)
			return
		}
	}
	var n int64
	for _, key := range args[1:] {
		removed, err := c.s.broker.Delete(c.ctx, string(key))
		if err != nil {
			c.writeBrokerError(err)
			return
		}
		if removed > 0 {
			n++
		}
	}
	c.writeInt(n)
}

func handleType(c *conn, args [][]byte) {
	ok, err := c.s.broker.Exists(string(args[1]))
	switch {
	case err != nil:
		c.writeBrokerError(err)
	case ok:
		c.writeSimple("list")
	default:
		c.writeSimple("none")
	}
}

// liveKeys returns the names of the queues that hold messages, sorted.
func (s *Server) liveKeys() []string {
	names := s.broker.QueueNames()
	live := names[:0]
	for _, name := range names {
		if ok, _ := s.broker.Exists(name); ok {
			live = append(live, name)
		}
	}
	return live
}

func handleKeys(c *conn, args [][]byte) {
	pattern := string(args[1])
	var keys []string
	for _, name := range c.s.liveKeys() {
		if globMatch(name, pattern) {
			keys = append(keys, name)
		}
	}
	c.writeArray(len(keys))
	for _, k := range keys {
		c.writeBulkString(k)
	}
}

func handleDBSize(c *conn, _ [][]byte) {
	c.writeInt(int64(len(c.s.liveKeys())))
}

// scanPos places a key in SCAN's iteration order: by a hash of its name, so that a
// cursor (the position to resume from) stays valid however keys come and go, and
// every key present for the whole iteration is returned. Positions start at 1, since
// cursor 0 means both "start" and "done".
func scanPos(key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return h.Sum64()>>1 + 1
}

type scanArgs struct {
	cursor  uint64
	pattern string
	count   int
	typ     string
}

func (c *conn) parseScan(args [][]byte) (scanArgs, bool) {
	cursor, err := strconv.ParseUint(string(args[1]), 10, 64)
	if err != nil {
		c.writeError("ERR invalid cursor")
		return scanArgs{}, false
	}
	sa := scanArgs{cursor: cursor, count: 10}
	rest := args[2:]
	for len(rest) > 0 {
		if len(rest) < 2 {
			c.writeError("ERR syntax error")
			return scanArgs{}, false
		}
		switch opt := strings.ToLower(string(rest[0])); opt {
		case "match":
			sa.pattern = string(rest[1])
		case "count":
			n, ok := c.parseInt(rest[1])
			if !ok {
				return scanArgs{}, false
			}
			if n < 1 {
				c.writeError("ERR syntax error")
				return scanArgs{}, false
			}
			sa.count = int(min(n, 1<<20))
		case "type":
			sa.typ = strings.ToLower(string(rest[1]))
		default:
			c.writeError("ERR syntax error")
			return scanArgs{}, false
		}
		rest = rest[2:]
	}
	return sa, true
}

func handleScan(c *conn, args [][]byte) {
	sa, ok := c.parseScan(args)
	if !ok {
		return
	}

	type posKey struct {
		pos uint64
		key string
	}
	var keys []posKey
	for _, name := range c.s.liveKeys() {
		if p := scanPos(name); p >= sa.cursor {
			keys = append(keys, posKey{p, name})
		}
	}
	slices.SortFunc(keys, func(x, y posKey) int {
		if x.pos != y.pos {
			return cmp.Compare(x.pos, y.pos)
		}
		return strings.Compare(x.key, y.key)
	})

	// Keys sharing a position are returned together, so the cursor never splits them.
	n := min(sa.count, len(keys))
	for n < len(keys) && n > 0 && keys[n].pos == keys[n-1].pos {
		n++
	}
	var next uint64
	if n < len(keys) {
		next = keys[n].pos
	}

	var out []string
	for _, pk := range keys[:n] {
		if sa.typ != "" && sa.typ != "list" {
			continue
		}
		if sa.pattern == "" || globMatch(pk.key, sa.pattern) {
			out = append(out, pk.key)
		}
	}
	c.writeArray(2)
	c.writeBulkString(strconv.FormatUint(next, 10))
	c.writeArray(len(out))
	for _, k := range out {
		c.writeBulkString(k)
	}
}
