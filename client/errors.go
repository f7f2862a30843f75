package client

import (
	"errors"

	"github.com/keyq/keyq/internal/proto"
)

// Sentinel errors a caller branches on with errors.Is.
var (
	// ErrEmpty is returned by Get when the queue has no message (or does not exist).
	ErrEmpty = errors.New("keyq: queue empty")

	// ErrClosed is returned by every call made after, or cut short by, Close.
	ErrClosed = errors.New("keyq: client closed")

	// ErrConnectionLost wraps the cause of a connection's death (a read or write
	// error, the server hanging up, a fatal error reply). Once it is dead, every call
	// on the Client fails at once with an error that matches it; dial again to go on.
	ErrConnectionLost = errors.New("keyq: connection lost")
)

// Code is a status code of the wire protocol (docs/PROTOCOL.md). Codes 16 and above
// are errors; a Client turns the non-error codes into results (ErrEmpty for Empty).
type Code uint8

// The error codes of protocol version 1. A newer server may send codes not listed
// here; they are errors all the same.
const (
	CodeBadFrame           = Code(proto.StatusBadFrame)
	CodeFrameTooLarge      = Code(proto.StatusFrameTooLarge)
	CodeUnknownOp          = Code(proto.StatusUnknownOp)
	CodeBadRequest         = Code(proto.StatusBadRequest)
	CodeInvalidKey         = Code(proto.StatusInvalidKey)
	CodeMessageTooLarge    = Code(proto.StatusMessageTooLarge)
	CodeShuttingDown       = Code(proto.StatusShuttingDown)
	CodeInternal           = Code(proto.StatusInternal)
	CodeDiskFull           = Code(proto.StatusDiskFull)
	CodeQueueFull          = Code(proto.StatusQueueFull)
	CodeNotFound           = Code(proto.StatusNotFound)
	CodeTooManyConnections = Code(proto.StatusTooManyConnections)
)

// String returns the code's name as docs/PROTOCOL.md spells it, such as "InvalidKey".
func (c Code) String() string { return proto.Status(c).String() }

// Error is an error reply from the server, or a request the Client refused before
// sending for the same reason the server would have (a key over 255 bytes, a message
// over the server's limit). Branch on Code, never on Text:
//
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == client.CodeInvalidKey { ... }
//
// or, equally, errors.Is(err, &client.Error{Code: client.CodeInvalidKey}).
type Error struct {
	// Op names the call that failed: "put", "get", "len", "ping" or "stats".
	Op string
	// Code is the status code.
	Code Code
	// Text explains the error for a person, such as
	// "invalid key: contains control character 0x0a at byte 4".
	Text string
	// Fatal is set when the connection is dead after this error (the server hangs
	// up after a fatal status): every later call on the Client fails.
	Fatal bool
}

// Error returns "keyq OP: TEXT".
func (e *Error) Error() string {
	text := e.Text
	if text == "" {
		text = e.Code.String()
	}
	return "keyq " + e.Op + ": " + text
}

// Is reports whether target is an *Error with the same Code, whatever its text.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// errorFrom turns a protocol error met in call op into an *Error.
func errorFrom(op string, pe *proto.Error) *Error {
	return &Error{Op: op, Code: Code(pe.Code), Text: pe.Text, Fatal: pe.Fatal()}
}
