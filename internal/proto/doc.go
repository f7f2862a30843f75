// Package proto is the codec of keyq's native wire protocol, version 1, as specified in
// docs/PROTOCOL.md: the handshake, frames, request and reply bodies, and the status
// codes with the error type that carries them. It does no networking of its own; the
// server (internal/server) and the Go client (client/) both build on it.
//
// Every integer on the wire is big-endian. A frame is a u32 length, then an opcode, a
// flags (request) or status (reply) byte, a u32 request id and the body.
package proto
