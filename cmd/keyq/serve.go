package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/storage"
)

// maxMessageLimit is the largest --max-message-bytes: the handshake announces the
// limit, and the max frame above it, in 32 bits.
const maxMessageLimit int64 = math.MaxUint32 - proto.FrameOverhead

// serveOptions are the flags of `keyq serve`.
type serveOptions struct {
	maxMessageBytes int
	maxMemory       maxMemoryFlag
	shutdownTimeout time.Duration
	logFormat       logFormat
	logLevel        logLevel
	storage         storageBackend
	native          nativeDoor
	doors           []frontDoor // besides native
	metrics         metricsOptions
	signals         *signalWatch // nil: a second signal is not watched for
}

// storageBackend adds serve's storage flags and opens the store they describe. The
// default keeps messages in memory; another file of this package may replace it by
// setting newStorageBackend in an init function.
type storageBackend interface {
	// addFlags registers the backend's flags on the serve command.
	addFlags(fs *pflag.FlagSet)

	// configure opens the store and sets cfg.Store, and any other field of cfg the
	// store calls for (such as CacheBytes). attrs describe the store in the start
	// line, as slog key-value pairs.
	configure(cfg *broker.Config, log *slog.Logger) (attrs []any, err error)
}

// newStorageBackend returns the storage backend of a new serve command.
var newStorageBackend = func() storageBackend { return memoryBackend{} }

// memoryBackend keeps messages in memory only: they are lost when the server stops.
type memoryBackend struct{}

func (memoryBackend) addFlags(*pflag.FlagSet) {}

func (memoryBackend) configure(cfg *broker.Config, _ *slog.Logger) ([]any, error) {
	cfg.Store = storage.Memory{}
	return []any{"storage", "memory"}, nil
}

