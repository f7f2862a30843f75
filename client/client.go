package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/keyq/keyq/internal/proto"
)

// readBufferSize is the size of the connection's read buffer.
const readBufferSize = 64 << 10

// minReplyLimit is the least frame length the Client accepts in a reply, whatever
// the server announced: a STATS document of a server with many queues may be larger
// than its max frame. The frame reader allocates only as bytes arrive.
const minReplyLimit = 64 << 20

// Client is one connection to a keyq server. Its methods may be called from any
// number of goroutines at once: requests are pipelined on the connection and each
// reply is matched to its caller by request id. Create one with Dial and release it
// with Close. Pipeline sends many requests at once and reads their replies in one go.
//
// A Client does not reconnect. Once its connection is dead, every call fails at once
// with an error that matches ErrConnectionLost (or ErrClosed after Close).
type Client struct {
	conn       net.Conn
	addr       string
	maxMessage int
	maxFrame   int // the server's, from its hello; 0: not told

	wake chan struct{}  // buffered: tells the writer goroutine that wbuf has frames
	done chan struct{}  // closed once the connection is dead or closed
	wg   sync.WaitGroup // the reader and writer goroutines

	mu      sync.Mutex // protects the fields below
	pending callTable  // calls waiting for a reply
	wbuf    []byte     // frames queued for the writer, in the order sent
	spare   []byte     // a written buffer, to swap for wbuf
	unsent  []*call    // the calls whose frames are in wbuf, in order
	writing bool       // a caller or the writer goroutine will write wbuf
	// writeDeadline is the connection's write deadline as last set; only the one
	// who holds writing (a caller or the writer goroutine) reads or sets it.
	writeDeadline time.Time
	err           error // why the connection is dead; set once, never cleared
}

// Message is a message taken from a queue.
type Message struct {
	// Queue is the queue it was taken from.
	Queue string
	// ID is the id the server gave the message when it was put.
	ID uint64
	// Data is the message's bytes (empty, not nil, for a zero-byte message). It
	// belongs to the caller.
	Data []byte
	// DeadLetter is set for a message taken from a dead-letter queue: where it came
	// from and why it was set aside. It is nil otherwise, and always from Get.
	DeadLetter *DeadLetter
}

// Dial connects to the keyq server at addr (host:port) and does the protocol
// handshake. ctx bounds the connection and the handshake only; once Dial returns,
// ending ctx has no effect on the Client.
func Dial(ctx context.Context, addr string, opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	conn, err := cfg.dial(ctx, "tcp", addr)
	if err != nil {
		var ne *net.OpError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("keyq: %w", err) // it names the address
		}
		return nil, fmt.Errorf("keyq: dial %s: %w", addr, err)
	}

	br := bufio.NewReaderSize(conn, readBufferSize)
	hello, err := handshake(ctx, conn, br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("keyq: handshake with %s: %w", addr, err)
	}

	c := &Client{
		conn:       conn,
		addr:       addr,
		maxMessage: int(hello.MaxMessage),
		maxFrame:   int(hello.MaxFrame),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
	}
	limit := max(int(hello.MaxFrame), int(hello.MaxMessage)+proto.FrameOverhead, minReplyLimit)
	fr := proto.NewReader(br, limit)
	c.wg.Go(func() { c.readLoop(fr) })
	c.wg.Go(c.writeLoop)
	return c, nil
}

// handshake sends the client hello and reads the server's, within ctx.
func handshake(ctx context.Context, conn net.Conn, br *bufio.Reader) (proto.ServerHello, error) {
	// When ctx ends, the reads and writes below are unblocked by moving the deadline
	// to the past; ctx's own deadline is not copied to conn, so that the error then
	// is always ctx's.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })

	hello := proto.ClientHello{Version: proto.Version}.Append(nil)
	_, err := conn.Write(hello)
	var sh proto.ServerHello
	if err == nil {
		sh, err = proto.ReadServerHello(br)
	}
	if !stop() || ctx.Err() != nil {
		return sh, ctx.Err()
	}
	if err != nil {
		return sh, err
	}
	if sh.Version != proto.Version {
		return sh, fmt.Errorf("server answered protocol version %d; this client speaks %d",
			sh.Version, proto.Version)
	}
	return sh, conn.SetDeadline(time.Time{})
}

// MaxMessageBytes returns the largest message the server accepts, as it announced
// in the handshake. Put refuses larger ones without sending them.
func (c *Client) MaxMessageBytes() int { return c.maxMessage }

