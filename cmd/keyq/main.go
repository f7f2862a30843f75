// Command keyq is the keyq message-queue server and its command-line client in one
// binary: `keyq serve` runs the server; `keyq put`, `get`, `len` and `stats` talk to
// one. Run `keyq --help` for the list of commands.
//
// Exit statuses: 0 when the command did what it was asked, 3 when `keyq get` or
// `keyq reserve` found the queue empty, 2 for a usage error (unknown command or flag,
// wrong arguments), 1 for any other error. A second SIGINT or SIGTERM, while `keyq
// serve` shuts down after the first, ends it at once with 130 or 143 (128 plus the
// signal's number, as a shell reports a process the signal killed).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/keyq/keyq/client"
)

// Exit statuses of the keyq command.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	exitEmpty = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, a second one kills the process as if unhandled, unless
	// serve watches for it (processSignals) to say so in its log.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], streams{in: os.Stdin, out: os.Stdout, err: os.Stderr,
		signals: processSignals})
	stop()
	os.Exit(code)
}

// streams are the standard streams a command reads and writes; tests replace them.
type streams struct {
	in  io.Reader
	out io.Writer
	err io.Writer

	// signals, if not nil, is where serve watches for a second SIGINT or SIGTERM.
	signals *signalWatch
}

// run executes the command line args and returns the exit status. ctx ends on SIGINT
// or SIGTERM: serve shuts down gracefully, client commands give up.
func run(ctx context.Context, args []string, st streams) int {
	root := newRootCmd(st)
	root.SetArgs(args)

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}

	var re *runError
	if !errors.As(err, &re) {
		fmt.Fprintf(st.err, "%s: %v\n", cmd.CommandPath(), err)
		fmt.Fprintf(st.err, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintln(st.err, cmd.CommandPath()+": "+clientText(re.err.Error()))
	if errors.Is(re.err, client.ErrEmpty) {
		return exitEmpty
	}
	return exitError
}

// runError marks an error returned by a command's body, as opposed to one cobra
// returns while parsing the command line (a usage error).
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// doingError says what a command was doing when a call of the client failed, then
// the call's error without its "keyq OP: " (see clientText): "get from queue "q":
// storage: disk full: ...".
type doingError struct {
	doing string
	err   error
}

func (e *doingError) Error() string { return e.doing + ": " + clientText(e.err.Error()) }
func (e *doingError) Unwrap() error { return e.err }

// clientText strips the "keyq OP: " or "keyq: " that errors of the client package
// start with: OP is the protocol operation (reserve, queue_set), not the command the
// user typed, which run names instead.
func clientText(msg string) string {
	if rest, ok := strings.CutPrefix(msg, "keyq: "); ok {
		return rest
	}
	rest, ok := strings.CutPrefix(msg, "keyq ")
	if !ok {
		return msg
	}
	op, text, ok := strings.Cut(rest, ": ")
	if !ok || strings.ContainsAny(op, " \t") {
		return msg
	}
	return text
}
