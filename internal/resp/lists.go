package resp

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/keyq/keyq/internal/broker"
)

func listCommands() []command {
	write := []string{"write", "denyoom", "fast"}
	pop := []string{"write", "fast"}
	blocking := []string{"write", "blocking"}
	read := []string{"readonly"}
	return []command{
		listCmd("lpush", -3, write, 1, 1, "1.0.0", "Prepends one or more elements to a list.",
			pushHandler(broker.Front, false)),
		listCmd("rpush", -3, write, 1, 1, "1.0.0", "Appends one or more elements to a list.",
			pushHandler(broker.Back, false)),
		listCmd("lpushx", -3, write, 1, 1, "2.2.0",
			"Prepends elements to a list only when the list exists.",
			pushHandler(broker.Front, true)),
		listCmd("rpushx", -3, write, 1, 1, "2.2.0",
			"Appends elements to a list only when the list exists.",
			pushHandler(broker.Back, true)),
		listCmd("lpop", -2, pop, 1, 1, "1.0.0",
			"Returns the first elements in a list after removing them.",
			popHandler(broker.Front)),
		listCmd("rpop", -2, pop, 1, 1, "1.0.0",
			"Returns and removes the last elements of a list.", popHandler(broker.Back)),
		listCmd("llen", 2, []string{"readonly", "fast"}, 1, 1, "1.0.0",
			"Returns the length of a list.", handleLLen),
		listCmd("lindex", 3, read, 1, 1, "1.0.0",
			"Returns an element from a list by its index.", handleLIndex),
		listCmd("lrange", 4, read, 1, 1, "1.0.0",
			"Returns a range of elements from a list.", handleLRange),
		listCmd("lrem", 4, []string{"write"}, 1, 1, "1.0.0",
			"Removes elements from a list.", handleLRem),
		listCmd("blpop", -3, blocking, 1, -2, "2.0.0",
			"Removes and returns the first element in a list, or blocks until one is "+
				"available.", blockingPopHandler(broker.Front)),
		listCmd("brpop", -3, blocking, 1, -2, "2.0.0",
			"Removes and returns the last element in a list, or blocks until one is "+
				"available.", blockingPopHandler(broker.Back)),
		listCmd("lmpop", -4, pop, 0, 0, "7.0.0",
			"Returns multiple elements from a list after removing them.", handleLMPop),
		listCmd("blmpop", -5, blocking, 0, 0, "7.0.0",
			"Pops elements from a list, or blocks until one is available.", handleBLMPop),
		listCmd("lmove", 5, write, 1, 2, "6.2.0",
			"Returns an element after popping it from one list and pushing it to another.",
			handleLMove),
		listCmd("blmove", 6, append(blocking, "denyoom"), 1, 2, "6.2.0",
			"Pops an element from a list, pushes it to another list and returns it; "+
				"blocks until an element is available.", handleBLMove),
		listCmd("rpoplpush", 3, write, 1, 2, "1.2.0",
			"Returns the last element of a list after removing and pushing it to "+
				"another list.", handleRPopLPush),
		listCmd("brpoplpush", 4, append(blocking, "denyoom"), 1, 2, "2.2.0",
			"Pops an element from a list, pushes it to another list and returns it; "+
				"blocks until an element is available.", handleBRPopLPush),
	}
}

func listCmd(
	name string, arity int, flags []string, first, last int, since, summary string,
	run func(*conn, [][]byte),
) command {
	step := 1
	if first == 0 {
		step = 0
	}
	return command{name: name, arity: arity, flags: flags, firstKey: first, lastKey: last,
		keyStep: step, group: "list", since: since, summary: summary, run: run}
}

// key returns arg as a string, the previous command's string when the key is the
// same, so that a pipeline working one list does not allocate a key per command.
func (c *conn) key(arg []byte) string {
	if string(arg) != c.lastKey {
		c.lastKey = string(arg)
	}
	return c.lastKey
}

func validKey(key []byte) error { return broker.ValidateKey(string(key)) }

