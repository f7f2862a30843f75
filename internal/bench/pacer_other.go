//go:build !linux

package bench

import (
	"errors"
	"time"
)

// fineTimer does not exist outside Linux; pacers there use the runtime's timers.
type fineTimer struct{}

func newFineTimer() (*fineTimer, error) {
	return nil, errors.New("no fine timer on this system")
}

func (*fineTimer) sleep(time.Duration) error { return errors.New("no fine timer") }

func (*fineTimer) close() {}
