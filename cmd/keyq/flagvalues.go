package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyq/keyq/internal/broker"
)

// A flag value that breaks its rules is refused while cobra parses the command line,
// so that it is a usage error (exit status 2) whose message names the flag, and no
// request is sent.

// durationValue is a duration flag that refuses negative values and values over max.
type durationValue struct {
	d   *time.Duration
	max time.Duration // 0 for no bound above
	pos bool          // 0 is refused too
}

// durationFlag registers a duration flag that must not be negative; a positive max
// bounds it. A zero default is not shown in --help: what 0 means ("the queue's",
// "none") is for usage to say, and pflag would add "(default 0s)" beside it, since it
// reads only "0" as the zero of a flag type it does not know.
func durationFlag(fs *pflag.FlagSet, p *time.Duration, name string, def, max time.Duration,
	usage string) {
	*p = def
	fs.Var(&durationValue{d: p, max: max}, name, usage)
	if def == 0 {
		fs.Lookup(name).DefValue = "0"
	}
}

// Set implements pflag.Value.
func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 1.5s, 10m or 2h)", s)
	}
	switch {
	case d < 0:
		return fmt.Errorf("%v is negative", d)
	case d == 0 && v.pos:
		return fmt.Errorf("must be positive")
	case v.max > 0 && d > v.max:
		return fmt.Errorf("%v is over the limit of %s", d, maxText(v.max))
	}
	*v.d = d
	return nil
}

// String implements pflag.Value.
func (v *durationValue) String() string { return v.d.String() }

// Type implements pflag.Value.
func (v *durationValue) Type() string { return "duration" }

// maxText names a limit: "100 years" for the broker's longest duration.
func maxText(max time.Duration) string {
	if max == broker.MaxDuration {
		return "100 years (876000h)"
	}
	return max.String()
}

// countValue is an integer flag that refuses negative values and values over max.
type countValue struct {
	n   *int64
	max int64 // 0 for no bound above
}

// countFlag registers an int64 flag that must not be negative; a positive max
// bounds it.
func countFlag(fs *pflag.FlagSet, p *int64, name string, def, max int64, usage string) {
	*p = def
	fs.Var(&countValue{n: p, max: max}, name, usage)
}

// Set implements pflag.Value.
func (v *countValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	if n < 0 {
		return fmt.Errorf("%d is negative", n)
	}
	if v.max > 0 && n > v.max {
		return fmt.Errorf("%d is over the limit of %d", n, v.max)
	}
	*v.n = n
	return nil
}

// String implements pflag.Value.
func (v *countValue) String() string { return strconv.FormatInt(*v.n, 10) }

// Type implements pflag.Value.
func (v *countValue) Type() string { return "int" }

// deliveryIDArg checks that the command's one argument is a delivery id, so that a
// bad one is a usage error.
func deliveryIDArg(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("accepts 1 arg (a delivery id), received %d", len(args))
	}
	_, err := deliveryID(args[0])
	return err
}
