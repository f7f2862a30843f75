package wal

import (
	"errors"
	"fmt"
)

// Errors the log returns besides those of package storage (storage.ErrClosed,
// storage.ErrDiskFull), which it wraps where they apply.
var (
	// ErrCorrupt is wrapped by every *CorruptError.
	ErrCorrupt = errors.New("wal: log corrupt")
	// ErrLocked is returned by Open when another process holds the data directory.
	ErrLocked = errors.New("wal: data directory in use")
	// ErrRecordTooLarge is returned by Append for a record that no segment can hold.
	ErrRecordTooLarge = errors.New("wal: record too large for a segment")
)

// CorruptError says where the log is damaged: a record (or a segment header) that
// fails its checksum or cannot be decoded, and is not a torn write at the tail of the
// newest segment. Open refuses such a log; Repair drops the damaged bytes.
type CorruptError struct {
	File   string // path of the damaged file: a segment, or the RANGE file
	Offset int64  // where the bad record or header starts
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: log corrupt: %s at offset %d: %s (run keyq repair)",
		e.File, e.Offset, e.Reason)
}

// Unwrap lets errors.Is(err, ErrCorrupt) match.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// UnexpectedFileError names a file in the data directory that is named like a
// segment but is not one of the log's: outside the range of segments the RANGE file
// records, or with no valid segment header where the log cannot have left one. Open
// refuses to start over it rather than take it for a segment; Repair moves it aside.
type UnexpectedFileError struct {
	File   string
	Reason string // what shows it is not the log's
}

func (e *UnexpectedFileError) Error() string {
	return fmt.Sprintf("wal: unexpected file %s: not a segment of this log (%s); move it "+
		"out of the data directory, or run keyq repair to move it aside", e.File, e.Reason)
}

// Unwrap lets errors.Is(err, ErrCorrupt) match: the directory is not as the log
// left it.
func (e *UnexpectedFileError) Unwrap() error { return ErrCorrupt }
