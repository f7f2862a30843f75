package resp

import (
	"bytes"
	"errors"
	"io"
	"math"

	"github.com/tidwall/redcon"
)

// readBufSize is a reader's buffer until a request needs more, and the least room
// it leaves for each read.
const readBufSize = 4 << 10

// reader splits what a client sends into commands. RESP arrays ('*' first) go to
// redcon.ReadNextCommand, which parses one in place: each argument a slice of the
// reader's buffer, in an argument slice reused from command to command, so that a
// command costs no allocation. Inline commands (redis-cli's "PING\r\n") go to
// redcon.Parse, not to ReadNextCommand, which takes a line starting with '$' for a
// Tile38 command. The reader reads through the guard, which bounds each request and
// refuses broken framing and the header numbers Redis refuses before the bytes get
// here; ReadNextCommand checks the framing again, with the texts of redcon's reader.
// Without a guard (in tests), checkHeaders checks the header numbers first
// (FuzzReaderAgreesWithRedcon). As Redis, the reader skips a request of no elements
// ("*0", "*-1") and an empty inline line, where redcon's reader refuses the first.
//
// redcon's Reader is what the profile of redis-benchmark -P 16 blamed: it copied
// every command and allocated its argument slice and each batch's slice, about 2.3
// allocations per command and with the collector they caused a quarter of the
// door's CPU.
type reader struct {
	rd    io.Reader // the guard
	buf   []byte
	start int      // buf[start:end] is read and not yet returned as commands
	end   int      //
	args  [][]byte // the last command's arguments, reused for the next
	err   error    // a read error that came with bytes, returned by the next fill

	// With g, the guard rd is, a request found incomplete is parsed again only
	// once the guard has seen a request end since (g.complete > waiting), so that
	// one large request sent in many pieces is not parsed anew after each piece.
	g       *guard
	waiting int64 // g.complete when next last found the buffer's request incomplete
	parses  int   // requests parsed whole or in part, for tests
}

// newReader returns a reader of the commands in rd.
func newReader(rd io.Reader) *reader {
	return &reader{rd: rd}
}

// newGuardedReader returns a reader of the commands that pass g.
func newGuardedReader(g *guard) *reader {
	return &reader{rd: g, g: g, waiting: -1}
}

// next returns the next command whose bytes have all been read, or nil when there
// is none. Its arguments point into the reader's buffer: they are valid until the
// next call to fill, and a command that keeps one longer copies it.
func (r *reader) next() ([][]byte, error) {
	for r.start < r.end {
		if r.g != nil && r.g.complete == r.waiting {
			return nil, nil // still incomplete: no request ended since
		}
		b := r.buf[r.start:r.end]
		var args [][]byte
		var n int
		var err error
		r.parses++
		if b[0] == '*' {
			args, n, err = r.parseArray(b)
		} else {
			args, n, err = parseInline(b)
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if r.g != nil {
				r.waiting = r.g.complete
			}
			return nil, nil
		}
		r.start += n
		if args != nil {
			return args, nil
		}
		// A request of no elements, or an inline line of spaces alone, is no
		// command, as in Redis.
	}
	return nil, nil
}

// fill reads more of the client's bytes: into the room after the unparsed ones,
// which it moves to the front or, when they fill the buffer, gives a buffer twice as
// large. After a big request the guard asks for a fresh buffer (errFreshReader),
// which fill makes, so that an idle connection does not keep one that large.
func (r *reader) fill() error {
	if err := r.err; err != nil {
		r.err = nil
		return err
	}
	if r.start == r.end {
		r.start, r.end = 0, 0
	}
	if len(r.buf)-r.end < readBufSize {
		r.makeRoom()
	}
	for {
		n, err := r.rd.Read(r.buf[r.end:])
		if errors.Is(err, errFreshReader) {
			if r.start == r.end { // it always is: the guard asks between requests
				r.buf = make([]byte, readBufSize)
				r.start, r.end = 0, 0
				// The arguments point into the old buffer, past their length too
				// (a longer request's), and may be as many as its request had.
				r.args = nil
			}
			continue
		}
		r.end += n
		if n > 0 && err != nil {
			r.err = err // parse these bytes first
			return nil
		}
		return err
	}
}

// makeRoom leaves at least readBufSize bytes free after the unparsed ones.
func (r *reader) makeRoom() {
	unparsed := r.end - r.start
	if len(r.buf)-unparsed >= readBufSize {
		copy(r.buf, r.buf[r.start:r.end])
	} else {
		grown := make([]byte, max(2*len(r.buf), unparsed+readBufSize))
		copy(grown, r.buf[r.start:r.end])
		r.buf = grown
	}
	r.start, r.end = 0, unparsed
}

