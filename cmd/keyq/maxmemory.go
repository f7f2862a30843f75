package main

import (
	"math"
	"os"
	"runtime/debug"
	"strings"

	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// maxMemoryFlag is --max-memory: a byteSize that knows whether it was set, so that
// its default can depend on --storage.
type maxMemoryFlag struct {
	byteSize
	set bool
}

// Set implements pflag.Value. "auto" asks for the default, as if unset, so that a
// command line can override an inherited KEYQ_MAX_MEMORY or config file with it.
func (m *maxMemoryFlag) Set(s string) error {
	if strings.EqualFold(strings.TrimSpace(s), "auto") {
		m.n, m.set = 0, false
		return nil
	}
	if err := m.byteSize.Set(s); err != nil {
		return err
	}
	m.set = true
	return nil
}

// String implements pflag.Value: "auto" until set.
func (m *maxMemoryFlag) String() string {
	if !m.set {
		return "auto"
	}
	return m.byteSize.String()
}

// limit returns the limit on what the broker holds for cfg's store: the flag's value
// if it was set, else half the machine's memory when messages live only in memory
// (none where that is not known), and none when the store keeps them on disk.
func (m *maxMemoryFlag) limit(cfg *broker.Config) int64 {
	if m.set {
		return m.n
	}
	if _, inMemory := cfg.Store.(storage.Memory); inMemory || cfg.Store == nil {
		return physicalMemory() / 2
	}
	return 0
}

// goHeadroom is the least room the Go runtime's soft memory limit leaves above the
// broker's: a small --max-memory must not make the collector run without end.
const goHeadroom = 1 << 30

// setGoMemoryLimit gives the Go runtime a soft memory limit above the broker's limit
// held (none when held is 0) by half of it, or goHeadroom if more, unless GOMEMLIMIT
// sets one. It returns the runtime's limit now (0: none) and a function that puts
// back the one before. Without it the collector lets the heap grow to twice what is live
// (GOGC=100): a broker holding half the machine's memory, the default with --storage
// memory, could then ask for all of it. With it, the collector runs more often as
// the heap nears the limit, which costs CPU, not the process (the runtime caps the
// collector's share of CPU).
func setGoMemoryLimit(held int64) (limit int64, restore func()) {
	if held <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return goMemoryLimit(), func() {}
	}
	limit = held + max(held/2, goHeadroom)
	old := debug.SetMemoryLimit(limit)
	return limit, func() { debug.SetMemoryLimit(old) }
}

// goMemoryLimit returns the Go runtime's soft memory limit, 0 when there is none.
func goMemoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l
	}
	return 0
}
