// Package wal is keyq's durable storage: an append-only log of segment files in a
// data directory, implementing storage.Store.
//
// # Files
//
// Each segment is a file named by its id (00000000000000000001.wal, ...), created at
// its full size (Options.SegmentBytes) so that the disk space is reserved. It starts
// with a header that records the next message ID at its creation, and holds records
// back to back: one per put (queue, message ID, position, payload), one per take
// (the message ID and the Location of its put), each framed with its length and a
// CRC-32C. record.go and segment.go give the exact layout. A LOCK file keeps a second
// process out of the directory, and a RANGE file records the oldest and the newest
// segment, so that a segment file deleted from either end is noticed, the size the
// newest segment was preallocated to, so that one cut short is noticed, and a limit
// past every message ID the log accepted, so that no ID is handed out twice
// (range.go).
//
// # Writing
//
// Append encodes the record under Log.mu and returns a ticket. With FsyncInterval
// and FsyncNever it also writes it with one write(2), so the record is in the
// operating system, safe from a process crash, when Append returns. With
// FsyncAlways it joins the records pending for the syncer, a single goroutine that
// writes all of them with one write(2) and fsyncs the active segment once per
// group of waiters (group commit); Wait returns once the record's group is on
// disk. A segment is fsynced when the log moves on to the next one, so only the
// newest segment can end in a torn record after a crash.
//
// # Recovery
//
// Open first surveys the directory without changing it (survey.go): a file named
// like a segment that is not one of the log's fails with an *UnexpectedFileError; a
// missing segment, or a newest one empty or shorter than the RANGE file records,
// with a *CorruptError. It then reads every segment and checks every record. The next
// message ID is past the RANGE file's limit. Positions (where the log ends,
// which puts are live) come from the validated contents alone, never from a separate
// counter. A bad record at the end of the newest segment with nothing valid after it
// is a torn write: it is cut off with a warning. A bad record anywhere else fails
// Open with a *CorruptError naming the file and offset; Repair drops only the
// damaged bytes. Replay then yields the live puts; the broker orders each queue by
// the records' positions.
//
// # Space
//
// Segments are deleted oldest first once all their puts are dead, and the oldest
// segment is compacted (its live puts copied forward) when little of it is live; see
// compact.go. The log holds room, in the active segment and in preallocated spare
// segment files (SPARE.n), for the take record of every live put, and accepts a put
// only with room for its take too, so that a full disk fails puts with
// storage.ErrDiskFull but never a take, before or after a restart; see space.go.
//
// # Locking
//
// The broker's locks come before Log.mu. A segment's io lock is taken after Log.mu
// (or without it) and guards the file against being closed during a read or fsync
// done outside Log.mu. No disk wait happens under Log.mu except writes (of one
// record, or of the syncer's pending group), the fsyncs of a segment roll or of a
// new spare, and those of the RANGE file (at a roll, before a deletion, and once per
// idBlock IDs).
package wal
