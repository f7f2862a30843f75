package server

// MaxDurableWaits exports maxDurableWaits to the tests of package server_test.
const MaxDurableWaits = maxDurableWaits
