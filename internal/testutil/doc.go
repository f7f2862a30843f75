// Package testutil helps tests run keyq. In process: StartServer starts a broker and
// the native-protocol server on 127.0.0.1:0, Dial opens a raw protocol connection to
// it, and WaitFor polls a condition with a deadline instead of sleeping. As a real
// process: BuildKeyq builds the binary and StartKeyq runs `keyq serve` with every
// front door on a free port, for end-to-end and crash tests.
package testutil
