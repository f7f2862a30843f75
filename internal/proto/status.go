package proto

import "strconv"

// Status is a reply's status code. Codes below 16 are outcomes (OK, Empty); codes of
// 16 and above are errors, and a reply with an error status carries a UTF-8 text.
type Status uint8

// The status codes of version 1. Values are on the wire: never renumber.
const (
	StatusOK    Status = 0
	StatusEmpty Status = 1

	StatusBadFrame           Status = 16 // fatal
	StatusFrameTooLarge      Status = 17 // fatal
	StatusUnknownOp          Status = 18
	StatusBadRequest         Status = 19
	StatusInvalidKey         Status = 20
	StatusMessageTooLarge    Status = 21
	StatusShuttingDown       Status = 22
	StatusInternal           Status = 23
	StatusDiskFull           Status = 24
	StatusQueueFull          Status = 25 // the queue is at its configured limit
	StatusNotFound           Status = 26 // no such delivery (unknown, acked or expired)
	StatusTooManyConnections Status = 27 // fatal
	StatusServerFull         Status = 28 // the server holds as much as its memory limit allows
)

// firstError is the lowest error code; codes below it are outcomes.
const firstError Status = 16

var statusNames = map[Status]string{
	StatusOK: "OK", StatusEmpty: "Empty", StatusBadFrame: "BadFrame",
	StatusFrameTooLarge: "FrameTooLarge", StatusUnknownOp: "UnknownOp",
	StatusBadRequest: "BadRequest", StatusInvalidKey: "InvalidKey",
	StatusMessageTooLarge: "MessageTooLarge", StatusShuttingDown: "ShuttingDown",
	StatusInternal: "Internal", StatusDiskFull: "DiskFull", StatusQueueFull: "QueueFull",
	StatusNotFound: "NotFound", StatusTooManyConnections: "TooManyConnections",
	StatusServerFull: "ServerFull",
}

// String returns the status's name as PROTOCOL.md spells it, or status(N).
func (s Status) String() string {
	if name, ok := statusNames[s]; ok {
		return name
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// IsError reports whether s is an error code (16 and above, known or not).
func (s Status) IsError() bool { return s >= firstError }

// Fatal reports whether the server closes the connection after a reply with s: the
// stream can no longer be trusted to be in step, or the server will not serve it.
func (s Status) Fatal() bool {
	switch s {
	case StatusBadFrame, StatusFrameTooLarge, StatusTooManyConnections:
		return true
	}
	return false
}
