package resp

import (
	"fmt"
	"strconv"

	"github.com/tidwall/redcon"
)

// The reply writers append to c.out; the connection writes it out when it has no
// command left to run. RESP3 types (null, map, set, verbatim string) are written by
// hand after HELLO 3 and fall back to their RESP2 shapes before it.

func (c *conn) writeOK() { c.out = redcon.AppendOK(c.out) }

func (c *conn) writeSimple(s string) { c.out = redcon.AppendString(c.out, s) }

func (c *conn) writeInt(n int64) { c.out = redcon.AppendInt(c.out, n) }

func (c *conn) writeBulk(b []byte) { c.out = redcon.AppendBulk(c.out, b) }

func (c *conn) writeBulkString(s string) { c.out = redcon.AppendBulkString(c.out, s) }

func (c *conn) writeArray(n int) { c.out = redcon.AppendArray(c.out, n) }

// writeError writes msg, which starts with its code ("ERR", "NOPROTO"), as an error.
func (c *conn) writeError(msg string) { c.out = redcon.AppendError(c.out, msg) }

func (c *conn) writeErrorf(format string, args ...any) {
	c.writeError(fmt.Sprintf(format, args...))
}

// writeNull writes the null that stands for a missing string.
func (c *conn) writeNull() {
	if c.proto == 3 {
		c.out = append(c.out, "_\r\n"...)
		return
	}
	c.out = redcon.AppendNull(c.out)
}

// writeNullArray writes the null that stands for a missing array (a blocking pop
// that timed out, LPOP with a count on a missing key).
func (c *conn) writeNullArray() {
	if c.proto == 3 {
		c.out = append(c.out, "_\r\n"...)
		return
	}
	c.out = append(c.out, "*-1\r\n"...)
}

// writeMap writes the header of a map of n pairs; RESP2 sees a flat array.
func (c *conn) writeMap(n int) {
	if c.proto == 3 {
		c.out = append(c.out, '%')
		c.out = strconv.AppendInt(c.out, int64(n), 10)
		c.out = append(c.out, '\r', '\n')
		return
	}
	c.writeArray(2 * n)
}

// writeSet writes the header of a set of n elements; RESP2 sees an array.
func (c *conn) writeSet(n int) {
	if c.proto == 3 {
		c.out = append(c.out, '~')
		c.out = strconv.AppendInt(c.out, int64(n), 10)
		c.out = append(c.out, '\r', '\n')
		return
	}
	c.writeArray(n)
}

// writeVerbatim writes text as a verbatim string of format txt (RESP3) or a bulk
// string (RESP2), as Redis replies to INFO.
func (c *conn) writeVerbatim(text string) {
	if c.proto != 3 {
		c.writeBulkString(text)
		return
	}
	c.out = append(c.out, '=')
	c.out = strconv.AppendInt(c.out, int64(len(text)+4), 10)
	c.out = append(c.out, "\r\ntxt:"...)
	c.out = append(c.out, text...)
	c.out = append(c.out, '\r', '\n')
}
