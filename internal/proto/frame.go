package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// HeaderSize is the part of a frame's length taken by opcode, flags and request id.
const HeaderSize = 6

// lengthSize is the size of the length field that precedes every frame.
const lengthSize = 4

// FrameOverhead is what a frame may hold besides a message: header, key and options.
// A server's max frame is its max message plus FrameOverhead (see MaxFrameFor).
const FrameOverhead = 4096

// MaxPingBytes is the largest PING body a server echoes.
const MaxPingBytes = 1024

// MaxFrameFor returns the max frame that a server accepting messages of up to
// maxMessage bytes announces: room for the message, its header, key and options.
func MaxFrameFor(maxMessage int) int {
	return min(maxMessage+FrameOverhead, math.MaxUint32)
}

// Frame is one decoded frame. For a request Flags holds the request flags (0 in
// version 1); for a reply it holds the status (see Status).
type Frame struct {
	Op    Op
	Flags uint8
	ID    uint32
	Body  []byte
}

// Status returns the frame's status byte as a Status, for replies.
func (f Frame) Status() Status { return Status(f.Flags) }

// AppendFrame appends a whole frame (length, header, body) to dst.
func AppendFrame(dst []byte, op Op, flags uint8, id uint32, body []byte) []byte {
	dst = appendHeader(dst, op, flags, id, len(body))
	return append(dst, body...)
}

func appendHeader(dst []byte, op Op, flags uint8, id uint32, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(HeaderSize+bodyLen))
	dst = append(dst, byte(op), flags)
	return binary.BigEndian.AppendUint32(dst, id)
}

// initialBody is the body buffer a Reader starts with when a frame does not fit the
// one it has; keepBody is the largest it keeps from one frame to the next.
const (
	initialBody = 4 << 10
	keepBody    = 64 << 10
)

// Reader reads frames from a stream. It checks each frame's declared length against
// its max frame before reading or allocating the body, and reads bodies into a buffer
// that it reuses and grows only as bytes arrive, so a peer that announces a large frame
// and stalls costs memory in proportion to what it sent. A Reader is not safe for
// concurrent use.
type Reader struct {
	br       *bufio.Reader
	maxFrame int
	buf      []byte
	hdr      [lengthSize + HeaderSize]byte // here, not on the stack: io.ReadFull escapes it
}

// NewReader returns a Reader over br that refuses frames longer than maxFrame.
func NewReader(br *bufio.Reader, maxFrame int) *Reader {
	return &Reader{br: br, maxFrame: max(maxFrame, HeaderSize)}
}

// Buffered reports how many bytes are already read from the stream but not yet
// decoded: if it is 0, no further frame is waiting.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// FrameBuffered reports whether a whole frame is already read from the stream and
// waiting to be decoded, so that ReadFrame will return it without blocking. A server
// uses it to decide whether to flush its replies now or after the next request.
func (r *Reader) FrameBuffered() bool {
	n := r.br.Buffered()
	if n < lengthSize {
		return false
	}
	b, _ := r.br.Peek(lengthSize)
	return uint64(n) >= lengthSize+uint64(binary.BigEndian.Uint32(b))
}

// ReadFrame reads the next frame. The frame's Body aliases the Reader's buffer and
// is valid only until the next call.
//
// At a frame boundary a closed stream gives io.EOF; in the middle of a frame,
// io.ErrUnexpectedEOF. A length over the max frame gives an *Error with
// StatusFrameTooLarge, and a length under HeaderSize one with StatusBadFrame; in both
// cases nothing more is read and the stream is out of step.
func (r *Reader) ReadFrame() (Frame, error) {
	hdr := r.hdr[:]
	if _, err := io.ReadFull(r.br, hdr[:lengthSize]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n < HeaderSize {
		return Frame{}, Errorf(StatusBadFrame, "frame length %d is under %d", n, HeaderSize)
	}
	if uint64(n) > uint64(r.maxFrame) {
		return Frame{}, Errorf(StatusFrameTooLarge,
			"frame length %d is over the max frame of %d", n, r.maxFrame)
	}

	if _, err := io.ReadFull(r.br, hdr[lengthSize:]); err != nil {
		return Frame{}, fmt.Errorf("read frame header: %w", noEOF(err))
	}
	f := Frame{
		Op:    Op(hdr[4]),
		Flags: hdr[5],
		ID:    binary.BigEndian.Uint32(hdr[6:]),
	}
	size := int(n) - HeaderSize
	body, err := r.readBody(size)
	if err != nil {
		return Frame{}, fmt.Errorf("read %s frame body of %d bytes: %w", f.Op, size, err)
	}
	f.Body = body
	return f, nil
}

// readBody reads n bytes into the reusable buffer, growing it at most by doubling
// what has arrived so far.
func (r *Reader) readBody(n int) ([]byte, error) {
	if cap(r.buf) > keepBody && n <= keepBody {
		r.buf = nil // one large frame does not pin its buffer for the connection's life
	}
	if n <= cap(r.buf) {
		b := r.buf[:n]
		_, err := io.ReadFull(r.br, b)
		return b, noEOF(err)
	}

	b := r.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			grown := make([]byte, len(b), min(n, max(2*cap(b), initialBody)))
			copy(grown, b)
			b = grown
			r.buf = b
		}
		m, err := io.ReadFull(r.br, b[len(b):cap(b)])
		b = b[:len(b)+m]
		if err != nil {
			return b, noEOF(err)
		}
	}
	return b, nil
}

// Writer writes frames to a bufio.Writer. It never flushes on its own (except when the
// buffer fills): the caller decides when, typically once no further request is waiting.
// A Writer is not safe for concurrent use.
type Writer struct {
	bw  *bufio.Writer
	hdr [lengthSize + HeaderSize]byte
}

// NewWriter returns a Writer onto bw.
func NewWriter(bw *bufio.Writer) *Writer { return &Writer{bw: bw} }

// WriteFrame writes one frame whose body is the concatenation of parts, so that a
// caller need not copy a message next to its prefix.
func (w *Writer) WriteFrame(op Op, flags uint8, id uint32, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n > math.MaxUint32-HeaderSize {
		return fmt.Errorf("write %s frame: body of %d bytes: %w", op, n, errFrameLength)
	}

	appendHeader(w.hdr[:0], op, flags, id, n)
	if _, err := w.bw.Write(w.hdr[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := w.bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteReply writes a reply frame with status st.
func (w *Writer) WriteReply(op Op, st Status, id uint32, parts ...[]byte) error {
	return w.WriteFrame(op, uint8(st), id, parts...)
}

// WriteError writes an error reply carrying e's code and text.
func (w *Writer) WriteError(op Op, id uint32, e *Error) error {
	return w.WriteFrame(op, uint8(e.Code), id, []byte(e.Text))
}

// Flush writes any buffered frames to the underlying writer.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the number of bytes written but not yet flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

var errFrameLength = errors.New("frame length does not fit in 32 bits")
