package resp

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// readAllReader reads commands from r with the connection's reader until it fails,
// and returns each command's arguments joined by '|' and the error that ended it.
// When r is a guard, the reader knows it, as a connection's does.
func readAllReader(r io.Reader) ([]string, error) {
	rd := newReader(r)
	if g, ok := r.(*guard); ok {
		rd = newGuardedReader(g)
	}
	var got []string
	for {
		args, err := rd.next()
		if err != nil {
			return got, err
		}
		if args == nil {
			if err := rd.fill(); err != nil {
				return got, err
			}
			continue
		}
		got = append(got, quoteArgs(args))
	}
}

// readAllRedcon is readAll that turns a panic of redcon's into an error.
func readAllRedcon(r io.Reader) (cmds []string, err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			err, panicked = fmt.Errorf("redcon panicked: %v", p), true
		}
	}()
	cmds, err = readAll(r)
	return cmds, err, false
}

// checkReaderAgreement reads data split by seed with the connection's reader,
// through a guard and without one, and checks it against two references: both must
// read exactly what redisRead says Redis would (within the limits, beyond which
// ours must survive anything alone), and where redisRead met no header that Redis
// and redcon read differently, both must end as redcon's reader does the same way,
// and may only answer more of the commands before a protocol error (redcon drops
// those it parsed in the same read as the error). Without a guard redcon is
// compared only within the limits, beyond which it spins on a huge element count or
// panics.
func checkReaderAgreement(t *testing.T, data []byte, seed int64) {
	guarded := func() io.Reader { return newGuard(newChunkReader(data, seed), fuzzLimits) }
	ours, oerr := readAllReader(guarded())
	alone, aerr := readAllReader(newChunkReader(data, seed))
	if isLimitError(oerr) {
		return
	}
	want, werr, differs := redisRead(data)
	sameAsRedis(t, "through the guard", ours, oerr, want, werr)
	sameAsRedis(t, "alone", alone, aerr, want, werr)
	if differs {
		return
	}

	theirs, terr, _ := readAllRedcon(guarded())
	compareReads(t, "through the guard", ours, theirs, oerr, terr)
	theirs, terr, panicked := readAllRedcon(newChunkReader(data, seed))
	if !panicked {
		compareReads(t, "alone", alone, theirs, aerr, terr)
	}
}

func compareReads(t *testing.T, how string, ours, theirs []string, oerr, terr error) {
	t.Helper()
	if oerr.Error() != terr.Error() {
		t.Fatalf("%s: our reader ended with %q, redcon's with %q", how, oerr, terr)
	}
	if errors.Is(terr, io.EOF) && !slices.Equal(ours, theirs) {
		t.Fatalf("%s: our commands %q, redcon's %q", how, ours, theirs)
	}
	if len(theirs) > len(ours) || !slices.Equal(ours[:len(theirs)], theirs) {
		t.Fatalf("%s: our commands %q do not start with redcon's %q", how, ours, theirs)
	}
}

func FuzzReaderAgreesWithRedcon(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$3\r\na b\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n",
		"PING\r\nrpush k \"a b\" 'c'\r\n\r\n\n   \r\n",
		"*2\r\n$3\r\nGET\r\n$-0\r\n\r\n*+1\r\n$+2\r\nok\r\n",
		"*1\r\n$2\r\nokx\n",
		"*0\r\n",
		"*-1\r\n",
		"*1\r\n:1\r\n",
		"*1\r\n$\r\n",
		"*\r\n",
		"*1\n",
		"*1\r\n$1\r\nx\r\n*9\r\n",
		"*1\r\n$9223372036854775807\r\nx\r\n",
		"*1\r\n$9223372036854775806\r\nx\r\n",
		"*1\r\n$9223372036854775805\r\nx\r\n",
		"*1\r\n$-1\r\n",
		"*1\r\n$-2\r\n",
		"*2\r\n$1\r\nx\r\n$-7\r\n",
		"*1\r\n$-99\r\nx\r\n",
		"*0\r\n*1\r\n$4\r\nPING\r\n",
		"*2\r\n$7\r\n\r\n$-2\r\n\r\n$1\r\nx\r\n",
		"*1\r\n$1\r\nx\r\n$-2\r\n$4 PING\r\n",
		"*-3\r\n*01\r\n$4\r\nPING\r\n",
		"*1\r\n$04\r\nPING\r\n*-0\r\n",
		"*-9223372036854775808\r\n\r\nPING\r\n*-9223372036854775809\r\n",
		"*1\r\n$0\r\n\r\n*2\r\n$32\r\n" + strings.Repeat("v", 32) + "\r\n$0\r\n\r\n",
		"SET \"unbalanced\r\n",
		"echo \"a\\nb\" '\\t'\r\n",
	} {
		f.Add([]byte(s), int64(len(s)))
	}
	f.Fuzz(checkReaderAgreement)
}

