//go:build !linux

package wal

import (
	"errors"
	"os"
)

func allocate(*os.File, int64) error { return errors.ErrUnsupported }

// TODO: lock the data directory on systems other than Linux.
func lockFile(*os.File) error { return nil }
