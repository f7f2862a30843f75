package proto

import (
	"encoding/binary"
	"iter"
	"math"
)

// MaxKeyBytes is the longest key a u8 length can carry.
const MaxKeyBytes = math.MaxUint8

// Option is one entry of an options block.
type Option struct {
	Tag   uint8
	Value []byte
}

// AppendKey appends key as a u8 length and its bytes. A key longer than MaxKeyBytes
// cannot be sent; it gives an *Error with StatusInvalidKey. Other key rules are the
// server's to check.
func AppendKey(dst []byte, key string) ([]byte, error) {
	if len(key) > MaxKeyBytes {
		return dst, Errorf(StatusInvalidKey, "invalid key: %d bytes, longer than %d",
			len(key), MaxKeyBytes)
	}
	dst = append(dst, byte(len(key)))
	return append(dst, key...), nil
}

// AppendOptions appends an options block holding opts (none: the 2-byte empty block).
func AppendOptions(dst []byte, opts ...Option) ([]byte, error) {
	n := 0
	for _, o := range opts {
		if len(o.Value) > math.MaxUint16 {
			return dst, Errorf(StatusBadRequest, "option %d: value of %d bytes is over %d",
				o.Tag, len(o.Value), math.MaxUint16)
		}
		n += 3 + len(o.Value)
	}
	if n > math.MaxUint16 {
		return dst, Errorf(StatusBadRequest, "options block of %d bytes is over %d",
			n, math.MaxUint16)
	}

	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	for _, o := range opts {
		dst = append(dst, o.Tag)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(o.Value)))
		dst = append(dst, o.Value...)
	}
	return dst, nil
}

// AppendU64 appends v as 8 big-endian bytes.
func AppendU64(dst []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(dst, v)
}

// Options is the content of an options block that Body.Options has checked: a
// sequence of u8 tag, u16 value length, value.
type Options []byte

// All yields each option's tag and value, in order. The values alias the frame.
func (o Options) All() iter.Seq2[uint8, []byte] {
	return func(yield func(uint8, []byte) bool) {
		for len(o) >= 3 {
			n := 3 + int(binary.BigEndian.Uint16(o[1:]))
			if n > len(o) || !yield(o[0], o[3:n]) {
				return
			}
			o = o[n:]
		}
	}
}

// Body decodes a frame body field by field. Each method consumes its field or, if the
// body is too short for it, returns an *Error with StatusBadFrame and consumes nothing.
type Body struct {
	b   []byte
	off int
}

// NewBody returns a Body over b.
func NewBody(b []byte) Body { return Body{b: b} }

// Len returns the number of bytes not yet consumed.
func (d *Body) Len() int { return len(d.b) - d.off }

// Key consumes a u8-length key.
func (d *Body) Key() (string, error) {
	key, err := d.KeyBytes()
	return string(key), err
}

// KeyBytes consumes a u8-length key and returns its bytes, which alias the body.
func (d *Body) KeyBytes() ([]byte, error) {
	if d.Len() < 1 {
		return nil, Errorf(StatusBadFrame, "body ends before the key length at byte %d", d.off)
	}
	n := int(d.b[d.off])
	if d.Len() < 1+n {
		return nil, Errorf(StatusBadFrame, "key of %d bytes runs past the end of the body",
			n)
	}
	key := d.b[d.off+1 : d.off+1+n]
	d.off += 1 + n
	return key, nil
}

// Options consumes an options block and checks that its entries fit it exactly.
func (d *Body) Options() (Options, error) {
	if d.Len() < 2 {
		return nil, Errorf(StatusBadFrame,
			"body ends before the options length at byte %d", d.off)
	}
	n := int(binary.BigEndian.Uint16(d.b[d.off:]))
	if d.Len() < 2+n {
		return nil, Errorf(StatusBadFrame,
			"options block of %d bytes runs past the end of the body", n)
	}
	opts := Options(d.b[d.off+2 : d.off+2+n])
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	d.off += 2 + n
	return opts, nil
}

func checkOptions(o Options) error {
	for len(o) > 0 {
		if len(o) < 3 {
			return Errorf(StatusBadFrame, "options block ends inside an option header")
		}
		n := 3 + int(binary.BigEndian.Uint16(o[1:]))
		if n > len(o) {
			return Errorf(StatusBadFrame, "option %d runs past the end of its block", o[0])
		}
		o = o[n:]
	}
	return nil
}

// U64 consumes a big-endian u64.
func (d *Body) U64() (uint64, error) {
	if d.Len() < 8 {
		return 0, Errorf(StatusBadFrame, "body ends before a u64 at byte %d", d.off)
	}
	v := binary.BigEndian.Uint64(d.b[d.off:])
	d.off += 8
	return v, nil
}

// Rest consumes and returns the rest of the body (aliasing it).
func (d *Body) Rest() []byte {
	rest := d.b[d.off:]
	d.off = len(d.b)
	return rest
}

// End returns an *Error with StatusBadFrame if bytes are left unconsumed.
func (d *Body) End() error {
	if d.Len() != 0 {
		return Errorf(StatusBadFrame, "%d unexpected bytes after the body's fields", d.Len())
	}
	return nil
}
