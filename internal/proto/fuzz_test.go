package proto

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame feeds arbitrary bytes, split in two reads at a chosen point, to the
// frame reader, and decodes each frame's body the way the server does. Every frame
// read must re-encode to exactly the bytes it came from, and nothing may panic.
// Seeds in testdata/fuzz/FuzzReadFrame are real frames: a pipelined stream of each
// request, replies, and broken lengths.
func FuzzReadFrame(f *testing.F) {
	f.Add(putJobsHello, 5)
	f.Add(putJobsReply, 0)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 || split > len(data) {
			split = len(data) / 2
		}
		src := io.MultiReader(bytes.NewReader(data[:split]), bytes.NewReader(data[split:]))
		r := NewReader(bufio.NewReaderSize(src, 16), 1<<12)

		consumed := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				checkReadError(t, err, consumed, len(data))
				return
			}
			enc := AppendFrame(nil, fr.Op, fr.Flags, fr.ID, fr.Body)
			if !bytes.Equal(enc, data[consumed:consumed+len(enc)]) {
				t.Fatalf("frame at %d re-encodes to % x", consumed, enc)
			}
			consumed += len(enc)
			decodeRequestBody(fr)
		}
	})
}

func checkReadError(t *testing.T, err error, consumed, total int) {
	t.Helper()
	switch {
	case err == io.EOF:
		if consumed != total {
			t.Fatalf("io.EOF after %d of %d bytes", consumed, total)
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
	case AsError(err) != nil && AsError(err).Fatal():
	default:
		t.Fatalf("unexpected error: %v", err)
	}
}

// decodeRequestBody decodes fr's body as the server would, for its opcode, and a
// reply's body for the opcodes whose replies carry items.
func decodeRequestBody(fr Frame) {
	d := NewBody(fr.Body)
	switch fr.Op {
	case OpPut, OpGet, OpQueueSet, OpQueueShow, OpPutBatch:
		if _, err := d.Key(); err != nil {
			return
		}
		opts, ok := allOptions(&d)
		if !ok {
			return
		}
		decodeOptionValues(opts)
		if fr.Op == OpPutBatch {
			d.Messages()
		}
		d.Rest()
	case OpReserve, OpGetBatch:
		if fr.Flags != 0 { // a reply: a count and items
			n, _ := d.U32()
			for range min(n, 1000) {
				if _, err := d.Item(fr.Op == OpReserve); err != nil {
					return
				}
			}
			return
		}
		if _, err := d.Keys(); err != nil {
			return
		}
		if opts, ok := allOptions(&d); ok {
			decodeOptionValues(opts)
		}
	case OpAck, OpNack, OpTouch:
		d.U64()
		allOptions(&d)
	case OpLen:
		d.Key()
	default:
		d.U64()
	}
	d.End()
}

func allOptions(d *Body) (Options, bool) {
	opts, err := d.Options()
	if err != nil {
		return nil, false
	}
	for range opts.All() {
	}
	return opts, true
}

// decodeOptionValues decodes each value as each fixed size, as servers do per tag.
func decodeOptionValues(opts Options) {
	for tag, v := range opts.All() {
		OptionU32(tag, v)
		OptionU8(tag, v)
		if ms, err := OptionU64(tag, v); err == nil && Duration(ms, 1<<62) > 1<<62 {
			panic("Duration went over its limit")
		}
	}
}
