package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"sync/atomic"
)

// Limits on one request, after Redis' (C24). Without them the connection's reader
// (like redcon's) grows its buffer for as long as a client keeps sending one request.
const (
	// maxMultibulk is the most elements one request may have.
	maxMultibulk = 1024 * 1024

	// maxInline bounds an inline request's line and a RESP header line.
	maxInline = 64 << 10

	// bulkSlack is what a bulk string may hold beyond the broker's largest message.
	bulkSlack = 64 << 10

	// DefaultMaxRequestBytes is Config.MaxRequestBytes when left zero.
	DefaultMaxRequestBytes = 64 << 20

	// bigRequest is the request size after which the connection's reader gets a
	// fresh buffer, and would otherwise keep one that large for good.
	bigRequest = 64 << 10
)

// errFreshReader ends a read at a point where the reader above the guard holds no
// byte of a request (see guard.Read): it then replaces its buffer (reader.fill), or
// redcon's reader with a new one.
var errFreshReader = errors.New("resp: fresh reader wanted")

// protocolError is a request that breaks RESP's framing or one of the limits. The
// connection answers it as redcon's own parse errors ("-ERR Protocol error: ...")
// and closes.
type protocolError struct {
	text  string
	limit bool // a limit was broken, not the framing
}

func (e *protocolError) Error() string { return "Protocol error: " + e.text }

var (
	errMultibulkLength = &protocolError{text: "invalid multibulk length"}
	errBulkLength      = &protocolError{text: "invalid bulk length"}

	errTooManyElements = &protocolError{text: "invalid multibulk length", limit: true}
	errBulkTooLong     = &protocolError{text: "invalid bulk length", limit: true}
	errCountLineLong   = &protocolError{text: "too big mbulk count string", limit: true}
	errBulkLineLong    = &protocolError{text: "too big bulk count string", limit: true}
	errInlineTooLong   = &protocolError{text: "too big inline request", limit: true}
)

// limits are the caps a guard enforces.
type limits struct {
	elements int64 // elements in one request
	bulk     int64 // bytes of one bulk string
	request  int64 // bytes of one request, headers included
	line     int64 // bytes of an inline request or a header line, CRLF excluded
	fresh    int64 // request size after which the reader is replaced (bigRequest)
}

// guardState is where a guard is in the request framing.
type guardState uint8

const (
	stateIdle     guardState = iota // between requests
	stateInline                     // in an inline request's line
	stateCount                      // in "*N\r\n"
	stateBulkHead                   // expecting the '$' of an element
	stateBulkLen                    // in "$L\r\n"
	stateBulkData                   // in an element's bytes
	stateBulkCR                     // expecting the '\r' after an element
	stateBulkLF                     // expecting the '\n' after an element
)

// guard sits between a connection and its reader (reader.go; also redcon's reader
// in the fuzz test that checks them against Redis' rules and redcon). It follows the
// request framing in the bytes that pass through, without copying them, and fails
// the read as soon as a request breaks a limit, so that no one request makes the
// reader hold more than the limits allow. It also refuses the framing errors redcon
// would refuse (with redcon's text), so that it never loses track of the framing,
// and the header numbers Redis refuses (numberLine); the bytes before an error are
// passed first and the error comes with the next read. As Redis, it lets a request
// of no elements ("*0", "*-1") pass as one that is complete, for the reader to skip.
type guard struct {
	r   io.Reader
	lim limits

	state guardState
	size  int64 // bytes of the current request so far
	elems int64 // elements still to come in the current request
	left  int64 // bytes of the current element still to come
	crOK  bool  // the byte after an element's data was '\r'

	num numberLine // the header line being read

	err error // sticky: once set, every read returns it
	big bool  // a request over lim.fresh passed since the last errFreshReader

	// complete counts the requests whose last byte has passed, so that the reader
	// need not parse a request again before more of it came (see reader.next).
	complete int64

	passed atomic.Int64 // bytes passed on, read by CLIENT INFO and tests
}

func newGuard(r io.Reader, lim limits) *guard {
	return &guard{r: r, lim: lim}
}

// Read reads from the connection and passes on the bytes that keep every request
// within the limits.
func (g *guard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	// The reader asks for bytes only when it holds no whole request (redcon's bufio
	// also only when empty): between requests it holds no byte and can start afresh.
	if g.big && g.state == stateIdle {
		g.big = false
		return 0, errFreshReader
	}
	n, err := g.r.Read(p)
	ok, perr := g.scan(p[:n])
	if perr != nil {
		g.err = perr
		if ok > 0 {
			g.passed.Add(int64(ok))
			return ok, nil // redcon drops the bytes of a read that also fails
		}
		return 0, perr
	}
	g.passed.Add(int64(n))
	return n, err
}

