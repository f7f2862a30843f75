package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyq/keyq/client"
)

// defaultAddr is where client commands look for a server when neither --addr nor
// KEYQ_ADDR says otherwise; it is also where `keyq serve` listens by default.
const defaultAddr = "127.0.0.1:7470"

// addrEnv names the environment variable that client commands read for the address.
const addrEnv = "KEYQ_ADDR"

// dialTimeout bounds the connection and handshake of a client command.
const dialTimeout = 10 * time.Second

func newRootCmd(st streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyq",
		Short: "A message-queue server with named FIFO queues, and its client",
		Long: `keyq keeps named FIFO queues: put appends a message to a queue, get takes the
message at its head. 'keyq serve' runs the server; the other commands talk to one.

Exit statuses: 0 ok, 3 queue empty (get, reserve), 2 usage error, 1 any other error.`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(st.in)
	root.SetOut(st.out)
	root.SetErr(st.err)

	root.AddCommand(
		newServeCmd(st.signals),
		newPutCmd(),
		newGetCmd(),
		newLenCmd(),
		newReserveCmd(),
		newAckCmd(),
		newNackCmd(),
		newTouchCmd(),
		newQueueCmd(),
		newStatsCmd(),
		newTopCmd(),
		newVersionCmd(),
		newBenchCmd(),
		newRepairCmd(),
	)
	return root
}

// runE wraps a command's body so that the errors it returns count as run errors
// (exit status 1 or 3) rather than usage errors.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return &runError{err: err}
		}
		return nil
	}
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	addr string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "addr", "",
		"server address (default $"+addrEnv+", else "+defaultAddr+")")
}

// address returns the server address: --addr, else $KEYQ_ADDR, else defaultAddr.
func (f *clientFlags) address() string {
	if f.addr != "" {
		return f.addr
	}
	if env := os.Getenv(addrEnv); env != "" {
		return env
	}
	return defaultAddr
}

// dial connects to the server the flags name.
func (f *clientFlags) dial(ctx context.Context) (*client.Client, error) {
	addr := f.address()
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()

	return client.Dial(dctx, addr) // its errors name the address
}
