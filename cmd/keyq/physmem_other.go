//go:build !linux

package main

// physicalMemory returns 0, "not known", where keyq does not ask the OS: there a
// memory-only server has no limit unless --max-memory sets one.
func physicalMemory() int64 { return 0 }
