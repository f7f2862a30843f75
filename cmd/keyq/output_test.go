package main

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/keyq/keyq/internal/testutil"
)

// TestGetOutputToAPipeWritesInPlace: `get -o` onto something that is not a regular
// file (a FIFO here; /dev/null or /dev/stdout in use) writes into it and leaves it
// what it was. It used to rename a temporary file over it: as root, `-o /dev/null`
// replaced /dev/null with a regular file holding the message.
func TestGetOutputToAPipeWritesInPlace(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}

	read := make(chan string, 1)
	go func() {
		f, err := os.Open(fifo) // blocks until get opens the pipe to write
		if err != nil {
			read <- "open: " + err.Error()
			return
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			read <- "read: " + err.Error()
			return
		}
		read <- string(b)
	}()

	runCLI(t, "through the pipe", "put", "q").want(t, exitOK)
	runCLI(t, "", "get", "-o", fifo, "q").want(t, exitOK)
	// Checked before reading: a pipe replaced by a file never gets a writer.
	fi, err := os.Lstat(fifo)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("after get -o, %s is %v (%v), no longer a FIFO", fifo, fi.Mode(), err)
	}
	if got := <-read; got != "through the pipe" {
		t.Fatalf("the pipe's reader got %q", got)
	}
	entries, _ := os.ReadDir(filepath.Dir(fifo))
	if len(entries) != 1 {
		t.Fatalf("get left files beside the pipe: %v", entries)
	}
}

// TestGetOutputThroughASymlinkKeepsTheLink: the file a symbolic link names gets the
// message, and the link stays a link.
func TestGetOutputThroughASymlinkKeepsTheLink(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)
	dir := t.TempDir()
	target, link := filepath.Join(dir, "target"), filepath.Join(dir, "link")
	if err := os.WriteFile(target, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("no symbolic links here: %v", err)
	}

	runCLI(t, "new", "put", "q").want(t, exitOK)
	runCLI(t, "", "get", "-o", link, "q").want(t, exitOK)
	if b, err := os.ReadFile(target); err != nil || string(b) != "new" {
		t.Fatalf("the link's target holds %q, %v", b, err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("after get -o, the link is %v (%v)", fi.Mode(), err)
	}
}
