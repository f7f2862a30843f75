package codec

import (
	"encoding/binary"
	"testing"
)

func TestDecoderReadsWhatBinaryAppends(t *testing.T) {
	var buf []byte
	buf = append(buf, 7)
	buf = binary.AppendUvarint(buf, 300)
	buf = binary.AppendVarint(buf, -5)
	buf = binary.AppendUvarint(buf, 3)
	buf = append(buf, "abc"...)
	buf = append(buf, "tail"...)

	d := Decoder{Buf: buf}
	if b, u, v, s := d.Byte(), d.Uvarint(), d.Varint(), d.Prefixed(); b != 7 || u != 300 ||
		v != -5 || string(s) != "abc" {
		t.Fatalf("read %d %d %d %q", b, u, v, s)
	}
	if r := d.Rest(); string(r) != "tail" || d.Bad {
		t.Fatalf("rest %q, bad %v", r, d.Bad)
	}
}

func TestDecoderMarksShortReads(t *testing.T) {
	for name, read := range map[string]func(*Decoder){
		"byte":     func(d *Decoder) { d.Byte() },
		"uvarint":  func(d *Decoder) { d.Uvarint() },
		"varint":   func(d *Decoder) { d.Varint() },
		"bytes":    func(d *Decoder) { d.Bytes(1) },
		"prefixed": func(d *Decoder) { d.Prefixed() },
	} {
		d := Decoder{Buf: []byte{0x80}} // a varint that never ends, or one byte short
		if name == "bytes" || name == "byte" {
			d.Buf = nil
		}
		read(&d)
		if !d.Bad {
			t.Errorf("%s past the end: Bad not set", name)
		}
	}
}
