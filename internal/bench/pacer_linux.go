package bench

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fineTimer is a non-blocking timerfd. Reading it parks the goroutine in the
// runtime's poller, which returns from epoll_wait as soon as the timer expires.
type fineTimer struct {
	fd   int
	file *os.File // the poller's handle on fd; closing it closes fd
	buf  [8]byte  // the expiration count a read returns
}

func newFineTimer() (*fineTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create timerfd: %w", err)
	}
	return &fineTimer{fd: fd, file: os.NewFile(uintptr(fd), "timerfd")}, nil
}

// sleep returns after d, which must be positive.
func (t *fineTimer) sleep(d time.Duration) error {
	// CLOCK_MONOTONIC is the clock of the runtime's monotonic readings, so d measured
	// with time.Until is the right relative setting.
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(max(int64(d), 1))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return fmt.Errorf("arm timerfd: %w", err)
	}
	if _, err := t.file.Read(t.buf[:]); err != nil {
		return fmt.Errorf("read timerfd: %w", err)
	}
	return nil
}

func (t *fineTimer) close() { _ = t.file.Close() } // nothing was written to it
