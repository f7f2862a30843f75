package resp

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/tidwall/redcon"
)

// fuzzLimits are small, so that random inputs reach them.
var fuzzLimits = limits{elements: 8, bulk: 32, request: 128, line: 64, fresh: 16}

// chunkReader returns data in reads of random sizes drawn from seed.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func newChunkReader(data []byte, seed int64) *chunkReader {
	return &chunkReader{data: data, rng: rand.New(rand.NewPCG(uint64(seed), 7))}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 1+r.rng.IntN(len(r.data)))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// readAll reads commands from r with redcon until it fails, and returns each
// command's arguments joined by '|' and the error that ended it.
func readAll(r io.Reader) ([]string, error) {
	rd := redcon.NewReader(r)
	var got []string
	for {
		cmds, err := rd.ReadCommands()
		if errors.Is(err, errFreshReader) {
			rd = redcon.NewReader(r) // as serveCommands does
			continue
		}
		if err != nil {
			return got, err
		}
		for _, cmd := range cmds {
			got = append(got, quoteArgs(cmd.Args))
		}
	}
}

func isLimitError(err error) bool {
	var pe *protocolError
	return errors.As(err, &pe) && pe.limit
}

// checkAgreement reads data split by seed through the guard and checks it against
// two references. Within the limits, the connection's reader behind the guard must
// read exactly what redisRead says Redis would. Where redisRead met no header that
// Redis and redcon read differently, redcon's reader too must end the same way
// through the guard and alone, where it may only answer fewer of the commands
// before a protocol error (it drops those it parsed in the same read), and so must
// redisRead, which keeps the reference itself checked against redcon.
func checkAgreement(t *testing.T, data []byte, seed int64) {
	ours, oerr := readAllReader(newGuard(newChunkReader(data, seed), fuzzLimits))
	if isLimitError(oerr) {
		return // beyond the limits redcon alone buffers without end, or panics
	}
	want, werr, differs := redisRead(data)
	sameAsRedis(t, "through the guard", ours, oerr, want, werr)
	if differs {
		return
	}

	guarded, gerr := readAll(newGuard(newChunkReader(data, seed), fuzzLimits))
	if isLimitError(gerr) {
		t.Fatalf("redcon's reader met limit error %q, ours %q", gerr, oerr)
	}
	plain, perr := readAll(newChunkReader(data, seed))
	agreesWithRedcon(t, "guarded", guarded, plain, gerr, perr)
	agreesWithRedcon(t, "Redis' rules", want, plain, werr, perr)
}

// agreesWithRedcon checks that a read ended as redcon's reader's did, with the
// commands it answered and possibly more.
func agreesWithRedcon(t *testing.T, how string, got, plain []string, err, perr error) {
	t.Helper()
	if err.Error() != perr.Error() {
		t.Fatalf("%s: read ended with %q, redcon alone with %q", how, err, perr)
	}
	if errors.Is(perr, io.EOF) && !slices.Equal(got, plain) {
		t.Fatalf("%s: commands %q, redcon alone %q", how, got, plain)
	}
	if len(plain) > len(got) || !slices.Equal(got[:len(plain)], plain) {
		t.Fatalf("%s: commands %q do not start with redcon's %q", how, got, plain)
	}
}

// sameAsRedis checks that a read answered the commands and ended with the error
// that redisRead says.
func sameAsRedis(t *testing.T, how string, got []string, err error, want []string,
	werr error) {
	t.Helper()
	if err.Error() != werr.Error() || !slices.Equal(got, want) {
		t.Fatalf("%s: read %q, %v; Redis' rules say %q, %v", how, got, err, want, werr)
	}
}

var (
	errRefMultibulk = errors.New("Protocol error: invalid multibulk length")
	errRefBulk      = errors.New("Protocol error: invalid bulk length")
)

// redisRead is a reference, written to be plainly right rather than fast, of how
// Redis 7 reads the request headers in data (processMultibulkBuffer in
// networking.c): a request of no elements or fewer ("*0", "*-3") is skipped; a
// count or a bulk length must be a number string2ll takes (redisNumber), the count
// at most INT_MAX and the length not negative. For the rest it reads as redcon's
// reader does and so does keyq: a header line must end in "\r\n" (Redis takes the
// byte after the '\r' for a '\n' unread), an element's data too (Redis does not
// look), and an inline command is parsed by redcon.Parse. It returns the commands
// whose bytes all came, each as readAll gives it, the error that ends them (io.EOF
// at the end of data), and whether it met a header that redcon's reader reads
// otherwise. It knows no limits.
func redisRead(data []byte) (cmds []string, err error, differs bool) {
	for len(data) > 0 {
		var args [][]byte
		var n int
		if data[0] == '*' {
			var d bool
			args, n, err, d = redisArray(data)
			differs = differs || d
		} else {
			args, n, err = redisInline(data)
		}
		if err != nil {
			return cmds, err, differs
		}
		if n == 0 {
			break // the rest has not all come
		}
		if args != nil {
			cmds = append(cmds, quoteArgs(args))
		}
		data = data[n:]
	}
	return cmds, io.EOF, differs
}