// parseArray parses the array command at the start of b ('*' first) with redcon's
// ReadNextCommand, into the reused argument slice, and returns its arguments and its
// length in bytes; a length of 0 means it is not all there yet, and no arguments
// with a length a request of no elements, which Redis skips. Its errors are
// redcon's, with the texts of redcon's reader, or Redis' refusal of a header number.
func (r *reader) parseArray(b []byte) ([][]byte, int, error) {
	// Behind the guard every header was checked already (a number Redis takes; a
	// bulk length not negative and within the request's limit), and the second
	// walk over the headers would cost as much as the parse. Should a bug in the
	// guard let a bad length through anyway, ReadNextCommand panics on this
	// connection's goroutine, which recovers, logs it and closes only this
	// connection.
	if r.g == nil {
		if err := checkHeaders(b); err != nil {
			return nil, 0, err
		}
	}
	if len(b) > 1 && (b[1] == '-' || b[1] == '0') {
		// "*0" or "*-N", checked: ReadNextCommand would refuse the second and
		// take the first for a command without arguments.
		return nil, skipLine(b), nil
	}

	complete, args, _, rest, err := redcon.ReadNextCommand(b, r.args)
	if err != nil || !complete {
		return nil, 0, err
	}
	for i, a := range args {
		// Each argument ends where its bytes do, so that a command appending to
		// one cannot write over the next request in the buffer.
		args[i] = a[:len(a):len(a)]
	}
	r.args = args
	return args, len(b) - len(rest), nil
}

// skipLine returns the length of b's first line, '\n' included, or 0 when it has
// not all come.
func skipLine(b []byte) int {
	return bytes.IndexByte(b, '\n') + 1
}

// checkHeaders checks, for a reader without a guard, the header numbers of the
// array command at the start of b that ReadNextCommand would read, with Redis' rules
// (processMultibulkBuffer): each must be an int64 in its canonical form (redisInt),
// the element count at most math.MaxInt32 and a bulk length not negative. It also
// refuses a bulk length within 2 of math.MaxInt, which would overflow
// ReadNextCommand's index; redcon v1.6.4 would also slice out of range on a negative
// one (it tests the element count where it means the length). It returns the first
// error, or nil where a header is fine or not all there yet. A header is one only
// where the framing puts it (the same bytes can be an element's data), so this
// follows the framing as ReadNextCommand does, stops wherever it would stop, and
// leaves every other verdict to it.
func checkHeaders(b []byte) error {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	count, ok := headerNumber(b[1:i])
	if !ok || count > math.MaxInt32 {
		return errMultibulkLength
	}

	for ; count > 0; count-- {
		i++ // past the '\n' before the element
		if i >= len(b) || b[i] != '$' {
			return nil
		}
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return nil
		}
		n, ok := headerNumber(b[i+1 : i+nl])
		if !ok || n < 0 || n > math.MaxInt-2 {
			return errBulkLength
		}

		i += nl // at the header's '\n'; the data follows, then "\r\n"
		if n > int64(len(b)-i-3) || b[i+int(n)+1] != '\r' || b[i+int(n)+2] != '\n' {
			return nil
		}
		i += int(n) + 2 // at the data's '\n'
	}
	return nil
}

// headerNumber returns the number in a header line's text, the '\r' that must end
// it included, and whether Redis takes it for one.
func headerNumber(text []byte) (int64, bool) {
	if len(text) == 0 || text[len(text)-1] != '\r' {
		return 0, false
	}
	return redisInt(text[:len(text)-1])
}

// redisInt parses b as Redis' string2ll does: an int64 written as strconv.FormatInt
// writes it, with a '-' but no '+', no leading zero and no "-0".
func redisInt(b []byte) (int64, bool) {
	digits := b
	if len(b) > 0 && b[0] == '-' {
		digits = b[1:]
	}
	if len(digits) == 0 || (digits[0] == '0' && len(b) > 1) {
		return 0, false
	}
	var mag uint64
	for _, c := range digits {
		if c < '0' || c > '9' || mag > maxMagnitude/10 {
			return 0, false
		}
		mag = mag*10 + uint64(c-'0')
	}

	if len(digits) < len(b) && mag <= maxMagnitude {
		return int64(-mag), true
	}
	if len(digits) == len(b) && mag <= maxInt64 {
		return int64(mag), true
	}
	return 0, false
}

// parseInline parses the inline command on the first line of b with redcon, and
// returns its arguments (nil for a line of spaces) and the line's length; a length
// of 0 means the line is not all there yet.
func parseInline(b []byte) ([][]byte, int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, nil
	}
	text := b[:i]
	if i > 0 && b[i-1] == '\r' {
		text = b[:i-1]
	}
	if allSpaces(text) {
		return nil, i + 1, nil
	}
	cmd, err := redcon.Parse(b[:i+1])
	if err != nil {
		return nil, 0, err
	}
	return cmd.Args, i + 1, nil
}

func allSpaces(b []byte) bool {
	for _, c := range b {
		if c != ' ' {
			return false
		}
	}
	return true
}
