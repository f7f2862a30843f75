package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/keyq/keyq/internal/bench"
)

// beanstalkDriver drives beanstalkd with a small client of its own: one tube per
// queue; put to put, reserve and delete to take (beanstalkd has no single command
// that removes a job). A round of Depth commands is written at once and its replies
// read in order, which beanstalkd's protocol allows.
type beanstalkDriver struct{ addr string }

func (d *beanstalkDriver) Name() string { return "beanstalkd" }

func (d *beanstalkDriver) Setup(context.Context, []string) error { return nil }

func (d *beanstalkDriver) Dial(ctx context.Context) (bench.Conn, error) {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dial beanstalkd %s: %w", d.addr, err)
	}
	return &beanstalkConn{
		c:  c,
		br: bufio.NewReaderSize(c, 64<<10),
		bw: bufio.NewWriterSize(c, 64<<10),
	}, nil
}

type beanstalkConn struct {
	c       net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	using   string // tube that puts go to
	watched string // tube reserves come from
	ids     []uint64
}

// command sends one command line and reads the status line of its reply.
func (bc *beanstalkConn) command(line string) (string, error) {
	bc.bw.WriteString(line + "\r\n")
	if err := bc.bw.Flush(); err != nil {
		return "", err
	}
	return bc.readLine()
}

func (bc *beanstalkConn) readLine() (string, error) {
	line, err := bc.br.ReadSlice('\n')
	if err != nil {
		return "", fmt.Errorf("read beanstalkd reply: %w", err)
	}
	return string(bytes.TrimRight(line, "\r\n")), nil
}

func (bc *beanstalkConn) use(tube string) error {
	if bc.using == tube {
		return nil
	}
	if _, err := bc.command("use " + tube); err != nil {
		return err
	}
	bc.using = tube
	return nil
}

// watch makes tube the only one reserves come from.
func (bc *beanstalkConn) watch(tube string) error {
	if bc.watched == tube {
		return nil
	}
	if _, err := bc.command("watch " + tube); err != nil {
		return err
	}
	old := bc.watched
	if old == "" {
		old = "default"
	}
	if _, err := bc.command("ignore " + old); err != nil {
		return err
	}
	bc.watched = tube
	return nil
}

func (bc *beanstalkConn) Put(_ context.Context, queue string, msgs [][]byte) error {
	if err := bc.use(queue); err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Fprintf(bc.bw, "put 1024 0 60 %d\r\n", len(m))
		bc.bw.Write(m)
		bc.bw.WriteString("\r\n")
	}
	if err := bc.bw.Flush(); err != nil {
		return fmt.Errorf("send puts: %w", err)
	}
	for range msgs {
		line, err := bc.readLine()
		if err != nil {
			return err
		}
		if !bytes.HasPrefix([]byte(line), []byte("INSERTED ")) {
			return fmt.Errorf("put: beanstalkd answered %q", line)
		}
	}
	return nil
}

// Get reserves up to n jobs (the first waiting up to wait, rounded up to a second,
// the protocol's unit), then deletes them in one pipelined round.
func (bc *beanstalkConn) Get(_ context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	if err := bc.watch(queue); err != nil {
		return nil, err
	}
	secs := int((wait + time.Second - 1) / time.Second)
	fmt.Fprintf(bc.bw, "reserve-with-timeout %d\r\n", secs)
	for range n - 1 {
		bc.bw.WriteString("reserve-with-timeout 0\r\n")
	}
	if err := bc.bw.Flush(); err != nil {
		return nil, fmt.Errorf("send reserves: %w", err)
	}
	out, err := bc.readReserved(n)
	if err != nil || len(out) == 0 {
		return out, err
	}
	return out, bc.deleteReserved()
}

// readReserved reads n reserve replies and keeps the jobs' ids for deleteReserved.
func (bc *beanstalkConn) readReserved(n int) ([][]byte, error) {
	bc.ids = bc.ids[:0]
	var out [][]byte
	for range n {
		line, err := bc.readLine()
		if err != nil {
			return nil, err
		}
		var id uint64
		var size int
		if _, err := fmt.Sscanf(line, "RESERVED %d %d", &id, &size); err != nil {
			if line == "TIMED_OUT" || line == "DEADLINE_SOON" {
				continue
			}
			return nil, fmt.Errorf("reserve: beanstalkd answered %q", line)
		}
		body := make([]byte, size+2)
		if _, err := io.ReadFull(bc.br, body); err != nil {
			return nil, fmt.Errorf("read job %d: %w", id, err)
		}
		bc.ids = append(bc.ids, id)
		out = append(out, body[:size])
	}
	return out, nil
}

func (bc *beanstalkConn) deleteReserved() error {
	for _, id := range bc.ids {
		bc.bw.WriteString("delete " + strconv.FormatUint(id, 10) + "\r\n")
	}
	if err := bc.bw.Flush(); err != nil {
		return fmt.Errorf("send deletes: %w", err)
	}
	for _, id := range bc.ids {
		line, err := bc.readLine()
		if err != nil {
			return err
		}
		if line != "DELETED" {
			return fmt.Errorf("delete %d: beanstalkd answered %q", id, line)
		}
	}
	return nil
}

func (bc *beanstalkConn) Close() error { return bc.c.Close() }