// scan follows b through the framing and returns how many of its bytes are within
// the limits, and the error that stops the rest.
func (g *guard) scan(b []byte) (int, error) {
	i := 0
	for i < len(b) {
		n, err := g.step(b[i:])
		i += n
		if err != nil {
			return i, err
		}
	}
	return i, nil
}

// step consumes the start of b (at least one byte) in the current state.
func (g *guard) step(b []byte) (int, error) {
	switch g.state {
	case stateIdle:
		g.size = 0
		if b[0] == '*' {
			g.startLine(stateCount)
			if len(b) > 1 {
				n, err := g.header(b[1:])
				return 1 + n, err
			}
			return 1, nil
		}
		g.state = stateInline
		return g.inline(b)
	case stateInline:
		return g.inline(b)
	case stateCount, stateBulkLen:
		return g.header(b)
	case stateBulkHead:
		if b[0] != '$' {
			return 0, &protocolError{text: "expected '$', got '" + string(rune(b[0])) + "'"}
		}
		g.startLine(stateBulkLen)
		if len(b) > 1 { // the common case: the line at hand
			n, err := g.header(b[1:])
			return 1 + n, err
		}
		return 1, nil
	case stateBulkData:
		if end := g.left; int64(len(b)) >= end+2 && b[end] == '\r' && b[end+1] == '\n' {
			// The common case: the rest of the element and its CRLF at hand.
			g.left = 0
			g.elementDone()
			return int(end) + 2, nil
		}
		n := int(min(int64(len(b)), g.left))
		g.left -= int64(n)
		if g.left == 0 {
			g.state = stateBulkCR
		}
		return n, nil
	case stateBulkCR:
		g.crOK = b[0] == '\r'
		g.state = stateBulkLF
		if len(b) > 1 { // the common case: both bytes at hand
			n, err := g.step(b[1:])
			return 1 + n, err
		}
		return 1, nil
	default: // stateBulkLF
		if !g.crOK || b[0] != '\n' {
			return 0, errBulkLength
		}
		g.elementDone()
		return 1, nil
	}
}

// inline consumes an inline request's bytes up to and including its '\n'; redcon
// parses (and may refuse) the line itself.
func (g *guard) inline(b []byte) (int, error) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		g.size += int64(len(b))
		if g.size > g.lim.line {
			return 0, errInlineTooLong
		}
		return len(b), nil
	}
	g.size += int64(end)
	if g.size > g.lim.line {
		return 0, errInlineTooLong
	}
	g.state = stateIdle
	g.complete++
	return end + 1, nil
}

func (g *guard) startLine(s guardState) {
	g.state = s
	g.size++
	g.num = numberLine{}
}

// header consumes the bytes of a "*N" or "$L" line at the start of b, up to and
// including its '\n'.
func (g *guard) header(b []byte) (int, error) {
	if n, ok, err := g.plainHeader(b); ok {
		return n, err
	}
	for i, c := range b {
		if err := g.headerByte(c); err != nil {
			return i, err
		}
		if c == '\n' {
			return i + 1, nil
		}
	}
	return len(b), nil
}

// plainHeader consumes, at the start of b, a whole header line of plain digits
// within every limit, which is what clients send, at once; it returns what header
// would. For anything else it reports false and header goes byte by byte.
func (g *guard) plainHeader(b []byte) (n int, ok bool, err error) {
	if g.num.length != 0 {
		return 0, false, nil // the line began in an earlier read
	}
	var v int64
	i := 0
	for ; i < len(b) && i < maxPlainHeader && '0' <= b[i] && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	if i == 0 || i+1 >= len(b) || b[i] != '\r' || b[i+1] != '\n' {
		return 0, false, nil
	}
	if b[0] == '0' && i > 1 {
		return 0, false, nil // a leading zero, which header refuses
	}
	nl := i + 1
	limit := g.lim.bulk
	if g.state == stateCount {
		limit = g.lim.elements
	}
	// The checks headerByte makes at each byte, passed at the last one.
	if v > limit || int64(nl) > g.lim.line || g.size+int64(nl)+1 > g.lim.request {
		return 0, false, nil
	}
	g.size += int64(nl) + 1
	if g.state == stateCount {
		err = g.countDone(v, true)
	} else {
		err = g.bulkLenDone(v, true)
	}
	if err != nil {
		return nl, true, err // the '\n' is not passed, as in header
	}
	return nl + 1, true, nil
}

// maxPlainHeader is the most digits plainHeader takes: their value fits an int64.
const maxPlainHeader = 18

