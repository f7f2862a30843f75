package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/keyq/keyq/internal/testutil"
)

// TestClientFlagValuesAreUsageErrors: a bad value of any client command's flag, or a
// bad delivery id, exits 2 with a message naming the flag, before any request: the
// address is a closed port, so a command that got as far as dialing would exit 1.
func TestClientFlagValuesAreUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		name string // what the message must name
	}{
		{[]string{"get", "--wait", "-1s", "q"}, "--wait"},
		{[]string{"reserve", "--wait", "-1s", "-o", "x", "q"}, "--wait"},
		{[]string{"reserve", "--lease", "-1s", "-o", "x", "q"}, "--lease"},
		{[]string{"reserve", "--lease", "1000000h", "-o", "x", "q"}, "--lease"},
		{[]string{"put", "--delay", "1000000h", "q"}, "--delay"},
		{[]string{"put", "--delay", "-5s", "q"}, "--delay"},
		{[]string{"put", "--ttl", "-1s", "q"}, "--ttl"},
		{[]string{"put", "--ttl", "soon", "q"}, "--ttl"},
		{[]string{"nack", "--delay", "-5s", "1"}, "--delay"},
		{[]string{"touch", "--lease", "1000000h", "1"}, "--lease"},
		{[]string{"ack", "abc"}, "delivery id"},
		{[]string{"nack", "18446744073709551616"}, "delivery id"},
		{[]string{"touch", "1x"}, "delivery id"},
		{[]string{"queue", "set", "q", "--max-length", "-1"}, "--max-length"},
		{[]string{"queue", "set", "q", "--max-bytes", "-1"}, "--max-bytes"},
		{[]string{"queue", "set", "q", "--max-deliveries", "-1"}, "--max-deliveries"},
		{[]string{"queue", "set", "q", "--max-deliveries", "4294967296"}, "--max-deliveries"},
		{[]string{"queue", "set", "q", "--lease", "-1s"}, "--lease"},
		{[]string{"queue", "set", "q", "--ttl", "1000000h"}, "--ttl"},
		{[]string{"top", "--interval", "0s"}, "--interval"},
		{[]string{"bench", "--depth", "-1"}, "depth"},
		{[]string{"bench", "--rate", "-1"}, "rate"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			args := append(append([]string{}, c.args...), "--addr", "127.0.0.1:1")
			r := runCLI(t, "x", args...).want(t, exitUsage)
			if !strings.Contains(r.stderr, c.name) {
				t.Fatalf("stderr %q does not name %s", r.stderr, c.name)
			}
			if !strings.HasPrefix(r.stderr, "keyq "+c.args[0]) {
				t.Fatalf("stderr %q does not name the command", r.stderr)
			}
			if strings.Contains(r.stderr, "ms is over the limit") {
				t.Fatalf("stderr %q shows the raw protocol message", r.stderr)
			}
		})
	}
}

// TestClientErrorsNameTheCommandTyped: an error is prefixed with the command the user
// typed, not the protocol operation that ran it (get runs a reserve, queue set a
// queue_set).
func TestClientErrorsNameTheCommandTyped(t *testing.T) {
	srv := testutil.StartServer(t)
	t.Setenv(addrEnv, srv.Addr)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "a\tb"}, `keyq get: get from queue "a\tb": invalid key`},
		{[]string{"queue", "set", "a\tb", "--max-length", "5"}, "keyq queue set: invalid key"},
		{[]string{"queue", "show", "a\tb"}, "keyq queue show: invalid key"},
		{[]string{"len", "--addr", "127.0.0.1:1", "q"}, "keyq len: dial"},
	} {
		r := runCLI(t, "", c.args...).want(t, exitError)
		if !strings.HasPrefix(r.stderr, c.want) {
			t.Errorf("keyq %v: stderr %q, want it to start %q", c.args, r.stderr, c.want)
		}
	}
}

// TestHelpShowsEachDefaultOnce: no flag of any command shows two defaults (a usage
// that names its default, and pflag's beside it), nor pflag's "(default 0s)" for a
// zero duration whose meaning the usage says.
func TestHelpShowsEachDefaultOnce(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		for line := range strings.Lines(cmd.LocalFlags().FlagUsages()) {
			if strings.Count(line, "(default") > 1 || strings.Contains(line, "(default 0s)") {
				t.Errorf("%s --help: %s", cmd.CommandPath(), strings.TrimSpace(line))
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard}))
}
