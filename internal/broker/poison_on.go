//go:build race || keyqpoison

package broker

// poisonReleased: Release poisons each buffer it gives back (see poisonByte). Tests
// run under the race detector, so every test of every front door checks that no
// reply carries a released buffer; the cost, a write of the buffer, is paid only
// in such builds.
const poisonReleased = true
