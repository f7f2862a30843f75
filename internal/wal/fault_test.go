package wal

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"
)

// faultFS is the real file system with injectable faults: a full disk (creations,
// allocations and writes past a file's allocated size fail with ENOSPC, a write
// leaving half its bytes behind), failing fsyncs and slow fsyncs. It counts fsyncs.
type faultFS struct {
	osFS

	mu         sync.Mutex
	full       bool
	noAllocate bool // like a file system without fallocate: writes grow files
	syncErr    error
	syncDelay  time.Duration
	syncs      int
	writes     int // WriteAt calls with non-zero bytes
}

func (fs *faultFS) setFull(full bool) {
	fs.mu.Lock()
	fs.full = full
	fs.mu.Unlock()
}

func (fs *faultFS) isFull() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.full
}

func (fs *faultFS) OpenFile(name string, create bool) (file, error) {
	if create && fs.isFull() {
		return nil, fmt.Errorf("open %s: %w", name, syscall.ENOSPC)
	}
	f, err := fs.osFS.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	return &faultFile{file: f, fs: fs, allocated: size}, nil
}

// Lock takes no real lock, so a test can open a log again after a simulated crash.
func (fs *faultFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }

type faultFile struct {
	file
	fs *faultFS

	mu        sync.Mutex
	allocated int64
}

func (f *faultFile) Allocate(size int64) (bool, error) {
	if f.fs.isFull() {
		return false, syscall.ENOSPC
	}
	f.fs.mu.Lock()
	noAllocate := f.fs.noAllocate
	f.fs.mu.Unlock()
	if noAllocate {
		return false, nil
	}
	f.mu.Lock()
	f.allocated = max(f.allocated, size)
	f.mu.Unlock()
	return f.file.Allocate(size)
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if lastNonZero(p, 0) > 0 { // records; the syncer's zeros are not counted
		f.fs.mu.Lock()
		f.fs.writes++
		f.fs.mu.Unlock()
	}
	f.mu.Lock()
	end := off + int64(len(p))
	room := end <= f.allocated
	if !room && !f.fs.isFull() {
		f.allocated = end
		room = true
	}
	f.mu.Unlock()
	if room {
		return f.file.WriteAt(p, off)
	}
	n, _ := f.file.WriteAt(p[:len(p)/2], off) // a partial write, as a full disk leaves
	return n, syscall.ENOSPC
}

func (f *faultFile) Truncate(size int64) error {
	f.mu.Lock()
	f.allocated = min(f.allocated, size)
	f.mu.Unlock()
	return f.file.Truncate(size)
}

func (f *faultFile) Sync() error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.file.Sync()
}

func (f *faultFile) Datasync() error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.file.Datasync()
}

// fault counts a sync and applies the injected delay and error.
func (f *faultFile) fault() error {
	f.fs.mu.Lock()
	f.fs.syncs++
	err, delay := f.fs.syncErr, f.fs.syncDelay
	f.fs.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay) // an fsync that takes as long as a slow disk's
	}
	return err
}

var errInjected = errors.New("injected I/O error")
