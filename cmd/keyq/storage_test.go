package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyq/keyq/internal/storage"
	"github.com/keyq/keyq/internal/wal"
)

func TestServeDiskStorageKeepsMessages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--addr", "127.0.0.1:0", "--storage", "disk", "--data-dir", dir,
		"--fsync", "interval", "--fsync-interval", "5ms", "--segment-bytes", "64KiB",
		"--cache-bytes", "1KiB", "--max-message-bytes", "4096"}

	addr, log, stop := startServe(t, args...)
	want := "storage=disk data_dir=" + dir + " fsync=interval fsync_interval=5ms " +
		"segment_bytes=65536 cache_bytes=1024"
	if !strings.Contains(log.String(), want) {
		t.Fatalf("start line lacks %q:\n%s", want, log)
	}
	for _, m := range []string{"first", "second", strings.Repeat("x", 3000)} {
		runCLI(t, m, "put", "jobs", "--addr", addr).want(t, exitOK)
	}
	runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitOK)
	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, log)
	}

	addr, log, _ = startServe(t, args...)
	if !strings.Contains(log.String(), "msg=\"recovered queues\" component=broker queues=1 "+
		"messages=2") {
		t.Fatalf("no recovery summary for 2 messages:\n%s", log)
	}
	for _, m := range []string{"second", strings.Repeat("x", 3000)} {
		if r := runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitOK); r.stdout != m {
			t.Fatalf("get after restart = %.20q, want %.20q", r.stdout, m)
		}
	}
	runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitEmpty)
}

func TestServeStorageFlagsRefuseBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--storage", "tape"},
		{"--fsync", "sometimes"},
		{"--segment-bytes", "100"},
		{"--segment-bytes", "1XB"},
		{"--cache-bytes", "-1"},
	} {
		r := runCLI(t, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		r.want(t, exitUsage)
	}
}

// TestRepairCommand: a log damaged in the middle stops serve from starting, with an
// error naming the file and offset; keyq repair drops the damaged record and serve
// starts with the rest.
func TestRepairCommand(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var locs []storage.Location
	for i, p := range []string{"lost", "kept"} {
		rec := storage.Record{Op: storage.OpPut, Queue: "jobs", ID: uint64(i + 1),
			Pos: int64(i), Payload: []byte(p)}
		loc, ticket, err := l.Append(&rec)
		if err != nil || l.Wait(context.Background(), ticket) != nil {
			t.Fatalf("append: %v", err)
		}
		locs = append(locs, loc)
	}
	l.Close()
	path := filepath.Join(dir, "00000000000000000001.wal")
	data, _ := os.ReadFile(path)
	data[locs[0].Offset+12] ^= 0xff
	os.WriteFile(path, data, 0o644)

	serve := []string{"serve", "--addr", "127.0.0.1:0", "--storage", "disk", "--data-dir", dir,
		"--segment-bytes", "64KiB", "--max-message-bytes", "4096"}
	r := runCLI(t, "", serve...).want(t, exitError)
	if !strings.Contains(r.stderr, path) || !strings.Contains(r.stderr, "offset 32") {
		t.Fatalf("serve on a corrupt log: stderr %q does not name %s offset 32", r.stderr, path)
	}

	r = runCLI(t, "", "repair", dir).want(t, exitOK)
	if !strings.Contains(r.stdout, "at "+path+" offset 32") ||
		!strings.Contains(r.stdout, "dropped 1 damaged ranges") {
		t.Fatalf("repair printed %q", r.stdout)
	}
	runCLI(t, "", "repair").want(t, exitUsage)

	addr, _, _ := startServe(t, serve[1:]...)
	if r := runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitOK); r.stdout != "kept" {
		t.Fatalf("get after repair = %q, want kept", r.stdout)
	}
}

// TestRepairCommandStrayAndCutShort: a stray file named like a segment, and a newest
// segment cut short, each stop serve with an error naming the file; keyq repair moves
// the stray aside (making no segment up to it) and reports the cut, and serve starts.
func TestRepairCommandStrayAndCutShort(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{SegmentBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	var locs []storage.Location
	for i, p := range []string{"kept", "lost"} {
		rec := storage.Record{Op: storage.OpPut, Queue: "jobs", ID: uint64(i + 1),
			Pos: int64(i), Payload: []byte(p)}
		loc, ticket, err := l.Append(&rec)
		if err != nil || l.Wait(context.Background(), ticket) != nil {
			t.Fatalf("append: %v", err)
		}
		locs = append(locs, loc)
	}
	l.Close()
	stray := filepath.Join(dir, "00000000000000000099.wal")
	os.WriteFile(stray, []byte("junk\n"), 0o644)
	serve := []string{"serve", "--addr", "127.0.0.1:0", "--storage", "disk", "--data-dir", dir,
		"--segment-bytes", "64KiB", "--max-message-bytes", "4096"}
	r := runCLI(t, "", serve...).want(t, exitError)
	if !strings.Contains(r.stderr, "unexpected file "+stray) {
		t.Fatalf("serve with a stray file: stderr %q does not name %s", r.stderr, stray)
	}

	path := filepath.Join(dir, "00000000000000000001.wal")
	os.Truncate(path, locs[1].Offset)
	r = runCLI(t, "", "repair", dir).want(t, exitOK)
	if !strings.Contains(r.stdout, "moved "+stray+" aside to "+stray+".stray") ||
		!strings.Contains(r.stdout, "at "+path+" offset "+strconv.FormatInt(locs[1].Offset,
			10)+": segment file cut short") {
		t.Fatalf("repair printed %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000002.wal")); err == nil {
		t.Fatalf("repair made up segment 2")
	}

	addr, _, _ := startServe(t, serve[1:]...)
	if r := runCLI(t, "", "get", "jobs", "--addr", addr).want(t, exitOK); r.stdout != "kept" {
		t.Fatalf("get after repair = %q, want kept", r.stdout)
	}
}

// TestServeRefusesSegmentsTooSmallForMessages: a segment must hold the largest
// message a put may carry; flags that disagree are a usage error, found before
// anything is opened.
func TestServeRefusesSegmentsTooSmallForMessages(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	r := runCLI(t, "", "serve", "--addr", "127.0.0.1:0", "--http-addr", "", "--data-dir",
		dir, "--segment-bytes", "64KiB", "--max-message-bytes", "1048576")
	r.want(t, exitUsage)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused serve made its data directory: %v", err)
	}
	if !strings.Contains(r.stderr, "--segment-bytes 65536 holds messages of at most") {
		t.Fatalf("stderr %q does not explain the conflict", r.stderr)
	}
}
