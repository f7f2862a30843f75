package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/wal"
)

// Defaults of serve's storage flags.
const (
	defaultDataDir    = "./keyq-data"
	defaultCacheBytes = 256 << 20
)

func init() {
	newStorageBackend = func() storageBackend {
		return &logBackend{
			kind:          "disk",
			dataDir:       defaultDataDir,
			fsync:         fsyncFlag{wal.FsyncAlways},
			fsyncInterval: wal.DefaultFsyncInterval,
			segmentBytes:  byteSize{n: wal.DefaultSegmentBytes, min: wal.MinSegmentBytes},
			cacheBytes:    byteSize{n: defaultCacheBytes},
		}
	}
}

// logBackend is serve's storage: the durable log (package wal) in --data-dir by
// default, or memory only with --storage memory.
type logBackend struct {
	kind          storageKind
	dataDir       string
	fsync         fsyncFlag
	fsyncInterval time.Duration
	segmentBytes  byteSize
	cacheBytes    byteSize
	onFsync       func(d time.Duration, err error) // serve's metrics, if any
}

func (b *logBackend) reportFsyncs(fn func(d time.Duration, err error)) { b.onFsync = fn }

func (b *logBackend) addFlags(fs *pflag.FlagSet) {
	fs.Var(&b.kind, "storage",
		"where queues are kept: disk (the durable log in --data-dir) or memory (lost on exit)")
	fs.StringVar(&b.dataDir, "data-dir", b.dataDir, "directory of the durable log")
	fs.Var(&b.fsync, "fsync", "when the log is forced to disk: always (before each reply), "+
		"interval (every --fsync-interval) or never (left to the OS); see docs/DURABILITY.md")
	fs.DurationVar(&b.fsyncInterval, "fsync-interval", b.fsyncInterval,
		"how often --fsync interval forces the log to disk")
	fs.Var(&b.segmentBytes, "segment-bytes", "size of each log segment file; it must "+
		"hold the largest message (--max-message-bytes) with room to spare: 2 MiB for the "+
		"default 1 MiB (suffixes KiB, MiB, GiB)")
	fs.Var(&b.cacheBytes, "cache-bytes", "payload bytes kept in memory; the rest are read "+
		"back from the log on get; 0 for no limit (suffixes KiB, MiB, GiB)")
}

// check refuses a segment too small for the largest message a put may carry.
func (b *logBackend) check(maxMessageBytes int) error {
	if b.kind == "memory" {
		return nil
	}
	if max := wal.MaxPayloadBytes(b.segmentBytes.n); int64(maxMessageBytes) > max {
		return fmt.Errorf("--segment-bytes %d holds messages of at most %d bytes, under "+
			"--max-message-bytes %d: raise --segment-bytes or lower --max-message-bytes",
			b.segmentBytes.n, max, maxMessageBytes)
	}
	return nil
}

func (b *logBackend) configure(cfg *broker.Config, log *slog.Logger) ([]any, error) {
	if b.kind == "memory" {
		cfg.Store = storage.Memory{}
		return []any{"storage", "memory"}, nil
	}
	if b.fsyncInterval <= 0 {
		return nil, fmt.Errorf("--fsync-interval must be positive, not %v", b.fsyncInterval)
	}
	if err := b.check(cfg.MaxMessageBytes); err != nil {
		return nil, err
	}

	l, err := wal.Open(b.dataDir, wal.Options{
		Fsync:         b.fsync.policy,
		FsyncInterval: b.fsyncInterval,
		SegmentBytes:  b.segmentBytes.n,
		Logger:        log,
		OnFsync:       b.onFsync,
	})
	if err != nil {
		return nil, err
	}
	cfg.Store = l
	cfg.CacheBytes = b.cacheBytes.n

	attrs := []any{"storage", "disk", "data_dir", b.dataDir, "fsync", b.fsync.policy.String()}
	if b.fsync.policy == wal.FsyncInterval {
		attrs = append(attrs, "fsync_interval", b.fsyncInterval)
	}
	return append(attrs, "segment_bytes", b.segmentBytes.n, "cache_bytes", b.cacheBytes.n), nil
}

// storageKind is the --storage flag: disk or memory.
type storageKind string

// Set implements pflag.Value.
func (k *storageKind) Set(s string) error {
	switch s {
	case "disk", "memory":
		*k = storageKind(s)
		return nil
	}
	return fmt.Errorf("%q is not a storage: use disk or memory", s)
}

// String implements pflag.Value.
func (k *storageKind) String() string { return string(*k) }

// Type implements pflag.Value.
func (k *storageKind) Type() string { return "disk|memory" }

// fsyncFlag is the --fsync flag.
type fsyncFlag struct{ policy wal.FsyncPolicy }

// Set implements pflag.Value.
func (f *fsyncFlag) Set(s string) error {
	p, err := wal.ParseFsyncPolicy(s)
	if err != nil {
		return err
	}
	f.policy = p
	return nil
}

// String implements pflag.Value.
func (f *fsyncFlag) String() string { return f.policy.String() }

// Type implements pflag.Value.
func (f *fsyncFlag) Type() string { return "always|interval|never" }

// byteSize is a flag holding a number of bytes, at least min, written plainly or
// with a KiB, MiB or GiB suffix.
type byteSize struct {
	n   int64
	min int64
}

var byteSuffixes = []struct {
	suffix string
	factor int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// Set implements pflag.Value.
func (b *byteSize) Set(s string) error {
	num, factor := s, int64(1)
	for _, u := range byteSuffixes {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			num, factor = rest, u.factor
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/factor {
		return fmt.Errorf("%q is not a size in bytes", s)
	}
	if n*factor < b.min {
		return fmt.Errorf("%s is under the minimum of %d bytes", s, b.min)
	}
	b.n = n * factor
	return nil
}

// String implements pflag.Value.
func (b *byteSize) String() string { return strconv.FormatInt(b.n, 10) }

// Type implements pflag.Value.
func (b *byteSize) Type() string { return "bytes" }

func newRepairCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "repair DIR",
		Short: "Make a damaged log openable again, dropping only damaged bytes",
		Long: `Repair checks every record of the durable log in DIR (a server's --data-dir) and
drops the damaged ones, keeping every record that passes its checksum. It prints each
range it dropped. Run it, with the server stopped, when keyq serve refuses to start
because the log is corrupt. A dropped put loses its message; a dropped get record
brings its message back. A file named like a segment that is not one of the log's is
moved aside (renamed with a .stray suffix), never taken for a segment. Message IDs
after a repair start past every ID the log can have handed out.`,
		Args: cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			log := newLogger(cmd.ErrOrStderr(), "text", logLevel{level: slog.LevelWarn})
			report, err := wal.Repair(args[0], log)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, f := range report.Strays {
				fmt.Fprintf(out, "moved %s aside to %s: not a segment of this log (%s)\n",
					f.File, f.MovedTo, f.Reason)
			}
			for _, d := range report.Dropped {
				if d.Missing {
					fmt.Fprintf(out, "missing segment %s: its messages are lost "+
						"(an empty segment now stands in its place)\n", d.File)
					continue
				}
				fmt.Fprintf(out, "dropped %d bytes at %s offset %d: %s\n",
					d.Bytes, d.File, d.Offset, d.Reason)
			}
			fmt.Fprintf(out, "checked %d segments, dropped %d damaged ranges\n",
				report.Segments, len(report.Dropped))
			return nil
		}),
	}
}
