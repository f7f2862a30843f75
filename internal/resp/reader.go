package resp

import (
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/tidwall/redcon"
)

// readBufSize is a reader's buffer until a request needs more, and the least room
// it leaves for each read.
const readBufSize = 4 << 10

// reader splits what a client sends into commands. It parses RESP arrays of bulk
// strings in place, each argument a slice of its buffer and the argument slice
// reused, so that a command costs no allocation; inline commands (redis-cli's
// "PING\r\n") go to redcon.Parse. It reads through the guard, which bounds each
// request and refuses broken framing before the bytes get here; the reader checks
// the framing again as redcon's reader does, with its errors, so that a bug in one
// cannot make the other read out of bounds (FuzzReaderAgreesWithRedcon).
//
// redcon's own reader is what the profile of redis-benchmark -P 16 blamed: it
// copied every command and allocated its argument slice and each batch's slice,
// about 2.3 allocations per command and with the collector they caused a quarter
// of the door's CPU.
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
		// An inline line of spaces alone is no command, as in redcon.
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
				clear(r.args) // they point into the old buffer
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

// parseArray parses the array command at the start of b ('*' first) and returns its
// arguments and its length in bytes; a length of 0 means it is not all there yet.
// Its checks and their order are redcon's, and so are its errors.
func (r *reader) parseArray(b []byte) ([][]byte, int, error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, 0, nil
	}
	if b[i-1] != '\r' {
		return nil, 0, errMultibulkLength
	}
	count, ok := atoi(b[1 : i-1])
	if !ok || count <= 0 {
		return nil, 0, errMultibulkLength
	}

	args := r.args[:0]
	for range count {
		i++
		if i >= len(b) {
			return nil, 0, nil
		}
		if b[i] != '$' {
			return nil, 0, &protocolError{text: "expected '$', got '" + string(rune(b[i])) + "'"}
		}
		head := i
		nl := bytes.IndexByte(b[i:], '\n')
		if nl < 0 {
			return nil, 0, nil
		}
		i += nl
		if b[i-1] != '\r' {
			return nil, 0, errBulkLength
		}
		size, ok := atoi(b[head+1 : i-1])
		if !ok || size < 0 {
			return nil, 0, errBulkLength
		}
		if size >= len(b)-i-2 { // i+size+2 >= len(b), without overflow
			return nil, 0, nil
		}
		if b[i+size+1] != '\r' || b[i+size+2] != '\n' {
			return nil, 0, errBulkLength
		}
		args = append(args, b[i+1:i+1+size:i+1+size])
		i += size + 2
	}
	r.args = args
	return args, i + 1, nil
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

// atoi parses b as strconv.Atoi does, without allocating for plain digits.
func atoi(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return atoiSlow(b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return atoiSlow(b)
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func atoiSlow(b []byte) (int, bool) {
	n, err := strconv.Atoi(string(b))
	return n, err == nil
}
