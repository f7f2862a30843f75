package resp

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/keyq/keyq/internal/broker"
)

// command describes one Redis command keyq serves: what COMMAND reports about it
// and the handler that runs it. Arity counts the command name, as Redis does; a
// negative arity is a minimum.
type command struct {
	name     string
	arity    int
	flags    []string
	firstKey int
	lastKey  int
	keyStep  int
	group    string
	since    string
	summary  string
	run      func(c *conn, args [][]byte)
	index    int // its place among the commands, set by init: its recorder's slot
}

// commands is the table of served commands by lower-case name, filled by init
// because handlers such as COMMAND read it.
var commands map[string]*command

func init() {
	commands = make(map[string]*command)
	for _, table := range [][]command{connectionCommands(), keyCommands(), listCommands()} {
		for i := range table {
			table[i].index = len(commands)
			commands[table[i].name] = &table[i]
		}
	}
}

// execute runs one command, or queues it inside MULTI.
func (c *conn) execute(args [][]byte) {
	start := c.startTime()
	c.replyAt = len(c.out)
	cmd := c.lookup(args[0])
	if cmd == nil {
		c.unknownCommand(args)
		c.tx.fail()
		c.observe(nil, start)
		return
	}
	defer c.observe(cmd, start)
	if !arityOK(cmd.arity, len(args)) {
		c.writeErrorf("ERR wrong number of arguments for '%s' command", cmd.name)
		c.tx.fail()
		return
	}
	if c.tx != nil && !txControl[cmd.name] {
		if c.fullFor(cmd, args) {
			c.writeError(oomError)
			c.tx.fail()
			return
		}
		c.tx.queue(cmd, args)
		c.writeSimple("QUEUED")
		return
	}
	cmd.run(c, args)
}

// maxCommandName bounds the names lookupCommand lowers on the stack; no served
// command's name is longer.
const maxCommandName = 32

// lookup is lookupCommand that remembers the last name looked up as sent, since a
// pipeline tends to repeat one command.
func (c *conn) lookup(name []byte) *command {
	if c.lastCmd != nil && string(name) == string(c.lastName[:c.lastNameLen]) {
		return c.lastCmd
	}
	cmd := lookupCommand(name)
	if cmd != nil {
		c.lastCmd, c.lastNameLen = cmd, copy(c.lastName[:], name)
	}
	return cmd
}

// lookupCommand finds the command named name in any case, without allocating: the
// map lookup of a converted []byte does not copy, and a name not already lower case
// is lowered into a stack buffer.
func lookupCommand(name []byte) *command {
	if cmd := commands[string(name)]; cmd != nil {
		return cmd
	}
	if len(name) > maxCommandName {
		return nil
	}
	var buf [maxCommandName]byte
	lower := buf[:len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		lower[i] = ch
	}
	return commands[string(lower)]
}

func arityOK(arity, n int) bool {
	if arity >= 0 {
		return n == arity
	}
	return n >= -arity
}

// unknownCommand answers as Redis does, quoting the first arguments.
func (c *conn) unknownCommand(args [][]byte) {
	var b strings.Builder
	for _, a := range args[1:] {
		if b.Len() >= 128 {
			break
		}
		b.WriteString("'")
		b.WriteString(clip(string(a), 128-b.Len()))
		b.WriteString("' ")
	}
	c.writeErrorf("ERR unknown command '%s', with args beginning with: %s",
		clip(string(args[0]), 128), b.String())
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:max(n, 0)]
	}
	return s
}

// oomError answers a push over the server's memory limit as Redis answers a write
// over maxmemory under its noeviction policy.
const oomError = "OOM command not allowed when used memory > 'maxmemory'."

// writeBrokerError maps a broker error to a Redis-style error reply.
func (c *conn) writeBrokerError(err error) {
	switch {
	case errors.Is(err, broker.ErrClosed), errors.Is(err, context.Canceled) && c.s.isClosing():
		c.writeError("ERR server is shutting down")
	case c.ctx.Err() != nil:
		// The client went while its command waited; nobody reads this reply.
		c.writeError("ERR connection closed")
	case errors.Is(err, broker.ErrDiskFull):
		c.writeError("ERR " + storeText(err)) // "storage: disk full: ..."
	case errors.Is(err, broker.ErrServerFull):
		// Redis' own words for a write over maxmemory, which clients know.
		c.writeError(oomError)
	case errors.Is(err, broker.ErrInvalidKey), errors.Is(err, broker.ErrMessageTooLarge),
		errors.Is(err, broker.ErrInvalidWait):
		c.writeError("ERR " + err.Error())
	default:
		c.log.Warn("command failed", "err", err)
		c.writeError("ERR " + storeText(err))
	}
}

