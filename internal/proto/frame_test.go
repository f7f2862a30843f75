package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// putJobsHello is the PUT example of PROTOCOL.md.
var putJobsHello = []byte{
	0x00, 0x00, 0x00, 0x12,
	0x01, 0x00,
	0x00, 0x00, 0x00, 0x07,
	0x04, 'j', 'o', 'b', 's',
	0x00, 0x00,
	'h', 'e', 'l', 'l', 'o',
}

// putJobsReply is the reply of the PROTOCOL.md example.
var putJobsReply = []byte{
	0x00, 0x00, 0x00, 0x0e,
	0x01, 0x00,
	0x00, 0x00, 0x00, 0x07,
	0, 0, 0, 0, 0, 0, 0, 1,
}

func newReader(r io.Reader, maxFrame int) *Reader {
	return NewReader(bufio.NewReaderSize(r, 16), maxFrame)
}

func TestAppendFrameMatchesProtocolExample(t *testing.T) {
	body, err := AppendKey(nil, "jobs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = AppendOptions(body)
	body = append(body, "hello"...)
	if got := AppendFrame(nil, OpPut, 0, 7, body); !bytes.Equal(got, putJobsHello) {
		t.Fatalf("frame = % x, want % x", got, putJobsHello)
	}

	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	w := NewWriter(bw)
	if err := w.WriteReply(OpPut, StatusOK, 7, AppendU64(nil, 1)); err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != len(putJobsReply) {
		t.Fatalf("buffered = %d, want %d", w.Buffered(), len(putJobsReply))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), putJobsReply) {
		t.Fatalf("reply = % x, want % x", buf.Bytes(), putJobsReply)
	}
}

func TestReaderDecodesFrames(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  Frame
	}{
		{"protocol example", putJobsHello, Frame{Op: OpPut, ID: 7, Body: putJobsHello[10:]}},
		{"empty body", AppendFrame(nil, OpStats, 0, 0, nil), Frame{Op: OpStats}},
		{"reply status", putJobsReply, Frame{Op: OpPut, ID: 7, Body: putJobsReply[10:]}},
		{"error status", AppendFrame(nil, OpGet, 20, 1<<31, []byte("bad")),
			Frame{Op: OpGet, Flags: 20, ID: 1 << 31, Body: []byte("bad")}},
		{"unknown op", AppendFrame(nil, 0xff, 3, 9, []byte{1}),
			Frame{Op: 0xff, Flags: 3, ID: 9, Body: []byte{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(bytes.NewReader(tt.input), 1<<10)
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("ReadFrame: %v", err)
			}
			if f.Op != tt.want.Op || f.Flags != tt.want.Flags || f.ID != tt.want.ID ||
				!bytes.Equal(f.Body, tt.want.Body) {
				t.Fatalf("frame = %+v, want %+v", f, tt.want)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("second ReadFrame err = %v, want io.EOF", err)
			}
		})
	}
}

func TestReaderRefusesBadLengths(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		code  Status
	}{
		{"length zero", []byte{0, 0, 0, 0}, StatusBadFrame},
		{"length under header", []byte{0, 0, 0, 5, 1, 0, 0, 0, 0}, StatusBadFrame},
		{"length just over max", []byte{0, 0, 0x04, 0x01}, StatusFrameTooLarge},
		{"length max u32", []byte{0xff, 0xff, 0xff, 0xff}, StatusFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(bytes.NewReader(tt.input), 1<<10)
			_, err := r.ReadFrame()
			pe := AsError(err)
			if pe == nil || pe.Code != tt.code || !pe.Fatal() {
				t.Fatalf("err = %v, want a fatal %v", err, tt.code)
			}
		})
	}
}

func TestReaderTruncatedFrames(t *testing.T) {
	frame := AppendFrame(nil, OpPing, 0, 1, []byte("0123456789"))
	for cut := 1; cut < len(frame); cut++ {
		r := newReader(bytes.NewReader(frame[:cut]), 1<<10)
		if _, err := r.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// TestReaderIOTestReaders feeds a pipelined stream through readers that return one
// byte, half of what is asked, or an error with the last data.
func TestReaderIOTestReaders(t *testing.T) {
	var stream []byte
	var want []Frame
	for i := range 20 {
		body := bytes.Repeat([]byte{byte(i)}, i*97)
		stream = AppendFrame(stream, OpPut, 0, uint32(i), body)
		want = append(want, Frame{Op: OpPut, ID: uint32(i), Body: body})
	}
	wrappers := map[string]func(io.Reader) io.Reader{
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data err": iotest.DataErrReader,
	}
	for name, wrap := range wrappers {
		t.Run(name, func(t *testing.T) {
			r := newReader(wrap(bytes.NewReader(stream)), 4<<10)
			for i, w := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.ID != w.ID || !bytes.Equal(f.Body, w.Body) {
					t.Fatalf("frame %d = id %d body %d bytes, want id %d body %d bytes",
						i, f.ID, len(f.Body), w.ID, len(w.Body))
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the stream: err = %v, want io.EOF", err)
			}
		})
	}
}

// TestReaderHugeHeaderAllocatesNothing is C24's amplification case: a bare header
// declaring a large frame, then nothing.
func TestReaderPassesReadErrors(t *testing.T) {
	// The first read fills the 16-byte buffer with frame 0 and part of frame 1; the
	// second read, inside frame 1's body, times out.
	stream := AppendFrame(nil, OpPing, 0, 0, nil)
	stream = AppendFrame(stream, OpPing, 0, 1, bytes.Repeat([]byte("p"), 100))
	r := newReader(iotest.TimeoutReader(bytes.NewReader(stream)), 1<<10)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatalf("frame 0: %v", err)
	}
	if _, err := r.ReadFrame(); !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("frame 1: err = %v, want ErrTimeout", err)
	}
}

