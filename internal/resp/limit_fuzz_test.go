package resp

import (
	"errors"
	"io"
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
			args := make([]string, len(cmd.Args))
			for i, a := range cmd.Args {
				args[i] = strconv.Quote(string(a))
			}
			got = append(got, strings.Join(args, "|"))
		}
	}
}

func isLimitError(err error) bool {
	var pe *protocolError
	return errors.As(err, &pe) && pe.limit
}

// checkAgreement reads data split by seed with and without the guard: within the
// limits both must end the same way, and the guard may only answer more of the
// commands before a protocol error (redcon drops those it parsed in the same read).
func checkAgreement(t *testing.T, data []byte, seed int64) {
	guarded, gerr := readAll(newGuard(newChunkReader(data, seed), fuzzLimits))
	if isLimitError(gerr) {
		return // beyond the limits redcon alone buffers without end, or panics
	}
	plain, perr := readAll(newChunkReader(data, seed))

	if gerr.Error() != perr.Error() {
		t.Fatalf("guarded read ended with %q, redcon alone with %q", gerr, perr)
	}
	if errors.Is(perr, io.EOF) && !slices.Equal(guarded, plain) {
		t.Fatalf("guarded commands %q, redcon alone %q", guarded, plain)
	}
	if len(plain) > len(guarded) || !slices.Equal(guarded[:len(plain)], plain) {
		t.Fatalf("guarded commands %q do not start with redcon's %q", guarded, plain)
	}
}

func FuzzGuardAgreesWithRedcon(f *testing.F) {
	for _, s := range []string{
		"*1\r\n$4\r\nPING\r\n",
		"*3\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n$3\r\na b\r\n*2\r\n$4\r\nLPOP\r\n$1\r\nk\r\n",
		"PING\r\nrpush k \"a b\" 'c'\r\n\r\n\n",
		"*2\r\n$3\r\nGET\r\n$-0\r\n\r\n*+1\r\n$+2\r\nok\r\n",
		"*1\r\n$2\r\nokx\n",
		"*0\r\n",
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
		{"HeaderLineAtCap", "*" + strings.Repeat("0", 14) + "1\r\n" + bulk(1), false},
		{"HeaderLineOverCap", "*" + strings.Repeat("0", 15) + "1\r\n", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []io.Reader{
				strings.NewReader(tc.data),
				iotest.OneByteReader(strings.NewReader(tc.data)),
				iotest.HalfReader(strings.NewReader(tc.data)),
			} {
				_, err := readAll(newGuard(r, lim))
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