// redisArray reads the array request at the start of b: its arguments (nil when it
// is skipped) and length in bytes (0 when not all there), or its error.
func redisArray(b []byte) (args [][]byte, n int, err error, differs bool) {
	count, ok, redconOK, n := refHeader(b[1:], math.MaxInt32)
	if n == 0 {
		return nil, 0, nil, false
	}
	differs = (ok && count <= 0) || ok != (redconOK && count > 0)
	if !ok {
		return nil, 0, errRefMultibulk, differs
	}
	pos := 1 + n
	if count <= 0 {
		return nil, pos, nil, differs
	}

	args = [][]byte{}
	for range count {
		if pos == len(b) {
			return nil, 0, nil, differs
		}
		if b[pos] != '$' {
			return nil, 0, errors.New("Protocol error: expected '$', got '" +
				string(rune(b[pos])) + "'"), differs
		}
		size, ok, redconOK, n := refHeader(b[pos+1:], math.MaxInt64)
		if n == 0 {
			return nil, 0, nil, differs
		}
		ok = ok && size >= 0
		differs = differs || ok != redconOK
		if !ok {
			return nil, 0, errRefBulk, differs
		}
		pos += 1 + n
		if size > int64(len(b)-pos-2) {
			return nil, 0, nil, differs
		}
		if b[pos+int(size)] != '\r' || b[pos+int(size)+1] != '\n' {
			return nil, 0, errRefBulk, differs
		}
		args = append(args, b[pos:pos+int(size)])
		pos += int(size) + 2
	}
	return args, pos, nil, differs
}

// refHeader reads the header line at the start of b (its '*' or '$' left out):
// its number, whether Redis takes it (within max), whether redcon does, and its
// length with the '\n', 0 when not all there.
func refHeader(b []byte, max int64) (v int64, ok, redconOK bool, n int) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		return 0, false, false, 0
	}
	text, crlf := strings.CutSuffix(string(b[:end]), "\r")
	v, ok = redisNumber(text)
	a, err := strconv.Atoi(text)
	ok = crlf && ok && v <= max
	redconOK = crlf && err == nil && int64(a) == v && a >= 0
	return v, ok, redconOK, end + 1
}

// redisNumber parses text as Redis' string2ll does: an int64 written in its one
// canonical form, which is the one strconv.FormatInt writes.
func redisNumber(text string) (int64, bool) {
	v, err := strconv.ParseInt(text, 10, 64)
	return v, err == nil && strconv.FormatInt(v, 10) == text
}

// redisInline reads the inline request at the start of b with redcon.Parse; a
// line of spaces alone, or no text at all, is skipped.
func redisInline(b []byte) (args [][]byte, n int, err error) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		return nil, 0, nil
	}
	text := strings.TrimSuffix(string(b[:end]), "\r")
	if strings.Trim(text, " ") == "" {
		return nil, end + 1, nil
	}
	cmd, err := redcon.Parse(b[:end+1])
	if err != nil {
		return nil, 0, err
	}
	return cmd.Args, end + 1, nil
}

func quoteArgs(args [][]byte) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = strconv.Quote(string(a))
	}
	return strings.Join(quoted, "|")
}

func FuzzGuardAgreesWithRedcon(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$3\r\na b\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n",
		"PING\r\nrpush k \"a b\" 'c'\r\n\r\n\n",
		"*2\r\n$3\r\nGET\r\n$-0\r\n\r\n*+1\r\n$+2\r\nok\r\n",
		"*1\r\n$2\r\nokx\n",
		"*0\r\n",
		"*0\r\n*1\r\n$4\r\nPING\r\n*-3\r\nPING\r\n",
		"*-9223372036854775808\r\n*-9223372036854775809\r\n",
		"*01\r\n$4\r\nPING\r\n",
		"*+1\r\n$+4\r\nPING\r\n",
		"*-0\r\n",
		"*1\r\n$04\r\nPING\r\n",
		"*1\r\n$0\r\n\r\n*1\r\n$00\r\n\r\n",
		"*1\r\n:1\r\n",
		"*1\r\n$1\r\nx\r\n*9\r\n",
		"*1\r\n$0\r\n\r\n*2\r\n$32\r\n" + strings.Repeat("v", 32) + "\r\n$0\r\n\r\n",
		"SET \"unbalanced\r\n",
	} {
		f.Add([]byte(s), int64(len(s)))
	}
	f.Fuzz(checkAgreement)
}

