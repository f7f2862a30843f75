//go:build race

package resp

// raceEnabled tells tests that the race detector runs: sync.Pool then drops a
// share of what is put back, on purpose, so pooled buffers get allocated anew.
const raceEnabled = true
