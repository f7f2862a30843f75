//go:build !race && !keyqpoison

package broker

// poisonReleased is off in ordinary builds: see poison_on.go.
const poisonReleased = false
