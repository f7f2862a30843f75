package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestHelloRoundTrip(t *testing.T) {
	ch := ClientHello{Version: 1}
	b := ch.Append(nil)
	if want := []byte("KEYQ\x00\x01\x00\x00"); !bytes.Equal(b, want) {
		t.Fatalf("client hello = % x, want % x", b, want)
	}
	got, err := ReadClientHello(iotest.OneByteReader(bytes.NewReader(b)))
	if err != nil || got != ch {
		t.Fatalf("read client hello = %+v, %v", got, err)
	}

	sh := ServerHello{Version: 1, MaxMessage: 1 << 20, MaxFrame: 1<<20 + FrameOverhead}
	b = sh.Append(nil)
	if len(b) != ServerHelloSize || string(b[:4]) != Magic {
		t.Fatalf("server hello = % x", b)
	}
	gotS, err := ReadServerHello(iotest.HalfReader(bytes.NewReader(b)))
	if err != nil || gotS != sh {
		t.Fatalf("read server hello = %+v, %v", gotS, err)
	}
}

func TestHelloErrors(t *testing.T) {
	tests := []struct {
		name string
		read func([]byte) error
		in   []byte
		want error
	}{
		{"client bad magic", readClient, []byte("GET / HTTP/1.1\r\n"), ErrBadMagic},
		{"client short magic", readClient, []byte("KE"), io.ErrUnexpectedEOF},
		{"client nothing", readClient, nil, io.EOF},
		{"client short", readClient, []byte("KEYQ\x00"), io.ErrUnexpectedEOF},
		{"server bad magic", readServer, []byte("KEYX\x00\x01\x00\x00........"), ErrBadMagic},
		{"server version 0", readServer, ServerHello{}.Append(nil), ErrNoVersion},
		{"server short", readServer, []byte("KEYQ\x00\x01\x00\x00\x00"), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.read(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func readClient(b []byte) error {
	_, err := ReadClientHello(bytes.NewReader(b))
	return err
}

func readServer(b []byte) error {
	_, err := ReadServerHello(bytes.NewReader(b))
	return err
}

func TestNegotiate(t *testing.T) {
	for _, tt := range []struct{ offer, want uint16 }{{0, 0}, {1, 1}, {2, 1}, {65535, 1}} {
		if got := Negotiate(tt.offer); got != tt.want {
			t.Errorf("Negotiate(%d) = %d, want %d", tt.offer, got, tt.want)
		}
	}
}
