package client

import (
	"errors"

	"github.com/keyq/keyq/internal/proto"
)

// Sentinel errors a caller branches on with errors.Is.
var (
	// ErrEmpty is returned by Get, GetBatch and Reserve when the queue has no message
	// (or does not exist), within the wait if one was asked.
	ErrEmpty = errors.New("keyq: queue empty")

	// ErrClosed is returned by every call made after, or cut short by, Close.
	ErrClosed = errors.New("keyq: client closed")

	// ErrConnectionLost wraps the cause of a connection's death (a read or write
	// error, the server hanging up, a fatal error reply). Once it is dead, every call
	// on the Client fails at once with an error that matches it; dial again to go on.
	// When a server shuts down gracefully, it answers every request it read, then
	// says goodbye: the calls still waiting then fail with an error that matches
	// ErrConnectionLost and an *Error with CodeShuttingDown, and were never run, so
	// they may be sent again. Without the goodbye (a crash, a network failure), the
	// outcome of a call that got no reply is unknown.
	ErrConnectionLost = errors.New("keyq: connection lost")
)

// Code is a status code of the wire protocol (docs/PROTOCOL.md). Codes 16 and above
// are errors; a Client turns the non-error codes into results (ErrEmpty for Empty).
type Code uint8

// The error codes of protocol version 1, as docs/PROTOCOL.md numbers them. A newer
// server may send codes not listed here; they are errors all the same.
const (
	CodeBadFrame           Code = 16 // fatal: the frame could not be parsed
	CodeFrameTooLarge      Code = 17 // fatal: the frame is over the server's max frame
	CodeUnknownOp          Code = 18 // the server does not know the operation
	CodeBadRequest         Code = 19 // the request is invalid (unknown option, bad flags)
	CodeInvalidKey         Code = 20 // the queue name breaks the key rules
	CodeMessageTooLarge    Code = 21 // the message is over the server's limit
	CodeShuttingDown       Code = 22 // the server is stopping and did not run the request
	CodeInternal           Code = 23 // the server failed
	CodeDiskFull           Code = 24 // the server has no disk space for the message
	CodeQueueFull          Code = 25 // the queue reached its configured limit
	CodeNotFound           Code = 26 // no such delivery (ack, nack, touch)
	CodeTooManyConnections Code = 27 // fatal: the server is at its connection limit
	CodeServerFull         Code = 28 // the server holds as much as its memory limit allows
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
	// Op names the call that failed, as the protocol names its operation in lower
	// case: "put", "get", "len", "ping", "stats", "reserve", "ack", "nack", "touch",
	// "putbatch", "getbatch", "queue_set" or "queue_show"; empty
	// for an error that answers no call (such as TooManyConnections).
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

// Error returns "keyq OP: TEXT", or "keyq: TEXT" for an error that answers no call.
func (e *Error) Error() string {
	text := e.Text
	if text == "" {
		text = e.Code.String()
	}
	if e.Op == "" {
		return "keyq: " + text
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
