package wal

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// file is what the log needs of one segment file. Tests wrap it to inject write,
// allocation and sync errors.
type file interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
	// Datasync flushes the file's data and the metadata needed to read it back
	// (its size and block map), as fdatasync(2); unlike Sync it may leave the
	// file's times behind. It is what makes a record durable.
	Datasync() error
	Truncate(size int64) error
	// Allocate reserves disk space for the first size bytes, so that writes inside
	// them cannot fail for lack of space, and reports whether it did: where the
	// file system cannot, it does nothing and returns false.
	Allocate(size int64) (bool, error)
	// Size returns the file's length in bytes.
	Size() (int64, error)
	Close() error
}

// fileSystem is what the log needs of the data directory.
type fileSystem interface {
	// OpenFile opens name for reading and writing, creating it when create is set
	// (and failing if it then exists).
	OpenFile(name string, create bool) (file, error)
	Remove(name string) error
	// Rename moves oldName to newName, replacing nothing: Repair moves files aside.
	Rename(oldName, newName string) error
	// ReadDir returns the names of the entries in dir.
	ReadDir(dir string) ([]string, error)
	// SyncDir makes the creations and removals in dir durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on dir for this process; Close releases it.
	Lock(dir string) (io.Closer, error)
}

// osFS is the real file system.
type osFS struct{}

type osFile struct{ *os.File }

func (osFS) OpenFile(name string, create bool) (file, error) {
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) Rename(oldName, newName string) error {
	if _, err := os.Lstat(newName); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			err = &os.LinkError{Op: "rename", Old: oldName, New: newName, Err: os.ErrExist}
		}
		return err
	}
	return os.Rename(oldName, newName)
}

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(dir string) (io.Closer, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f osFile) Allocate(size int64) (bool, error) {
	err := allocate(f.File, size)
	if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.EOPNOTSUPP) ||
		errors.Is(err, syscall.ENOSYS) {
		return false, nil // writes may then fail for lack of space; Append handles it
	}
	return err == nil, err
}

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// isNoSpace reports whether err means the disk (or the user's quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