func TestGuardLimitsAreInclusive(t *testing.T) {
	lim := limits{elements: 3, bulk: 10, request: 53, line: 16}
	bulk := func(n int) string { return bulkHeader(n) + strings.Repeat("x", n) + "\r\n" }
	cases := []struct {
		name, data string
		limit      bool
	}{
		{"ElementsAtCap", "*3\r\n" + bulk(1) + bulk(1) + bulk(1), false},
		{"ElementsOverCap", "*4\r\n", true},
		{"BulkAtCap", "*1\r\n" + bulk(10), false},
		{"BulkOverCap", "*1\r\n$11\r\n", true},
		{"RequestAtCap", "*3\r\n" + bulk(10) + bulk(10) + bulk(9), false}, // 4+17+17+15
		{"RequestOverCap", "*3\r\n" + bulk(10) + bulk(10) + bulk(10), true},
		{"InlineAtCap", strings.Repeat("a", 15) + "\r\n", false}, // the '\r' counts
		{"InlineOverCap", strings.Repeat("a", 16) + "\r\n", true},
		// A negative count is the one long header line Redis takes: it skips it.
		{"HeaderLineAtCap", "*-1" + strings.Repeat("0", 13) + "\r\n*1\r\n" + bulk(1), false},
		{"HeaderLineOverCap", "*-1" + strings.Repeat("0", 14) + "\r\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{
				strings.NewReader(tc.data),
				iotest.OneByteReader(strings.NewReader(tc.data)),
				iotest.HalfReader(strings.NewReader(tc.data)),
			} {
				_, err := readAllReader(newGuard(r, lim))
				if got := isLimitError(err); got != tc.limit {
					t.Fatalf("read ended with %v; limit error = %v, want %v", err, got,
						tc.limit)
				}
				if !tc.limit && !errors.Is(err, io.EOF) {
					t.Fatalf("read ended with %v, want EOF", err)
				}
			}
		})
	}
}

// BenchmarkGuardPipelinedPush is the guard's cost alone over pipelined RPUSH
// requests of 64-byte values.
func BenchmarkGuardPipelinedPush(b *testing.B) {
	value := strings.Repeat("v", 64)
	var data []byte
	for range 100 {
		data = redcon.AppendArray(data, 3)
		data = redcon.AppendBulkString(data, "RPUSH")
		data = redcon.AppendBulkString(data, "bench")
		data = redcon.AppendBulkString(data, value)
	}
	g := newGuard(nil, limits{elements: maxMultibulk, bulk: 1 << 20, request: 64 << 20,
		line: maxInline, fresh: bigRequest})

	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := g.scan(data); n != len(data) || err != nil {
			b.Fatalf("scan = %d, %v", n, err)
		}
	}
}

// TestHeaderNumbersAsRedis: the guard's numberLine, fed a byte at a time, and the
// reader's redisInt take a header's text for a number exactly when Redis'
// string2ll does (redisNumber), with the same value.
func TestHeaderNumbersAsRedis(t *testing.T) {
	texts := []string{
		"0", "1", "-1", "42", "+1", "+0", "01", "00", "-0", "-01", "", "-", "--1", "1-",
		" 1", "1 ", "1a", "1\r", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "18446744073709551616",
		"99999999999999999999", "-99999999999999999999", "100000000000000000000",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "0123456789+- \r"
	for range 20000 {
		b := make([]byte, 1+rng.IntN(22))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if i > 0 && rng.IntN(4) > 0 {
				b[i] = '0' + byte(rng.IntN(10)) // mostly digits after the first byte
			}
		}
		texts = append(texts, string(b))
	}

	for _, text := range texts {
		want, wantOK := redisNumber(text)
		var n numberLine
		for _, c := range []byte(text + "\r") {
			n.add(c)
		}
		if got, ok := n.end(); ok != wantOK || (ok && got != want) {
			t.Fatalf("numberLine %q = %d, %v; want %d, %v", text, got, ok, want, wantOK)
		}
		if got, ok := redisInt([]byte(text)); ok != wantOK || (ok && got != want) {
			t.Fatalf("redisInt %q = %d, %v; want %d, %v", text, got, ok, want, wantOK)
		}
	}
}
