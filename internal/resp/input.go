package resp

import (
	"errors"
	"os"
	"slices"
	"time"
)

// watchBytes bounds what a watcher reads ahead while a command blocks: past it the
// watcher stops and TCP holds the client back until the command returns.
const watchBytes = 64 << 10

// watchRead is how much room a watcher makes for each read.
const watchRead = 4 << 10

// aLongTimeAgo is a deadline in the past: it makes a read in progress, and every
// later one, fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// input is what a connection's guard reads from: first the bytes a watcher read
// ahead while a command blocked, then the connection itself. Before it reads from
// the connection it writes the replies gathered so far, because the reader only
// reads when it holds no whole command: every command read has run.
type input struct {
	c       *conn
	pending []byte // read by the watcher and not yet passed on
	err     error  // the read error that ended the watcher, once pending is passed on
}

// Read passes on the bytes read ahead, or flushes the replies and reads from the
// connection.
func (in *input) Read(p []byte) (int, error) {
	if len(in.pending) > 0 {
		n := copy(p, in.pending)
		in.pending = in.pending[n:]
		if len(in.pending) == 0 {
			in.pending = nil
		}
		return n, nil
	}
	if in.err != nil {
		return 0, in.err
	}
	c := in.c
	c.flush()
	if c.writeErr != nil {
		return 0, c.writeErr
	}
	return c.nc.Read(p)
}

// watch starts a goroutine that reads ahead while a command blocks, so that the
// connection notices the client going and cancels its context (C01), and returns
// the function that stops it and waits for it. Between the two the watcher owns
// in.pending and in.err.
func (in *input) watch() (stop func()) {
	c := in.c
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.readAhead()
	}()
	return func() {
		c.nc.SetReadDeadline(aLongTimeAgo)
		<-done
		c.nc.SetReadDeadline(time.Time{})
		// closeRead may have come meanwhile; its deadline must stand.
		if c.readClosed.Load() {
			c.nc.SetReadDeadline(aLongTimeAgo)
		}
	}
}

// readAhead reads into pending until it holds watchBytes or a read fails. A read
// that fails for stop's deadline is not an error; any other failure is kept for
// Read and cancels the connection's context.
func (in *input) readAhead() {
	for len(in.pending) < watchBytes {
		in.pending = slices.Grow(in.pending, watchRead)
		n, err := in.c.nc.Read(in.pending[len(in.pending):cap(in.pending)])
		in.pending = in.pending[:len(in.pending)+n]
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return
		}
		if err != nil {
			in.err = err
			in.c.cancel()
			return
		}
	}
}