func pushHandler(at broker.End, ifExists bool) func(*conn, [][]byte) {
	return func(c *conn, args [][]byte) {
		n, err := c.s.broker.Push(c.ctx, c.key(args[1]), args[2:], at, ifExists)
		if err != nil {
			c.writeBrokerError(err)
			return
		}
		c.writeInt(int64(n))
	}
}

func popHandler(from broker.End) func(*conn, [][]byte) {
	return func(c *conn, args [][]byte) {
		key := c.key(args[1])
		if len(args) > 3 {
			c.writeError("ERR syntax error")
			return
		}
		if len(args) == 2 {
			c.popOne(key, from)
			return
		}

		count, ok := c.parseCount(args[2])
		if !ok {
			return
		}
		c.popCount(key, count, from)
	}
}

// popOne answers LPOP and RPOP without a count: one message or null. It takes
// through Get and PopBack rather than PopN, which builds a slice for its one message.
func (c *conn) popOne(key string, from broker.End) {
	var msg broker.Message
	var err error
	if from == broker.Back {
		msg, err = c.s.broker.PopBack(c.ctx, key)
	} else {
		msg, err = c.s.broker.Get(c.ctx, key, 0)
	}
	switch {
	case errors.Is(err, broker.ErrEmpty):
		c.writeNull()
	case err != nil:
		c.writeBrokerError(err)
	default:
		c.writeMessage(&msg)
	}
}

// popCount answers LPOP and RPOP with a count: an array, or a null array when the
// key does not exist.
func (c *conn) popCount(key string, count int, from broker.End) {
	if count == 0 {
		ok, err := c.s.broker.Exists(key)
		switch {
		case err != nil:
			c.writeBrokerError(err)
		case ok:
			c.writeArray(0)
		default:
			c.writeNullArray()
		}
		return
	}
	msgs, err := c.s.broker.PopN(c.ctx, key, count, from)
	switch {
	case errors.Is(err, broker.ErrEmpty):
		c.writeNullArray()
	case err != nil && len(msgs) == 0:
		c.writeBrokerError(err)
	default:
		c.writeMessages(msgs)
	}
}

// writeMessages writes msgs as an array of bulk strings, see writeMessage.
func (c *conn) writeMessages(msgs []broker.Message) {
	c.writeArray(len(msgs))
	for i := range msgs {
		c.writeMessage(&msgs[i])
	}
}

// writeMessage writes m's payload as a bulk string, copying it into the replies,
// and gives its buffer back to the broker for a later put (Message.Release).
func (c *conn) writeMessage(m *broker.Message) {
	c.writeBulk(m.Payload)
	m.Release()
}

func handleLLen(c *conn, args [][]byte) {
	n, err := c.s.broker.Len(c.key(args[1]))
	if err != nil {
		c.writeBrokerError(err)
		return
	}
	c.writeInt(int64(n))
}

func handleLIndex(c *conn, args [][]byte) {
	index, ok := c.parseInt(args[2])
	if !ok {
		return
	}
	m, err := c.s.broker.Peek(string(args[1]), clampInt(index))
	switch {
	case errors.Is(err, broker.ErrEmpty):
		c.writeNull()
	case err != nil:
		c.writeBrokerError(err)
	default:
		c.writeMessage(&m)
	}
}

func handleLRange(c *conn, args [][]byte) {
	start, ok := c.parseInt(args[2])
	if !ok {
		return
	}
	stop, ok := c.parseInt(args[3])
	if !ok {
		return
	}
	msgs, err := c.s.broker.RangeAppend(c.ranged[:0], c.key(args[1]), clampInt(start),
		clampInt(stop))
	if err != nil {
		clear(msgs)
		c.writeBrokerError(err)
		return
	}
	c.writeMessages(msgs)
	clear(msgs) // drops the payloads for the collector
	if cap(msgs) <= maxKeptRange {
		c.ranged = msgs[:0]
	}
}