// TestReaderSplitsAnywhere feeds a pipeline through readers that split it
// everywhere: the commands come out whole and the same.
func TestReaderSplitsAnywhere(t *testing.T) {
	const data = "*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n" +
		"PING\r\n  \r\n" + "*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n" + "echo 'x y'\n"
	want := []string{`"RPUSH"|"k"|"a\r\nb"`, `"PING"`, `"LPOP"|"k"`, `"echo"|"x y"`}
	for name, r := range map[string]io.Reader{
		"Whole":   strings.NewReader(data),
		"OneByte": iotest.OneByteReader(strings.NewReader(data)),
		"Half":    iotest.HalfReader(strings.NewReader(data)),
		"DataErr": iotest.DataErrReader(strings.NewReader(data)),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := readAllReader(r)
			if !errors.Is(err, io.EOF) || !slices.Equal(got, want) {
				t.Fatalf("read %q, %v; want %q, EOF", got, err, want)
			}
		})
	}
}

// TestReaderBulkLengths: the bulk lengths redcon.ReadNextCommand trusts (a negative
// one, one within 2 of math.MaxInt) are refused as Redis refuses them, with
// or without the guard, and only where they are lengths: within an element's data,
// or in an inline command after an array, they are bytes like any.
func TestReaderBulkLengths(t *testing.T) {
	lim := limits{elements: maxMultibulk, bulk: 1 << 20, request: 64 << 20,
		line: maxInline, fresh: bigRequest}
	for _, tc := range []struct {
		name, send string
		want       []string
		err        string // with and without the guard, unless guarded says otherwise
		guarded    string
	}{
		{name: "MinusOne", send: "*1\r\n$-1\r\n", err: "Protocol error: invalid bulk length"},
		{name: "MinusTwo", send: "*1\r\n$-2\r\n", err: "Protocol error: invalid bulk length"},
		{name: "MinusSeven", send: "*2\r\n$1\r\nx\r\n$-7\r\n",
			err: "Protocol error: invalid bulk length"},
		{name: "MinusMany", send: "*1\r\n$-99\r\nx\r\n",
			err: "Protocol error: invalid bulk length"},
		{name: "MaxInt", send: "*1\r\n$9223372036854775807\r\nx\r\n",
			err: "Protocol error: invalid bulk length"},
		{name: "MaxIntLess1", send: "*1\r\n$+09223372036854775806\r\nx\r\n",
			err: "Protocol error: invalid bulk length"},
		{name: "MaxIntLess2", send: "*1\r\n$9223372036854775805\r\nx\r\n",
			err: "EOF", guarded: "Protocol error: invalid bulk length"},
		{name: "MinusZero", send: "*1\r\n$-0\r\n\r\n",
			err: "Protocol error: invalid bulk length"},
		{name: "InData", send: "*2\r\n$7\r\n\r\n$-2\r\n\r\n$1\r\nx\r\n",
			want: []string{`"\r\n$-2\r\n"|"x"`}, err: "EOF"},
		{name: "InlineAfter", send: "*1\r\n$1\r\nx\r\n$-2\r\n",
			want: []string{`"x"`, `"$-2"`}, err: "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, guarded := range []bool{false, true} {
				var r io.Reader = iotest.OneByteReader(strings.NewReader(tc.send))
				want := tc.err
				if guarded {
					r = newGuard(r, lim)
					if tc.guarded != "" {
						want = tc.guarded
					}
				}
				got, err := readAllReader(r)
				if err.Error() != want || !slices.Equal(got, tc.want) {
					t.Fatalf("guarded %v: read %q, %v; want %q, %s",
						guarded, got, err, tc.want, want)
				}
			}
		})
	}
}

