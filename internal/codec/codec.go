// Package codec reads the variable-length integers and byte strings that keyq's log
// records and the broker's state records are made of.
package codec

import "encoding/binary"

// Decoder reads values off Buf in order. A read past the end, or a malformed integer,
// yields zero and sets Bad, so a caller reads every field and checks Bad once.
type Decoder struct {
	Buf []byte
	Bad bool
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if len(d.Buf) == 0 {
		d.Bad = true
		return 0
	}
	c := d.Buf[0]
	d.Buf = d.Buf[1:]
	return c
}

// Uvarint reads an unsigned varint (encoding/binary's AppendUvarint).
func (d *Decoder) Uvarint() uint64 {
	v, n := binary.Uvarint(d.Buf)
	if n <= 0 {
		d.Bad = true
		return 0
	}
	d.Buf = d.Buf[n:]
	return v
}

// Varint reads a signed varint (encoding/binary's AppendVarint).
func (d *Decoder) Varint() int64 {
	v, n := binary.Varint(d.Buf)
	if n <= 0 {
		d.Bad = true
		return 0
	}
	d.Buf = d.Buf[n:]
	return v
}

// Bytes reads the next n bytes. The result points into Buf.
func (d *Decoder) Bytes(n uint64) []byte {
	if n > uint64(len(d.Buf)) {
		d.Bad = true
		return nil
	}
	b := d.Buf[:n]
	d.Buf = d.Buf[n:]
	return b
}

// Prefixed reads a byte string written as its length (uvarint), then its bytes.
func (d *Decoder) Prefixed() []byte { return d.Bytes(d.Uvarint()) }

// Rest returns what is left of Buf and leaves nothing.
func (d *Decoder) Rest() []byte {
	b := d.Buf
	d.Buf = nil
	return b
}