// Put appends a copy of data to the tail of queue, creating the queue if needed,
// and returns the id the server gave the message. A zero-byte message is a message.
// Options: Delay holds the message back, TTL lets it expire.
//
// If ctx ends before the reply comes, Put returns ctx's error at once; the server
// may still have stored the message if the request had already been sent.
func (c *Client) Put(
	ctx context.Context, queue string, data []byte, opts ...PutOption,
) (uint64, error) {
	if err := c.checkSize("put", len(data)); err != nil {
		return 0, err
	}
	cl := getCall(proto.OpPut)
	var err error
	if cl.frame, err = encodePut(cl.frame, queue, data, opts); err != nil {
		putCall(cl)
		return 0, err
	}
	return do(c, ctx, cl, decodeU64)
}

// Get takes the message at the head of queue. When the queue is empty or does not
// exist, it returns ErrEmpty at once, or with the Wait option, once the wait has
// passed without a message (the server may cut a long wait to its own maximum).
//
// A get removes the message before the reply is on its way, so a message the server
// took for a caller that has gone is lost. Get therefore ends a wait on the server
// before ctx's deadline, with a margin for the reply (see waitWithin): a wait longer
// than ctx allows returns ErrEmpty a little before the deadline. But if ctx is
// cancelled, or its deadline passes anyway, after the request was sent, Get returns
// ctx's error at once and the server may still take a message for it. Use Reserve
// where that matters: its messages come back unless acknowledged.
func (c *Client) Get(ctx context.Context, queue string, opts ...GetOption) (Message, error) {
	cl := getCall(proto.OpGet)
	var err error
	wait := waitWithin(ctx, getOptionsOf(opts).wait)
	if cl.frame, err = encodeGet(cl.frame, queue, wait); err != nil {
		putCall(cl)
		return Message{}, err
	}
	cl.queue = queue
	return do(c, ctx, cl, decodeGet)
}

// GetWait is Get with the Wait option: it waits up to wait for a message.
func (c *Client) GetWait(ctx context.Context, queue string, wait time.Duration) (Message, error) {
	return c.Get(ctx, queue, Wait(wait))
}

// Len returns the number of messages in queue; 0 for a queue that does not exist.
func (c *Client) Len(ctx context.Context, queue string) (int64, error) {
	cl := getCall(proto.OpLen)
	var err error
	if cl.frame, err = encodeLen(cl.frame, queue); err != nil {
		putCall(cl)
		return 0, err
	}
	return do(c, ctx, cl, decodeLen)
}

// Ping sends a few bytes that the server echoes, and checks the echo: it tells that
// the connection and the server's loop are alive.
func (c *Client) Ping(ctx context.Context) error {
	cl := getCall(proto.OpPing)
	var want [8]byte
	binary.BigEndian.PutUint64(want[:], uint64(time.Now().UnixNano()))
	cl.frame = endFrame(append(beginFrame(cl.frame, proto.OpPing), want[:]...), 0)

	if err := c.roundTrip(ctx, cl); err != nil {
		return err
	}
	defer putCall(cl)
	if err := cl.expectOK(); err != nil {
		return err
	}
	if !bytes.Equal(cl.body, want[:]) {
		return cl.badReply(fmt.Errorf("echo of %d bytes differs from the %d sent",
			len(cl.body), len(want)))
	}
	return nil
}

// Close closes the connection. Calls still waiting for a reply fail with ErrClosed,
// as does every later call. Close waits for the Client's goroutines to end and is
// safe to call more than once.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	c.wg.Wait()
	return nil
}

func appendKey(dst []byte, op, queue string) ([]byte, error) {
	dst, err := proto.AppendKey(dst, queue)
	if pe := proto.AsError(err); pe != nil {
		return nil, errorFrom(op, pe)
	}
	return dst, err
}

func appendKeyAndOptions(dst []byte, op, queue string, opts ...proto.Option) ([]byte, error) {
	dst, err := appendKey(dst, op, queue)
	if err != nil {
		return nil, err
	}
	return appendOptions(dst, op, opts...)
}

func appendOptions(dst []byte, op string, opts ...proto.Option) ([]byte, error) {
	dst, err := proto.AppendOptions(dst, opts...)
	if pe := proto.AsError(err); pe != nil {
		return nil, errorFrom(op, pe)
	}
	return dst, err
}