// headerByte consumes one byte of a "*N" or "$L" line.
func (g *guard) headerByte(c byte) error {
	if c != '\n' && g.num.add(c) > g.lim.line {
		return g.lineTooLong()
	}
	g.size++
	if g.size > g.lim.request {
		return g.requestTooBig()
	}
	if c != '\n' {
		if g.state == stateCount && g.num.over(g.lim.elements) {
			return errTooManyElements
		}
		if g.state == stateBulkLen && g.num.over(g.lim.bulk) {
			return errBulkTooLong
		}
		return nil
	}

	n, ok := g.num.end()
	if g.state == stateCount {
		return g.countDone(n, ok)
	}
	return g.bulkLenDone(n, ok)
}

// countDone ends a "*N" line. Redis skips a request of no elements or a negative
// number of them (processMultibulkBuffer) and reads on; so does the guard, where
// redcon's reader would refuse it.
func (g *guard) countDone(n int64, ok bool) error {
	if !ok || n > math.MaxInt32 {
		return errMultibulkLength
	}
	if n <= 0 {
		g.state = stateIdle
		g.complete++
		return nil
	}
	g.elems = n
	g.state = stateBulkHead
	return nil
}

func (g *guard) bulkLenDone(n int64, ok bool) error {
	if !ok || n < 0 {
		return errBulkLength
	}
	if g.size+n+2 > g.lim.request {
		return g.requestTooBig()
	}
	g.size += n + 2
	g.left = n
	g.state = stateBulkData
	if n == 0 {
		g.state = stateBulkCR
	}
	return nil
}

func (g *guard) elementDone() {
	g.elems--
	g.state = stateBulkHead
	if g.elems == 0 {
		g.state = stateIdle
		g.big = g.big || g.size > g.lim.fresh
		g.complete++
	}
}

func (g *guard) lineTooLong() error {
	if g.state == stateCount {
		return errCountLineLong
	}
	return errBulkLineLong
}

func (g *guard) requestTooBig() error {
	return &protocolError{
		text:  "request larger than " + strconv.FormatInt(g.lim.request, 10) + " bytes",
		limit: true,
	}
}

// numberLine reads the text of a header line byte by byte and decides, when its
// '\n' comes, whether it is "<text>\r" with a text Redis takes for a number
// (string2ll in its util.c): an int64 in its one canonical form, so an optional
// '-' but no '+', no leading zero and no "-0". redcon's reader (strconv.Atoi) takes
// those three; Redis refuses them, and so does the guard.
type numberLine struct {
	length int64  // bytes so far, '\r' included
	value  uint64 // magnitude of the digits so far, saturated at maxMagnitude+1
	digits bool
	zero   bool // the first digit was '0', which must then be the only one
	neg    bool
	bad    bool // the text cannot be a number whatever follows
	cr     bool // the last byte was '\r'
}

const (
	maxInt64 = 1<<63 - 1

	// maxMagnitude is the largest magnitude of an int64, that of its minimum.
	maxMagnitude = 1 << 63
)

// add takes one byte other than '\n' and returns the line's length so far.
func (n *numberLine) add(c byte) int64 {
	if n.cr {
		n.bad = true // a '\r' inside the text
	}
	n.cr = false
	switch {
	case c == '\r':
		n.cr = true
	case c >= '0' && c <= '9':
		n.addDigit(c)
	case c == '-' && n.length == 0:
		n.neg = true
	default:
		n.bad = true
	}
	n.length++
	return n.length
}

// addDigit takes a digit: it saturates the magnitude beyond an int64's, and marks
// a digit after a leading '0', or a '0' after '-', as no number.
func (n *numberLine) addDigit(c byte) {
	if n.zero || (!n.digits && c == '0' && n.neg) {
		n.bad = true // "01", "00" or "-0"
	}
	n.zero = !n.digits && c == '0'
	n.digits = true

	d := uint64(c - '0')
	if n.value > maxMagnitude/10 {
		n.value = maxMagnitude + 1
		return
	}
	n.value = min(n.value*10+d, maxMagnitude+1)
}

// over tells whether the line is a positive number above limit whatever follows.
func (n *numberLine) over(limit int64) bool {
	return !n.neg && !n.bad && n.value > uint64(limit)
}

// end is called at the line's '\n' and returns its number and whether it is one.
func (n *numberLine) end() (int64, bool) {
	if !n.cr || n.bad || !n.digits {
		return 0, false
	}
	if n.neg {
		if n.value > maxMagnitude {
			return 0, false
		}
		return int64(-n.value), true // -(1<<63) wraps to the minimum, as it should
	}
	if n.value > maxInt64 {
		return 0, false
	}
	return int64(n.value), true
}
