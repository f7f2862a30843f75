//go:build race

package slicepool

// raceEnabled: under the race detector sync.Pool drops a share of what it is given
// on purpose, so allocation counts are not what they are in production.
const raceEnabled = true
