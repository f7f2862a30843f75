package wal

import (
	"fmt"
	"log/slog"
	"time"
)

// FsyncPolicy says when appended records are forced to disk.
type FsyncPolicy uint8

// The fsync policies. docs/DURABILITY.md says what each one promises.
const (
	// FsyncAlways makes Wait return only once the record is on disk; concurrent
	// waiters share one fsync.
	FsyncAlways FsyncPolicy = iota
	// FsyncInterval makes Wait return once the record is written to the operating
	// system, and fsyncs every FsyncInterval.
	FsyncInterval
	// FsyncNever makes Wait return once the record is written to the operating
	// system and leaves flushing to it (the log still fsyncs a segment when it
	// rolls, and before it deletes anything).
	FsyncNever
)

// String returns the policy's flag value.
func (p FsyncPolicy) String() string {
	switch p {
	case FsyncAlways:
		return "always"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("fsync(%d)", uint8(p))
}

// ParseFsyncPolicy parses "always", "interval" or "never".
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	for _, p := range []FsyncPolicy{FsyncAlways, FsyncInterval, FsyncNever} {
		if s == p.String() {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown fsync policy %q (want always, interval or never)", s)
}

// Defaults for the zero fields of Options.
const (
	DefaultSegmentBytes  = 64 << 20
	DefaultFsyncInterval = time.Second
	DefaultCompactRatio  = 0.5
	DefaultReadGrace     = 10 * time.Second

	// MinSegmentBytes is the smallest segment size Open accepts.
	MinSegmentBytes = 4096
)

// Options configures a Log. The zero value is the default: fsync always, 64 MiB
// segments.
type Options struct {
	// Fsync is the fsync policy; FsyncInterval fsyncs every FsyncInterval.
	Fsync         FsyncPolicy
	FsyncInterval time.Duration

	// SegmentBytes is the size at which the log starts a new segment file; each
	// segment is preallocated to it, and so is each spare that holds room for take
	// records (see space.go). A record may take up to seven eighths of it.
	SegmentBytes int64

	// CompactRatio is the share of live bytes under which the oldest segment's live
	// puts are copied forward so it can be deleted; 0 means DefaultCompactRatio.
	CompactRatio float64

	// ReadGrace is how long a deleted segment's taken puts stay readable after their
	// take is durable, for a get that reads its payload after recording the take;
	// 0 means DefaultReadGrace.
	ReadGrace time.Duration

	// Logger receives the log's messages; nil discards them.
	Logger *slog.Logger

	// OnFsync, if set, is called after each fsync of a segment (by the syncer, and
	// when a segment rolls) with its duration and error. It may run with the log's
	// lock held, so it must be quick and must not call the Log.
	OnFsync func(d time.Duration, err error)

	fs fileSystem // nil: the operating system's; tests inject faults here
}

// MaxPayloadBytes returns the largest payload a log with the given segment size
// accepts in a put, for a queue name of up to 255 bytes.
func MaxPayloadBytes(segmentBytes int64) int64 {
	const maxPutOverhead = frameHeader + 1 + 3*binaryMaxVarint + 255
	return segmentBytes - segmentBytes/8 - segmentHeader - maxPutOverhead
}

// binaryMaxVarint is the longest encoding of a 64-bit varint.
const binaryMaxVarint = 10

func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < MinSegmentBytes {
		return o, fmt.Errorf("segment size %d is under the minimum of %d",
			o.SegmentBytes, MinSegmentBytes)
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.Fsync > FsyncNever {
		return o, fmt.Errorf("unknown fsync policy %v", o.Fsync)
	}
	if o.CompactRatio == 0 {
		o.CompactRatio = DefaultCompactRatio
	}
	if o.ReadGrace <= 0 {
		o.ReadGrace = DefaultReadGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.fs == nil {
		o.fs = osFS{}
	}
	return o, nil
}
