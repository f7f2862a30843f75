package resp

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/keyq/keyq/internal/broker"
)

// BenchmarkRESPRawPipeline sends rounds of 16 LPUSH then 16 RPOP of a 100-byte value
// from a client that writes prebuilt bytes and reads replies without allocating, as
// redis-benchmark -P 16 does, so allocs/op is mostly the server's, per command.
func BenchmarkRESPRawPipeline(b *testing.B) {
	const depth = 16
	ts := startServer(b, broker.Config{})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	defer nc.Close()

	value := bytes.Repeat([]byte("v"), 100)
	var round []byte
	for range depth {
		round = fmt.Appendf(round, "*3\r\n$5\r\nLPUSH\r\n$5\r\nbench\r\n$%d\r\n%s\r\n",
			len(value), value)
	}
	for range depth {
		round = append(round, "*2\r\n$4\r\nRPOP\r\n$5\r\nbench\r\n"...)
	}
	br := bufio.NewReaderSize(nc, 64<<10)

	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(round); err != nil {
			b.Fatalf("write: %v", err)
		}
		if err := skipReplies(br, 2*depth); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*2*depth), "ns/cmd")
}

// skipReplies reads n integer or bulk-string replies.
func skipReplies(br *bufio.Reader, n int) error {
	for range n {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read reply: %w", err)
		}
		switch line[0] {
		case ':':
		case '$':
			size, err := strconv.Atoi(string(line[1 : len(line)-2]))
			if err != nil || size < 0 {
				return fmt.Errorf("reply %q: want a bulk string", line)
			}
			if _, err := br.Discard(size + 2); err != nil {
				return fmt.Errorf("read bulk: %w", err)
			}
		default:
			return fmt.Errorf("reply %q: want an integer or a bulk string", line)
		}
	}
	return nil
}
