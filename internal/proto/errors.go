package proto

import (
	"errors"
	"fmt"
)

// Error is a protocol error: a status code and a text for a person. The server sends
// it as an error reply; the client returns it from a call whose reply carried an error
// status. Branch on Code (or errors.Is with an *Error of the same code), never on Text.
type Error struct {
	Code Status
	Text string
}

// Errorf returns an *Error with the given code and a formatted text.
func Errorf(code Status, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Error returns the text, prefixed with the status name.
func (e *Error) Error() string {
	if e.Text == "" {
		return "keyq: " + e.Code.String()
	}
	return "keyq: " + e.Code.String() + ": " + e.Text
}

// Fatal reports whether the connection is closed after this error.
func (e *Error) Fatal() bool { return e.Code.Fatal() }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, &proto.Error{Code: proto.StatusInvalidKey}) matches any text.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	// The common cases return before pe exists: errors.As makes it escape, so
	// declaring it first would allocate on every call, nil errors included.
	if err == nil {
		return nil
	}
	if pe, ok := err.(*Error); ok {
		return pe
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

// Errors of the handshake.
var (
	// ErrBadMagic means the peer did not open with "KEYQ": it is not a keyq peer.
	ErrBadMagic = errors.New("proto: bad magic")

	// ErrNoVersion means the peers have no protocol version in common.
	ErrNoVersion = errors.New("proto: no protocol version in common")
)
