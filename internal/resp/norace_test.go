//go:build !race

package resp

// raceEnabled tells tests that the race detector runs (see race_test.go).
const raceEnabled = false
