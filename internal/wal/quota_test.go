package wal

import (
	"io"
	"sync"
	"syscall"
)

// quotaFS is the real file system with a capacity, like a small tmpfs: every file
// holds the bytes allocated or written to it, and an allocation, a creation or a
// write that would take the total past the capacity fails with ENOSPC and changes
// nothing. Removing or truncating a
// file gives its bytes back. The accounting outlives a Log, so a test can reopen
// the directory after a simulated crash and find the disk as full as it was.
type quotaFS struct {
	osFS

	mu       sync.Mutex
	capacity int64
	used     map[string]int64 // bytes held by each file, by path
}

func newQuotaFS(capacity int64) *quotaFS {
	return &quotaFS{capacity: capacity, used: make(map[string]int64)}
}

// total returns the bytes held by all files.
func (fs *quotaFS) total() int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.totalLocked()
}

func (fs *quotaFS) totalLocked() int64 {
	var n int64
	for _, u := range fs.used {
		n += u
	}
	return n
}

// grow makes the file at path hold at least size bytes, if the capacity allows.
func (fs *quotaFS) grow(path string, size int64) bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	need := size - fs.used[path]
	if need <= 0 {
		return true
	}
	if fs.totalLocked()+need > fs.capacity {
		return false
	}
	fs.used[path] = size
	return true
}

func (fs *quotaFS) setUsed(path string, size int64) {
	fs.mu.Lock()
	fs.used[path] = size
	fs.mu.Unlock()
}

func (fs *quotaFS) OpenFile(name string, create bool) (file, error) {
	if create && !fs.grow(name, 0) {
		return nil, syscall.ENOSPC
	}
	f, err := fs.osFS.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, err
	}
	fs.mu.Lock()
	fs.used[name] = max(fs.used[name], size)
	fs.mu.Unlock()
	return &quotaFile{file: f, fs: fs, path: name}, nil
}

func (fs *quotaFS) Remove(name string) error {
	if err := fs.osFS.Remove(name); err != nil {
		return err
	}
	fs.mu.Lock()
	delete(fs.used, name)
	fs.mu.Unlock()
	return nil
}

func (fs *quotaFS) Rename(oldname, newname string) error {
	if err := fs.osFS.Rename(oldname, newname); err != nil {
		return err
	}
	fs.mu.Lock()
	fs.used[newname] = fs.used[oldname]
	delete(fs.used, oldname)
	fs.mu.Unlock()
	return nil
}

// Lock takes no real lock, so a test can open a log again after a simulated crash.
func (fs *quotaFS) Lock(string) (io.Closer, error) { return io.NopCloser(nil), nil }

type quotaFile struct {
	file
	fs   *quotaFS
	path string
}

func (f *quotaFile) Allocate(size int64) (bool, error) {
	if !f.fs.grow(f.path, size) {
		return false, syscall.ENOSPC
	}
	return f.file.Allocate(size)
}

func (f *quotaFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.grow(f.path, off+int64(len(p))) {
		return f.file.WriteAt(p, off)
	}
	return 0, syscall.ENOSPC
}

func (f *quotaFile) Truncate(size int64) error {
	if err := f.file.Truncate(size); err != nil {
		return err
	}
	f.fs.setUsed(f.path, size)
	return nil
}