// maxKeptRange is the most messages of an LRANGE whose slice a connection keeps for
// the next one; a larger range's slice goes to the collector.
const maxKeptRange = 1024

// clampInt keeps an index within int on every platform; the broker clamps further.
func clampInt(n int64) int {
	return int(max(min(n, math.MaxInt32), math.MinInt32))
}

func handleLRem(c *conn, args [][]byte) {
	count, ok := c.parseInt(args[2])
	if !ok {
		return
	}
	n, err := c.s.broker.Remove(c.ctx, string(args[1]), clampInt(count), args[3])
	if err != nil {
		c.writeBrokerError(err)
		return
	}
	c.writeInt(int64(n))
}

// parseTimeout reads a blocking command's timeout, in seconds, with Redis' rules: a
// float, 0 for no limit, never negative. A positive timeout below a millisecond
// waits one millisecond rather than becoming 0 (C05); a timeout whose deadline would
// overflow is refused, and one beyond time.Duration's range (292 years) waits
// forever, so nothing huge ever wraps around into an early return (C06).
func parseTimeout(arg []byte) (time.Duration, string) {
	secs, err := strconv.ParseFloat(string(arg), 64)
	if math.IsNaN(secs) || (err != nil && !math.IsInf(secs, 0)) {
		return 0, "ERR timeout is not a float or out of range"
	}
	if secs < 0 {
		return 0, "ERR timeout is negative"
	}
	ms := math.Ceil(secs * 1000)
	if ms >= float64(math.MaxInt64-time.Now().UnixMilli()) {
		return 0, "ERR timeout is out of range"
	}
	if ms == 0 || ms >= float64(math.MaxInt64/int64(time.Millisecond)) {
		return broker.Forever, ""
	}
	return time.Duration(ms) * time.Millisecond, ""
}

// parseWait reads a timeout argument, replying on failure. Inside EXEC nothing
// blocks, as in Redis.
func (c *conn) parseWait(arg []byte) (time.Duration, bool) {
	wait, msg := parseTimeout(arg)
	if msg != "" {
		c.writeError(msg)
		return 0, false
	}
	if c.inExec {
		wait = 0
	}
	return wait, true
}

// blocking runs fn, which may wait, after sending the replies gathered so far, and
// counts the connection as blocked meanwhile. A watcher reads on while fn waits, so
// that the client going ends the wait (C01).
func (c *conn) blocking(wait time.Duration, fn func()) {
	if wait == 0 {
		fn()
		return
	}
	c.flush()
	c.s.blocked.Add(1)
	defer c.s.blocked.Add(-1)
	stop := c.src.watch()
	defer stop()
	fn()
}

func blockingPopHandler(from broker.End) func(*conn, [][]byte) {
	return func(c *conn, args [][]byte) {
		wait, ok := c.parseWait(args[len(args)-1])
		if !ok {
			return
		}
		keys := make([]string, 0, len(args)-2)
		for _, k := range args[1 : len(args)-1] {
			keys = append(keys, string(k))
		}

		var m broker.Message
		var err error
		c.blocking(wait, func() {
			if from == broker.Back {
				m, err = c.s.broker.PopBackAny(c.ctx, keys, wait)
			} else {
				m, err = c.s.broker.GetAny(c.ctx, keys, wait)
			}
		})
		switch {
		case errors.Is(err, broker.ErrEmpty):
			c.writeNullArray()
		case err != nil:
			c.writeBrokerError(err)
		default:
			c.writeArray(2)
			c.writeBulkString(m.Queue)
			c.writeMessage(&m)
		}
	}
}

func parseEnd(arg []byte) (broker.End, bool) {
	switch strings.ToLower(string(arg)) {
	case "left":
		return broker.Front, true
	case "right":
		return broker.Back, true
	}
	return 0, false
}

// mpopArgs is what LMPOP and BLMPOP ask for: numkeys keys... LEFT|RIGHT [COUNT n].
type mpopArgs struct {
	keys  []string
	from  broker.End
	count int
}

