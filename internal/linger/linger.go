// Package linger closes a TCP connection gently while its client may still be
// sending, for the front doors that close a connection on a fatal error or a
// shutdown with replies the client has not read yet.
package linger

import (
	"io"
	"net"
	"time"
)

// Timeout is how long Close keeps reading (and discarding) what the client still
// sends. MaxBytes bounds what it discards, and so its CPU: a client pipelining at
// full speed sends megabytes in that time, and the time must bind first, since
// closing with unread input resets the connection, and a reset destroys the replies
// the client has not read yet.
const (
	Timeout  = 500 * time.Millisecond
	MaxBytes = 256 << 20
)

// Close closes nc: on TCP it first sends FIN, then reads and discards what the
// client still sends until it closes its side, Timeout passes or MaxBytes came, so
// that the close does not reset the connection before the client reads the last
// replies.
func Close(nc net.Conn) {
	defer nc.Close()
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	if err := tc.CloseWrite(); err != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(Timeout))
	io.Copy(io.Discard, io.LimitReader(nc, MaxBytes))
}