func TestReaderHugeHeaderAllocatesNothingC24(t *testing.T) {
	const maxFrame = 64 << 20
	hdr := AppendFrame(nil, OpPut, 0, 1, nil)
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x03, 0xff, 0xff, 0xff // 64 MiB - 1

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := newReader(bytes.NewReader(hdr), maxFrame)
	_, err := r.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading a bare 64 MiB header allocated %d bytes", grew)
	}

	r = newReader(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xff}), maxFrame)
	if _, err := r.ReadFrame(); AsError(err) == nil {
		t.Fatalf("err = %v, want FrameTooLarge", err)
	}
}

func TestReaderGrowsWithDataAndShrinks(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 200<<10)
	stream := AppendFrame(nil, OpPut, 0, 1, big)
	stream = AppendFrame(stream, OpPut, 0, 2, []byte("small"))
	r := newReader(bytes.NewReader(stream), 1<<20)

	f, err := r.ReadFrame()
	if err != nil || !bytes.Equal(f.Body, big) {
		t.Fatalf("big frame: err %v, %d bytes", err, len(f.Body))
	}
	f, err = r.ReadFrame()
	if err != nil || string(f.Body) != "small" {
		t.Fatalf("small frame: err %v, body %q", err, f.Body)
	}
	if cap(r.buf) > keepBody {
		t.Fatalf("buffer kept %d bytes after a small frame", cap(r.buf))
	}
}

func TestReaderReusesBuffer(t *testing.T) {
	var stream []byte
	for i := range 100 {
		stream = AppendFrame(stream, OpGet, 0, uint32(i), []byte("\x04jobs\x00\x00"))
	}
	r := newReader(bytes.NewReader(stream), 1<<10)
	r.ReadFrame() // first frame sizes the buffer
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ReadFrame allocates %.1f times per frame, want 0", allocs)
	}
}

func TestWriterWritesParts(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(bufio.NewWriter(&buf))
	if err := w.WriteFrame(OpGet, uint8(StatusOK), 3, AppendU64(nil, 9), []byte("msg")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteError(OpLen, 4, Errorf(StatusInvalidKey, "invalid key: %s", "x")); err != nil {
		t.Fatal(err)
	}
	w.Flush()

	r := newReader(&buf, 1<<10)
	f, err := r.ReadFrame()
	if err != nil || f.Status() != StatusOK || len(f.Body) != 11 || string(f.Body[8:]) != "msg" {
		t.Fatalf("first frame = %+v, %v", f, err)
	}
	f, err = r.ReadFrame()
	if err != nil || f.Status() != StatusInvalidKey || string(f.Body) != "invalid key: x" {
		t.Fatalf("second frame = %+v, %v", f, err)
	}
}

func TestStatusAndOpNames(t *testing.T) {
	if got := StatusFrameTooLarge.String(); got != "FrameTooLarge" {
		t.Fatalf("name = %q", got)
	}
	if got := Status(99).String(); got != "status(99)" {
		t.Fatalf("name = %q", got)
	}
	if got := OpQueueSet.String(); got != "QUEUE_SET" {
		t.Fatalf("name = %q", got)
	}
	if got := Op(0x42).String(); got != "op(0x42)" {
		t.Fatalf("name = %q", got)
	}
	if !Status(40).IsError() || StatusEmpty.IsError() || Status(40).Fatal() {
		t.Fatal("unknown code 40 must be a non-fatal error")
	}
	e := Errorf(StatusInvalidKey, "invalid key: must not be empty")
	if !errors.Is(e, &Error{Code: StatusInvalidKey}) || errors.Is(e, &Error{Code: StatusEmpty}) {
		t.Fatal("errors.Is must match by code")
	}
	if !strings.Contains(e.Error(), "InvalidKey") || e.Fatal() {
		t.Fatalf("error = %q, fatal %v", e, e.Fatal())
	}
}

func TestReaderFrameBuffered(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(bufio.NewReader(pr), 1<<10)
	frame := AppendFrame(nil, OpPing, 0, 1, []byte("abc"))
	two := append(append([]byte(nil), frame...), frame...)

	go func() {
		pw.Write(two[:len(frame)+5]) // one frame and a part of the next
		pw.Write(two[len(frame)+5:])
	}()
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 5 || r.FrameBuffered() {
		t.Fatalf("buffered %d, whole frame %v; want 5 bytes and no whole frame",
			r.Buffered(), r.FrameBuffered())
	}
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() != 0 || r.FrameBuffered() {
		t.Fatal("nothing should be buffered")
	}

	r = newReader(bytes.NewReader(two), 1<<10)
	r.br.Peek(len(two))
	if !r.FrameBuffered() {
		t.Fatal("two whole frames are buffered")
	}
}