func newServeCmd(signals *signalWatch) *cobra.Command {
	opts := serveOptions{
		signals:   signals,
		logFormat: "text",
		logLevel:  logLevel{level: slog.LevelInfo},
		storage:   newStorageBackend(),
	}
	for _, newDoor := range frontDoors {
		opts.doors = append(opts.doors, newDoor())
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the keyq server",
		Long: `Serve runs the keyq server: it listens on --addr for clients speaking the keyq
protocol (docs/PROTOCOL.md) and keeps their queues. It logs one line when it starts,
with the address it listens on (use --addr 127.0.0.1:0 for any free port) and its
settings. SIGINT or SIGTERM stops it gracefully: it stops accepting, finishes the
requests in progress, closes the connections and exits with status 0. Requests still
running after --shutdown-timeout are cut off: a warning says how many connections
were, and the status is still 0. A second SIGINT or SIGTERM during that shutdown
stops it at once, without waiting for requests in progress: it logs an error saying
so and exits with status 130 (SIGINT) or 143 (SIGTERM), as if killed by the signal.

--max-conns and --idle-timeout apply to every door (native, RESP, HTTP), each door
counting its own connections. Idle means: native, no byte received; RESP, no complete
command (a half-sent request counts as idle); HTTP, no request on a kept-alive
connection, and it also bounds headers and each read of a body (10s and 30s when 0).
A blocked get is never idle. --max-wait caps native waits only: HTTP refuses waits
over --http-max-wait, and RESP blocking commands wait as long as asked, as in Redis.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return opts.check() // a bad value is a usage error
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), cmd.ErrOrStderr(), opts)
		}),
	}

	fs := cmd.Flags()
	fs.IntVar(&opts.maxMessageBytes, "max-message-bytes", broker.DefaultMaxMessageBytes,
		"largest message a put may carry, in bytes")
	fs.Var(&opts.maxMemory, "max-memory", "most bytes the server holds in messages "+
		"(payloads plus 64 per message) before puts are refused; 0 for no limit; auto: "+
		"half the machine's memory with --storage memory, no limit with disk "+
		"(suffixes KiB, MiB, GiB)")
	opts.native.addFlags(fs)
	for _, d := range opts.doors {
		d.addFlags(fs)
	}
	opts.metrics.addFlags(fs)
	fs.DurationVar(&opts.shutdownTimeout, "shutdown-timeout", 10*time.Second,
		"on SIGINT or SIGTERM, how long to let requests in progress finish")
	fs.Var(&opts.logFormat, "log-format", "log format: text or json")
	fs.Var(&opts.logLevel, "log-level", "least level logged: debug, info, warn or error")
	opts.storage.addFlags(fs)
	withConfig(cmd) // after every flag, which it mirrors
	return cmd
}

// check refuses flag values that parse but make no sense.
func (o *serveOptions) check() error {
	switch {
	case o.maxMessageBytes <= 0 || int64(o.maxMessageBytes) > maxMessageLimit:
		return fmt.Errorf("--max-message-bytes must be between 1 and %d, not %d",
			maxMessageLimit, o.maxMessageBytes)
	case o.native.maxConns < 0:
		return fmt.Errorf("--max-conns must not be negative, not %d", o.native.maxConns)
	case o.native.idleTimeout < 0:
		return fmt.Errorf("--idle-timeout must not be negative, not %v", o.native.idleTimeout)
	case o.native.maxWait < 0:
		return fmt.Errorf("--max-wait must not be negative, not %v", o.native.maxWait)
	case o.shutdownTimeout <= 0:
		return fmt.Errorf("--shutdown-timeout must be positive, not %v", o.shutdownTimeout)
	}
	if c, ok := o.storage.(storageChecker); ok {
		return c.check(o.maxMessageBytes)
	}
	return nil
}

// storageChecker is a storageBackend whose flags can disagree with serve's: check
// refuses such values while the command line is parsed, as a usage error.
type storageChecker interface {
	check(maxMessageBytes int) error
}

// serve runs the server until ctx ends (a signal), then shuts it down gracefully.
func serve(ctx context.Context, logOut io.Writer, opts serveOptions) error {
	log := newLogger(logOut, opts.logFormat, opts.logLevel)
	if opts.signals != nil {
		// Watched from the start: a second signal may come while storage recovers.
		defer opts.signals.watch(ctx, log)()
	}
	m, err := opts.metrics.newMetrics(&opts)
	if err != nil {
		return err
	}

	cfg := broker.Config{MaxMessageBytes: opts.maxMessageBytes, Logger: log}
	storeAttrs, err := opts.storage.configure(&cfg, log)
	if err != nil {
		return fmt.Errorf("open storage: %w", err)
	}
	cfg.MaxHeldBytes = opts.maxMemory.limit(&cfg)
	goLimit, restoreGoLimit := setGoMemoryLimit(cfg.MaxHeldBytes)
	defer restoreGoLimit()
	storeAttrs = append(storeAttrs, "max_memory", cfg.MaxHeldBytes, "go_memory_limit", goLimit)
	b, err := broker.New(cfg)
	if err != nil {
		if cfg.Store != nil {
			cfg.Store.Close()
		}
		return fmt.Errorf("start broker: %w", err)
	}
	if err := opts.metrics.collectQueues(m, b); err != nil {
		b.Close()
		return err
	}

	err = listenAndServe(ctx, log, b, opts, storeAttrs)
	if cerr := b.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close broker: %w", cerr)
	}
	if err == nil {
		log.Info("stopped")
	}
	return err
}

// listenAndServe starts every front door on b, logs the start line, serves until
// ctx ends or a door fails, then shuts them all down.
func listenAndServe(
	ctx context.Context, log *slog.Logger, b *broker.Broker, opts serveOptions, storeAttrs []any,
) error {
	shareLimits(&opts.native, opts.doors)
	doors := append([]frontDoor{&opts.native}, opts.doors...)
	running, err := startDoors(doors, b, log)
	if err != nil {
		return err
	}

	var attrs []any
	for _, r := range running {
		attrs = append(attrs, r.attrs...)
	}
	attrs = append(attrs, "version", keyqVersion(), "max_message_bytes", opts.maxMessageBytes,
		"shutdown_timeout", opts.shutdownTimeout, "metrics_max_queues", opts.metrics.maxQueues)
	log.Info("listening", append(attrs, storeAttrs...)...)

	failed := make(chan error, len(running))
	var wg sync.WaitGroup
	for _, r := range running {
		wg.Go(func() {
			if err := <-r.done; err != nil {
				failed <- err
			}
		})
	}

	var cause error
	select {
	case cause = <-failed:
	case <-ctx.Done():
	}
	err = shutdownDoors(running, opts.shutdownTimeout, log)
	wg.Wait()
	close(failed)
	for ferr := range failed {
		cause = errors.Join(cause, ferr)
	}
	return errors.Join(cause, err)
}