// storeText is err's text, or for a failure of the store what the store said: the
// record the broker was writing means nothing to a client.
func storeText(err error) string {
	var se *broker.StoreError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return err.Error()
}

// parseInt parses an integer argument as Redis does, replying on failure.
func (c *conn) parseInt(arg []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil {
		c.writeError("ERR value is not an integer or out of range")
		return 0, false
	}
	return n, true
}

// parseCount parses a COUNT-like argument that must be positive.
func (c *conn) parseCount(arg []byte) (int, bool) {
	n, err := strconv.ParseInt(string(arg), 10, 64)
	if err != nil || n < 0 {
		c.writeError("ERR value is out of range, must be positive")
		return 0, false
	}
	return int(min(n, 1<<31)), true
}

// transaction holds the commands queued between MULTI and EXEC.
type transaction struct {
	cmds   []*command
	args   [][][]byte
	failed bool // a command was refused while queueing: EXEC aborts
}

// txControl names the commands that run at once even inside MULTI.
var txControl = map[string]bool{"exec": true, "discard": true, "multi": true, "quit": true}

// queue keeps cmd and a copy of its arguments, which point into the connection's
// read buffer, for EXEC.
func (t *transaction) queue(cmd *command, args [][]byte) {
	size := 0
	for _, a := range args {
		size += len(a)
	}
	data := make([]byte, 0, size)
	kept := make([][]byte, len(args))
	for i, a := range args {
		data = append(data, a...)
		kept[i] = data[len(data)-len(a) : len(data) : len(data)]
	}
	t.cmds = append(t.cmds, cmd)
	t.args = append(t.args, kept)
}

// fullFor reports whether cmd, a push, would not fit under the server's memory
// limit now. Redis refuses a command that adds elements while over maxmemory as
// MULTI queues it, so that EXEC then discards the whole transaction instead of
// running it with some of its pushes refused; keyq does the same for its pushes
// (moves are never refused for the limit, inside MULTI or not).
func (c *conn) fullFor(cmd *command, args [][]byte) bool {
	if !pushCommands[cmd.name] || len(args) < 3 {
		return false
	}
	var size int64
	for _, v := range args[2:] {
		size += int64(len(v))
	}
	return !c.s.broker.RoomFor(string(args[1]), len(args)-2, size)
}

// pushCommands are the commands that put new messages: KEY then values.
var pushCommands = map[string]bool{"lpush": true, "rpush": true, "lpushx": true,
	"rpushx": true}

func (t *transaction) fail() {
	if t != nil {
		t.failed = true
	}
}

func handleMulti(c *conn, _ [][]byte) {
	if c.tx != nil {
		c.writeError("ERR MULTI calls can not be nested")
		return
	}
	c.tx = &transaction{}
	c.writeOK()
}

// pushedKeys returns the keys that the queued commands may push onto: the keys, by
// each command's key spec, of the commands that add elements (flagged denyoom, as
// in Redis' command table: the pushes and the moves).
func (t *transaction) pushedKeys() []string {
	var keys []string
	for i, cmd := range t.cmds {
		if !slices.Contains(cmd.flags, "denyoom") || cmd.firstKey <= 0 {
			continue
		}
		args := t.args[i]
		last := cmd.lastKey
		if last < 0 {
			last += len(args)
		}
		for k := cmd.firstKey; k <= last && k < len(args); k += max(cmd.keyStep, 1) {
			keys = append(keys, string(args[k]))
		}
	}
	return keys
}

// handleExec runs the queued commands one after the other. Blocking commands inside
// a transaction do not block, as in Redis. Clients blocked on the keys the
// transaction pushes onto are served only once it has run, each from the first of
// its keys that then holds an element (case C09), as Redis serves them; other
// clients' commands are not held back meanwhile, so EXEC is not isolated from them.
func handleExec(c *conn, _ [][]byte) {
	tx := c.tx
	if tx == nil {
		c.writeError("ERR EXEC without MULTI")
		return
	}
	c.tx = nil
	if tx.failed {
		c.writeError("EXECABORT Transaction discarded because of previous errors.")
		return
	}
	hold := c.s.broker.HoldWaiters(tx.pushedKeys())
	defer hold.Release()
	c.writeArray(len(tx.cmds))
	c.inExec = true
	for i, cmd := range tx.cmds {
		cmd.run(c, tx.args[i])
	}
	c.inExec = false
}

func handleDiscard(c *conn, _ [][]byte) {
	if c.tx == nil {
		c.writeError("ERR DISCARD without MULTI")
		return
	}
	c.tx = nil
	c.writeOK()
}
