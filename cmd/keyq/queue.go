package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
)

func newPutCmd() *cobra.Command {
	var (
		f          clientFlags
		delay, ttl time.Duration
	)
	cmd := &cobra.Command{
		Use:   "put QUEUE [FILE]",
		Short: "Append a file, or standard input, to a queue as one message",
		Long: `Put sends the whole of FILE (or standard input when FILE is absent or "-") as one
message to the tail of QUEUE, creating the queue if needed, and prints the message's id.
A message may be empty; one over the server's limit is refused. With --delay it is not
delivered before that time has passed; with --ttl it expires (is never delivered) once
that time has passed.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: f.completeQueue,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			src := "-"
			if len(args) == 2 {
				src = args[1]
			}
			opts := []client.PutOption{client.Delay(delay), client.TTL(ttl)}
			return put(cmd, &f, args[0], src, opts)
		}),
	}
	f.register(cmd)
	durationFlag(cmd.Flags(), &delay, "delay", 0, broker.MaxDuration,
		"hold the message back this long (e.g. 10s)")
	durationFlag(cmd.Flags(), &ttl, "ttl", 0, broker.MaxDuration,
		"the message expires after this long (e.g. 1h); 0 for the queue's default")
	return cmd
}

func put(cmd *cobra.Command, f *clientFlags, queue, src string, opts []client.PutOption) error {
	c, err := f.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()

	if src == "-" && readsTerminal(cmd.InOrStdin()) {
		fmt.Fprintln(cmd.ErrOrStderr(),
			"keyq put: reading the message from standard input; end it with Ctrl-D")
	}
	data, err := readMessage(cmd.InOrStdin(), src, c.MaxMessageBytes())
	if err != nil {
		return err
	}
	id, err := c.Put(cmd.Context(), queue, data, opts...)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), id)
	return err
}

// readsTerminal reports whether r is a terminal, where a person may be typing.
func readsTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readMessage reads the message from the file src, or from stdin when src is "-".
// It reads at most limit+1 bytes, so that a huge file is refused without being
// loaded whole.
func readMessage(stdin io.Reader, src string, limit int) ([]byte, error) {
	r := stdin
	name := "standard input"
	if src != "-" {
		file, err := os.Open(src)
		if err != nil {
			return nil, err // *PathError names the file
		}
		defer file.Close()
		r, name = file, src

		fi, err := file.Stat()
		if err == nil && fi.Mode().IsRegular() && fi.Size() > int64(limit) {
			return nil, fmt.Errorf("%s: message too large: %d bytes, over the limit of %d",
				name, fi.Size(), limit)
		}
	}

	data, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: message too large: over the limit of %d bytes", name, limit)
	}
	return data, nil
}

func newGetCmd() *cobra.Command {
	var (
		f      clientFlags
		output string
		wait   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "get QUEUE",
		Short: "Take the message at the head of a queue and write it to standard output",
		Long: `Get takes the message at the head of QUEUE and writes its bytes, exactly, to
standard output (or to the file named by --output). When the queue is empty it writes
nothing there, says so on standard error and exits with status 3; with --wait it first
waits that long for a message. The message leaves the queue only once it is written:
if get fails or is killed before, the message goes back to the head of the queue.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeQueue,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return get(cmd, &f, args[0], output, wait)
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "",
		"write the message to this file instead of standard output (not created when empty)")
	durationFlag(cmd.Flags(), &wait, "wait", 0, 0,
		"wait this long for a message when the queue is empty (e.g. 5s)")
	return cmd
}

func get(cmd *cobra.Command, f *clientFlags, queue, output string, wait time.Duration) error {
	c, err := f.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()

	// The output file is made ready before the message is taken, so that a path
	// that cannot be written costs no message.
	w := cmd.OutOrStdout()
	var out *outputFile
	if output != "" {
		if out, err = createOutput(output); err != nil {
			return err
		}
		defer out.discard()
		w = out.f
	}

	// Taken under a lease bound to this connection, and acked once written: if the
	// write fails, or this process dies, the message goes back to the queue.
	ds, err := c.Reserve(cmd.Context(), []string{queue}, client.ReserveOptions{Wait: wait})
	if errors.Is(err, client.ErrEmpty) {
		return emptyError{queue: queue}
	}
	if err != nil {
		return &doingError{fmt.Sprintf("get from queue %q", queue), err}
	}
	msg := ds[0]

	_, err = w.Write(msg.Data)
	if err == nil && out != nil {
		err = out.commit()
	}
	if err != nil {
		if nerr := c.Nack(cmd.Context(), msg.DeliveryID, 0); nerr != nil {
			return fmt.Errorf("write message %d (and give it back to queue %q: %s): %w",
				msg.ID, queue, clientText(nerr.Error()), err)
		}
		return fmt.Errorf("write message %d, given back to queue %q: %w", msg.ID, queue, err)
	}
	if err := c.Ack(cmd.Context(), msg.DeliveryID); err != nil {
		return &doingError{
			fmt.Sprintf("message %d written, but not removed from queue %q", msg.ID, queue),
			err,
		}
	}
	return nil
}

// outputFile is the file `get --output` (and `reserve --output`) writes: a temporary
// file beside the destination, renamed over it once the message is written whole, so
// that a reader never sees half a message. A destination that exists and is not a
// regular file (/dev/null, /dev/stdout, a FIFO) is written in place instead: a
// rename would replace the device or pipe with a file (as root, `-o /dev/null`
// turned /dev/null into a regular file).
type outputFile struct {
	f      *os.File // the temporary file, or the destination written in place
	path   string
	direct bool // f is the destination itself
	done   bool
}

func createOutput(path string) (*outputFile, error) {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, fmt.Errorf("create output %s: is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open output %s: %w", path, err)
		}
		return &outputFile{f: f, path: path, direct: true}, nil
	}
	// A symbolic link stays one: the file it points to is replaced.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyq-get-*")
	if err != nil {
		return nil, fmt.Errorf("create output for %s: %w", path, err)
	}
	return &outputFile{f: tmp, path: path}, nil
}

// commit closes the temporary file and renames it to the destination, or closes the
// destination written in place.
func (o *outputFile) commit() error {
	if o.direct {
		o.done = true
		if err := o.f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", o.path, err)
		}
		return nil
	}
	if err := o.f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	if err := os.Rename(o.f.Name(), o.path); err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	o.done = true
	return nil
}

// discard removes the temporary file unless commit renamed it.
func (o *outputFile) discard() {
	if o.done {
		return
	}
	o.f.Close()
	if !o.direct {
		os.Remove(o.f.Name())
	}
}

func newLenCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "len QUEUE",
		Short: "Print the number of messages in a queue",
		Long: `Len prints the number of messages waiting in QUEUE; 0 for a queue that does
not exist.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeQueue,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()

			n, err := c.Len(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), n)
			return err
		}),
	}
	f.register(cmd)
	return cmd
}

// emptyError reports that a get found its queue empty; it matches client.ErrEmpty.
type emptyError struct{ queue string }

func (e emptyError) Error() string { return fmt.Sprintf("queue %q is empty", e.queue) }
func (e emptyError) Unwrap() error { return client.ErrEmpty }
