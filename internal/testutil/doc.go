// Package testutil helps tests run keyq in process: StartServer starts a broker and the
// native-protocol server on 127.0.0.1:0, Dial opens a raw protocol connection to it,
// and WaitFor polls a condition with a deadline instead of sleeping.
package testutil
