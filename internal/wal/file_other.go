//go:build !linux

package wal

import (
	"errors"
	"os"
)

func allocate(*os.File, int64) error { return errors.ErrUnsupported }

// Datasync is Sync where fdatasync is not offered.
func (f osFile) Datasync() error { return f.Sync() }

// TODO: lock the data directory on systems other than Linux.
func lockFile(*os.File) error { return nil }
