package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// signalWatch is how serve hears of a second SIGINT or SIGTERM, one that comes while
// the first still has it shutting down gracefully, and how it then ends the process
// at once. main's is the real one; tests fake both functions.
type signalWatch struct {
	// notify starts the delivery of SIGINT and SIGTERM to the channel it returns,
	// until stop is called.
	notify func() (sigs <-chan os.Signal, stop func())
	// exit ends the process with code, running no deferred function.
	exit func(code int)
}

// processSignals is the signalWatch of the real process.
var processSignals = &signalWatch{
	notify: func() (<-chan os.Signal, func()) {
		sigs := make(chan os.Signal, 2)
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		return sigs, func() { signal.Stop(sigs) }
	},
	exit: os.Exit,
}

// watch calls halt on the second signal it hears, the first being the one that ends
// ctx (a signal that ended ctx before the watch began counts as heard). As long as
// the watch runs, a signal no longer kills the process as unhandled, whatever main
// registered. stop ends the watch.
func (w *signalWatch) watch(ctx context.Context, log *slog.Logger) (stop func()) {
	sigs, unnotify := w.notify()
	done := make(chan struct{})
	heard := ctx.Err() != nil
	go func() {
		for {
			select {
			case s := <-sigs:
				if heard {
					w.halt(log, s)
					return
				}
				heard = true
			case <-done:
				return
			}
		}
	}()
	return func() {
		unnotify()
		close(done)
	}
}

// halt logs why the process stops now and ends it with the status of a process
// killed by s: 130 for SIGINT, 143 for SIGTERM.
func (w *signalWatch) halt(log *slog.Logger, s os.Signal) {
	code := exitError
	if n, ok := s.(syscall.Signal); ok {
		code = 128 + int(n)
	}
	log.Error("second signal: stopping now without waiting for requests in progress",
		"signal", signalName(s), "exit_status", code)
	w.exit(code)
}

// signalName names s as kill(1) does.
func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}