// TestReaderHeadersAsRedis: with or without the guard, and however the bytes come,
// the reader skips a request of no elements and an empty inline line as Redis does,
// and refuses, as Redis does, a header number string2ll does not take ('+', a
// leading zero, "-0"), where redcon's reader does the opposite.
func TestReaderHeadersAsRedis(t *testing.T) {
	const ping = "*1\r\n$4\r\nPING\r\n"
	lim := limits{elements: maxMultibulk, bulk: 1 << 20, request: 64 << 20,
		line: maxInline, fresh: bigRequest}
	for _, tc := range []struct {
		name, send string
		want       []string
		err        string
	}{
		{"Empty", "*0\r\n" + ping, []string{`"PING"`}, "EOF"},
		{"EmptyAlone", "*0\r\n", nil, "EOF"},
		{"MinusOne", "*-1\r\n" + ping, []string{`"PING"`}, "EOF"},
		{"MinusMany", "PING\r\n*-42\r\n*-1\r\n*0\r\nPING\r\n",
			[]string{`"PING"`, `"PING"`}, "EOF"},
		{"MinInt64", "*-9223372036854775808\r\n" + ping, []string{`"PING"`}, "EOF"},
		{"BelowMinInt64", "*-9223372036854775809\r\n" + ping, nil,
			"Protocol error: invalid multibulk length"},
		{"EmptyInline", "\r\n\n  \r\nPING\r\n", []string{`"PING"`}, "EOF"},
		{"PlusCount", "*+1\r\n$4\r\nPING\r\n", nil,
			"Protocol error: invalid multibulk length"},
		{"LeadingZeroCount", "PING\r\n*01\r\n$4\r\nPING\r\n", []string{`"PING"`},
			"Protocol error: invalid multibulk length"},
		{"ZeroZeroCount", "*00\r\n", nil, "Protocol error: invalid multibulk length"},
		{"MinusZeroCount", "*-0\r\n" + ping, nil,
			"Protocol error: invalid multibulk length"},
		{"MinusLeadingZeroCount", "*-01\r\n", nil,
			"Protocol error: invalid multibulk length"},
		{"PlusLength", "*1\r\n$+4\r\nPING\r\n", nil,
			"Protocol error: invalid bulk length"},
		{"LeadingZeroLength", "*1\r\n$04\r\nPING\r\n", nil,
			"Protocol error: invalid bulk length"},
		{"MinusZeroLength", "*1\r\n$-0\r\n\r\n", nil, "Protocol error: invalid bulk length"},
		{"ZeroLength", "*1\r\n$0\r\n\r\n", []string{`""`}, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, guarded := range []bool{false, true} {
				for _, r := range []io.Reader{
					strings.NewReader(tc.send),
					iotest.OneByteReader(strings.NewReader(tc.send)),
					iotest.HalfReader(strings.NewReader(tc.send)),
				} {
					if guarded {
						r = newGuard(r, lim)
					}
					got, err := readAllReader(r)
					if err.Error() != tc.err || !slices.Equal(got, tc.want) {
						t.Fatalf("guarded %v: read %q, %v; want %q, %s",
							guarded, got, err, tc.want, tc.err)
					}
				}
			}
		})
	}
}

// TestReaderArgumentsEndWithTheirBytes: an argument's capacity ends with it, so
// that appending to one cannot overwrite the next request in the buffer.
func TestReaderArgumentsEndWithTheirBytes(t *testing.T) {
	rd := newReader(strings.NewReader("*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n"))
	if err := rd.fill(); err != nil {
		t.Fatal(err)
	}
	args, err := rd.next()
	if err != nil || len(args) != 2 {
		t.Fatalf("next = %q, %v", args, err)
	}
	for i, a := range args {
		if cap(a) != len(a) {
			t.Fatalf("argument %d: capacity %d, length %d", i, cap(a), len(a))
		}
	}
}

