package main

import (
	"github.com/keyq/keyq/internal/broker"
	"github.com/keyq/keyq/internal/storage"
)

// maxMemoryFlag is --max-memory: a byteSize that knows whether it was set, so that
// its default can depend on --storage.
type maxMemoryFlag struct {
	byteSize
	set bool
}

// Set implements pflag.Value.
func (m *maxMemoryFlag) Set(s string) error {
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
