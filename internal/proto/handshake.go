package proto

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Version is the highest protocol version this package speaks.
const Version uint16 = 1

// Magic opens both hellos: ASCII "KEYQ".
const Magic = "KEYQ"

// Sizes of the two hellos on the wire.
const (
	ClientHelloSize = 8
	ServerHelloSize = 16
)

// ClientHello is what a client sends first: the highest version it speaks.
type ClientHello struct {
	Version uint16
	Flags   uint16 // reserved, 0
}

// ServerHello is the server's answer: the version both will speak (0: none in common)
// and the server's limits.
type ServerHello struct {
	Version    uint16
	Flags      uint16 // reserved, 0
	MaxMessage uint32 // the largest message a PUT may carry, in bytes
	MaxFrame   uint32 // the largest frame length the server accepts
}

// Negotiate returns the version a server speaking up to Version answers a client that
// offered v: 0 when there is none in common, else the lower of the two.
func Negotiate(v uint16) uint16 {
	return min(v, Version)
}

// Append appends the client hello's 8 bytes to dst.
func (h ClientHello) Append(dst []byte) []byte {
	dst = append(dst, Magic...)
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	return binary.BigEndian.AppendUint16(dst, h.Flags)
}

// Append appends the server hello's 16 bytes to dst.
func (h ServerHello) Append(dst []byte) []byte {
	dst = append(dst, Magic...)
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	dst = binary.BigEndian.AppendUint16(dst, h.Flags)
	dst = binary.BigEndian.AppendUint32(dst, h.MaxMessage)
	return binary.BigEndian.AppendUint32(dst, h.MaxFrame)
}

// ReadClientHello reads a client hello from r. It returns ErrBadMagic if the first
// four bytes are not "KEYQ".
func ReadClientHello(r io.Reader) (ClientHello, error) {
	var b [ClientHelloSize]byte
	if err := readHello(r, b[:]); err != nil {
		return ClientHello{}, fmt.Errorf("read client hello: %w", err)
	}
	return ClientHello{
		Version: binary.BigEndian.Uint16(b[4:]),
		Flags:   binary.BigEndian.Uint16(b[6:]),
	}, nil
}

// ReadServerHello reads a server hello from r. It returns ErrBadMagic if the first
// four bytes are not "KEYQ" and ErrNoVersion if the server answered version 0 (the
// hello is returned too).
func ReadServerHello(r io.Reader) (ServerHello, error) {
	var b [ServerHelloSize]byte
	if err := readHello(r, b[:]); err != nil {
		return ServerHello{}, fmt.Errorf("read server hello: %w", err)
	}
	h := ServerHello{
		Version:    binary.BigEndian.Uint16(b[4:]),
		Flags:      binary.BigEndian.Uint16(b[6:]),
		MaxMessage: binary.BigEndian.Uint32(b[8:]),
		MaxFrame:   binary.BigEndian.Uint32(b[12:]),
	}
	if h.Version == 0 {
		return h, fmt.Errorf("read server hello: %w", ErrNoVersion)
	}
	return h, nil
}

// readHello fills b from r and checks the magic as soon as its four bytes are in, so
// a peer that is not speaking keyq is refused without waiting for the rest.
func readHello(r io.Reader, b []byte) error {
	if _, err := io.ReadFull(r, b[:len(Magic)]); err != nil {
		return err
	}
	if string(b[:len(Magic)]) != Magic {
		return ErrBadMagic
	}
	if _, err := io.ReadFull(r, b[len(Magic):]); err != nil {
		return noEOF(err)
	}
	return nil
}

// noEOF turns an EOF in the middle of something into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
