package proto

import (
	"bytes"
	"strings"
	"testing"
)

func TestBodyDecodesPutAndGet(t *testing.T) {
	body, _ := AppendKey(nil, "jobs")
	body, _ = AppendOptions(body, Option{Tag: OptGetWait, Value: AppendU64(nil, 250)},
		Option{Tag: 9})
	body = append(body, "payload"...)

	d := NewBody(body)
	key, err := d.Key()
	if err != nil || key != "jobs" {
		t.Fatalf("key = %q, %v", key, err)
	}
	opts, err := d.Options()
	if err != nil {
		t.Fatal(err)
	}
	var tags []uint8
	var values [][]byte
	for tag, v := range opts.All() {
		tags = append(tags, tag)
		values = append(values, v)
	}
	if len(tags) != 2 || tags[0] != OptGetWait || tags[1] != 9 || len(values[1]) != 0 {
		t.Fatalf("options = %v %v", tags, values)
	}
	wait, err := decodeU64(values[0])
	if err != nil || wait != 250 {
		t.Fatalf("wait = %d, %v", wait, err)
	}
	if rest := d.Rest(); string(rest) != "payload" || d.End() != nil {
		t.Fatalf("rest = %q", rest)
	}
}

func decodeU64(b []byte) (uint64, error) {
	d := NewBody(b)
	v, err := d.U64()
	if err != nil {
		return 0, err
	}
	return v, d.End()
}

func TestBodyRefusesMalformedFields(t *testing.T) {
	tests := []struct {
		name   string
		body   []byte
		decode func(*Body) error
	}{
		{"no key length", nil, keyField},
		{"key past end", []byte{5, 'a', 'b'}, keyField},
		{"no options length", []byte{1}, optionsField},
		{"options past end", []byte{0, 4, 1, 0}, optionsField},
		{"option header cut", []byte{0, 2, 1, 0}, optionsField},
		{"option value past block", []byte{0, 4, 1, 0, 2, 'x'}, optionsField},
		{"short u64", []byte{1, 2, 3}, u64Field},
		{"trailing bytes", []byte{0}, func(d *Body) error { return d.End() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewBody(tt.body)
			err := tt.decode(&d)
			pe := AsError(err)
			if pe == nil || pe.Code != StatusBadFrame {
				t.Fatalf("err = %v, want BadFrame", err)
			}
			if d.Len() != len(tt.body) {
				t.Fatalf("a failed field consumed %d bytes", len(tt.body)-d.Len())
			}
		})
	}
}

func keyField(d *Body) error     { _, err := d.Key(); return err }
func optionsField(d *Body) error { _, err := d.Options(); return err }
func u64Field(d *Body) error     { _, err := d.U64(); return err }

func TestAppendKeyLimits(t *testing.T) {
	for _, key := range []string{"", "\x00", "a\x00b", "\xff\xfe", strings.Repeat("k", 255)} {
		b, err := AppendKey(nil, key)
		if err != nil || int(b[0]) != len(key) || string(b[1:]) != key {
			t.Fatalf("AppendKey(%q) = % x, %v", key, b, err)
		}
	}
	b, err := AppendKey([]byte("x"), strings.Repeat("k", 256))
	if pe := AsError(err); pe == nil || pe.Code != StatusInvalidKey || !bytes.Equal(b, []byte("x")) {
		t.Fatalf("AppendKey of 256 bytes = % x, %v", b, err)
	}
}

func TestAppendOptionsLimits(t *testing.T) {
	if b, _ := AppendOptions(nil); !bytes.Equal(b, []byte{0, 0}) {
		t.Fatalf("empty options = % x", b)
	}
	if _, err := AppendOptions(nil, Option{Tag: 1, Value: make([]byte, 1<<16)}); err == nil {
		t.Fatal("a 64 KiB option value must be refused")
	}
	many := make([]Option, 30)
	for i := range many {
		many[i] = Option{Tag: 1, Value: make([]byte, 3000)}
	}
	if _, err := AppendOptions(nil, many...); err == nil {
		t.Fatal("an options block over 64 KiB must be refused")
	}
}
