package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/keyq/keyq/internal/bench"
	"github.com/keyq/keyq/internal/proto"
)

// keyqWireDriver drives keyq without the public client: a round of Depth requests is
// written into one buffer and flushed once, then its replies are read, the way
// go-redis sends a pipeline. It is a yardstick, not a client: the gap between its
// row and keyq's is what the client costs per request. Batches are left to the
// client's row.
type keyqWireDriver struct{ addr string }

func (d *keyqWireDriver) Name() string { return "keyq-wire" }

// Configure implements bench.Configurer: single PUTs and GETs only.
func (d *keyqWireDriver) Configure(cfg bench.Config) error {
	if cfg.Batch > 1 || cfg.Mix != bench.MixPutGet {
		return fmt.Errorf("keyq-wire runs put-get without batches: %w", bench.ErrNotSupported)
	}
	return nil
}

func (d *keyqWireDriver) Setup(context.Context, []string) error { return nil }

func (d *keyqWireDriver) Dial(ctx context.Context) (bench.Conn, error) {
	var dialer net.Dialer
	nc, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dial keyq %s: %w", d.addr, err)
	}
	bw, br := bufio.NewWriterSize(nc, 64<<10), bufio.NewReaderSize(nc, 64<<10)
	bw.Write(proto.ClientHello{Version: proto.Version}.Append(nil))
	if err := bw.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("send hello: %w", err)
	}
	hello, err := proto.ReadServerHello(br)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("read hello: %w", err)
	}
	return &keyqWireConn{nc: nc, fw: proto.NewWriter(bw),
		fr: proto.NewReader(br, int(hello.MaxFrame))}, nil
}

type keyqWireConn struct {
	nc   net.Conn
	fw   *proto.Writer
	fr   *proto.Reader
	id   uint32
	body []byte
}

// send writes one request with a key, options and rest into the buffer.
func (c *keyqWireConn) send(op proto.Op, queue string, rest []byte, opts ...proto.Option) error {
	body, err := proto.AppendKey(c.body[:0], queue)
	if err == nil {
		body, err = proto.AppendOptions(body, opts...)
	}
	if err != nil {
		return err
	}
	c.body = append(body, rest...)
	c.id++
	return c.fw.WriteFrame(op, 0, c.id, c.body)
}

func (c *keyqWireConn) Put(_ context.Context, queue string, msgs [][]byte) error {
	for _, m := range msgs {
		if err := c.send(proto.OpPut, queue, m); err != nil {
			return err
		}
	}
	if err := c.fw.Flush(); err != nil {
		return fmt.Errorf("send puts: %w", err)
	}
	for range msgs {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("read put reply: %w", err)
		}
		if f.Status() != proto.StatusOK {
			return fmt.Errorf("put: status %s: %s", f.Status(), f.Body)
		}
	}
	return nil
}

// Get sends n GETs, the first with the wait; replies to a waiting GET may come out
// of order, so they are counted, not matched.
func (c *keyqWireConn) Get(_ context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	for i := range n {
		var opts []proto.Option
		if i == 0 && wait > 0 {
			opts = append(opts, proto.DurationOption(proto.OptGetWait, wait))
		}
		if err := c.send(proto.OpGet, queue, nil, opts...); err != nil {
			return nil, err
		}
	}
	if err := c.fw.Flush(); err != nil {
		return nil, fmt.Errorf("send gets: %w", err)
	}
	var out [][]byte
	for range n {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, fmt.Errorf("read get reply: %w", err)
		}
		switch f.Status() {
		case proto.StatusOK:
			out = append(out, append([]byte(nil), f.Body[8:]...)) // after the message id
		case proto.StatusEmpty:
		default:
			return out, fmt.Errorf("get: status %s: %s", f.Status(), f.Body)
		}
	}
	return out, nil
}

func (c *keyqWireConn) Close() error { return c.nc.Close() }