func (c *conn) parseMPop(args [][]byte) (mpopArgs, bool) {
	n, err := strconv.ParseInt(string(args[0]), 10, 64)
	if err != nil || n <= 0 {
		c.writeError("ERR numkeys should be greater than 0")
		return mpopArgs{}, false
	}
	if n > int64(len(args)-2) {
		c.writeError("ERR syntax error")
		return mpopArgs{}, false
	}
	ma := mpopArgs{count: 1}
	for _, k := range args[1 : 1+n] {
		ma.keys = append(ma.keys, string(k))
	}
	rest := args[1+n:]
	from, ok := parseEnd(rest[0])
	if !ok {
		c.writeError("ERR syntax error")
		return mpopArgs{}, false
	}
	ma.from = from
	rest = rest[1:]
	if len(rest) == 0 {
		return ma, true
	}
	if len(rest) != 2 || !strings.EqualFold(string(rest[0]), "count") {
		c.writeError("ERR syntax error")
		return mpopArgs{}, false
	}
	count, err := strconv.ParseInt(string(rest[1]), 10, 64)
	if err != nil || count <= 0 {
		c.writeError("ERR count should be greater than 0")
		return mpopArgs{}, false
	}
	ma.count = int(min(count, 1<<31))
	return ma, true
}

func handleLMPop(c *conn, args [][]byte) {
	if ma, ok := c.parseMPop(args[1:]); ok {
		c.mpop(ma, 0)
	}
}

func handleBLMPop(c *conn, args [][]byte) {
	wait, ok := c.parseWait(args[1])
	if !ok {
		return
	}
	if ma, ok := c.parseMPop(args[2:]); ok {
		c.blocking(wait, func() { c.mpop(ma, wait) })
	}
}

func (c *conn) mpop(ma mpopArgs, wait time.Duration) {
	key, msgs, err := c.s.broker.PopAnyN(c.ctx, ma.keys, ma.count, ma.from, wait)
	switch {
	case errors.Is(err, broker.ErrEmpty):
		c.writeNullArray()
	case err != nil && len(msgs) == 0:
		c.writeBrokerError(err)
	default:
		c.writeArray(2)
		c.writeBulkString(key)
		c.writeMessages(msgs)
	}
}

func handleLMove(c *conn, args [][]byte) {
	from, okFrom := parseEnd(args[3])
	to, okTo := parseEnd(args[4])
	if !okFrom || !okTo {
		c.writeError("ERR syntax error")
		return
	}
	c.move(args[1], args[2], from, to, 0)
}

func handleRPopLPush(c *conn, args [][]byte) {
	c.move(args[1], args[2], broker.Back, broker.Front, 0)
}

func handleBLMove(c *conn, args [][]byte) {
	from, okFrom := parseEnd(args[3])
	to, okTo := parseEnd(args[4])
	if !okFrom || !okTo {
		c.writeError("ERR syntax error")
		return
	}
	if wait, ok := c.parseWait(args[5]); ok {
		c.blocking(wait, func() { c.move(args[1], args[2], from, to, wait) })
	}
}

func handleBRPopLPush(c *conn, args [][]byte) {
	if wait, ok := c.parseWait(args[3]); ok {
		c.blocking(wait, func() { c.move(args[1], args[2], broker.Back, broker.Front, wait) })
	}
}

// move answers LMOVE and its kin: the element, or a null when the source is empty
// (a null array once a blocking move times out, as Redis replies).
func (c *conn) move(src, dst []byte, from, to broker.End, wait time.Duration) {
	m, err := c.s.broker.BlockingMove(c.ctx, string(src), string(dst), from, to, wait)
	switch {
	case errors.Is(err, broker.ErrEmpty) && wait > 0:
		c.writeNullArray()
	case errors.Is(err, broker.ErrEmpty):
		c.writeNull()
	case err != nil:
		c.writeBrokerError(err)
	default:
		c.writeMessage(&m)
	}
}