// TestReaderAllocatesNothingPerCommand: parsing a pipeline of array commands
// allocates nothing once the buffer is there.
func TestReaderAllocatesNothingPerCommand(t *testing.T) {
	var round []byte
	for range 16 {
		round = append(round, "*3\r\n$5\r\nLPUSH\r\n$5\r\nbench\r\n$3\r\nxxx\r\n"...)
	}
	rd := newReader(nil)
	rd.buf = make([]byte, readBufSize)
	allocs := testing.AllocsPerRun(100, func() {
		rd.start, rd.end = 0, copy(rd.buf, round)
		for n := 0; ; n++ {
			args, err := rd.next()
			if err != nil || (args == nil) != (n == 16) {
				t.Fatalf("command %d = %q, %v", n, args, err)
			}
			if args == nil {
				return
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per pipeline of 16 commands, want 0", allocs)
	}
}

// TestReaderParsesLargeRequestOnce: a request of many elements that arrives in
// small pieces is parsed once it is whole, not again after every piece.
func TestReaderParsesLargeRequestOnce(t *testing.T) {
	var b strings.Builder
	const elements = 20000
	fmt.Fprintf(&b, "*%d\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n", elements)
	for range elements - 2 {
		b.WriteString("$1\r\nv\r\n")
	}
	b.WriteString("PING\r\n")
	lim := limits{elements: maxMultibulk, bulk: 1 << 20, request: 64 << 20,
		line: maxInline, fresh: bigRequest}
	rd := newGuardedReader(newGuard(iotest.HalfReader(strings.NewReader(b.String())), lim))

	var got [][]byte
	for len(got) < 2 {
		args, err := rd.next()
		if err != nil {
			t.Fatalf("after %d commands: %v", len(got), err)
		}
		if args == nil {
			if err := rd.fill(); err != nil {
				t.Fatalf("after %d commands: fill: %v", len(got), err)
			}
			continue
		}
		if len(got) == 0 && len(args) != elements {
			t.Fatalf("first command has %d arguments, want %d", len(args), elements)
		}
		got = append(got, args[0])
	}
	// HalfReader hands over about half of the buffer's room per read: the request
	// takes about 20 reads, and only the read that completes it leads to a parse.
	if rd.parses > 3 {
		t.Fatalf("%d parses for a request and a PING, want at most 3", rd.parses)
	}
}

// BenchmarkReaderPipeline parses, out of a filled buffer, the commands of
// BenchmarkRESPRawPipeline's round: 16 LPUSH of a 100-byte value, then 16 RPOP.
func BenchmarkReaderPipeline(b *testing.B) {
	const depth = 16
	value := strings.Repeat("v", 100)
	var round []byte
	for range depth {
		round = fmt.Appendf(round, "*3\r\n$5\r\nLPUSH\r\n$5\r\nbench\r\n$%d\r\n%s\r\n",
			len(value), value)
	}
	for range depth {
		round = append(round, "*2\r\n$4\r\nRPOP\r\n$5\r\nbench\r\n"...)
	}
	// Behind a guard, as a connection reads, the reader leaves the bulk lengths to
	// it; alone it checks them itself.
	for _, guarded := range []bool{true, false} {
		b.Run(fmt.Sprintf("guarded=%v", guarded), func(b *testing.B) {
			rd := newReader(nil)
			if guarded {
				rd = newGuardedReader(&guard{})
			}
			rd.buf = make([]byte, readBufSize)

			b.SetBytes(int64(len(round)))
			b.ReportAllocs()
			for b.Loop() {
				rd.start, rd.end = 0, copy(rd.buf, round)
				for range 2 * depth {
					if args, err := rd.next(); args == nil || err != nil {
						b.Fatalf("next = %q, %v", args, err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*depth),
				"ns/cmd")
		})
	}
}
