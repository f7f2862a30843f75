package main

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
)

func newReserveCmd() *cobra.Command {
	var (
		f           clientFlags
		output      string
		lease, wait time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reserve -o FILE QUEUE",
		Short: "Take a message under a lease, write it to a file and print its delivery id",
		Long: `Reserve takes the message at the head of QUEUE under a lease, writes its bytes to
FILE and prints its delivery id. The message stays leased, invisible to others, until
'keyq ack ID' removes it, 'keyq nack ID' gives it back, or the lease runs out (--lease,
else the queue's default lease): then it is delivered again. The lease does not end
when this command exits. When the queue is empty it says so on standard error and
exits with status 3; with --wait it first waits that long for a message.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeQueue,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o := client.ReserveOptions{Wait: wait, Lease: lease, Detached: true}
			return reserve(cmd, &f, args[0], output, o)
		}),
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the message to this file")
	cmd.MarkFlagRequired("output")
	durationFlag(cmd.Flags(), &lease, "lease", 0, broker.MaxDuration,
		"how long until the message is delivered again unless acked; 0 for the queue's "+
			"default lease")
	durationFlag(cmd.Flags(), &wait, "wait", 0, 0,
		"wait this long for a message when the queue is empty (e.g. 5s)")
	return cmd
}

func reserve(
	cmd *cobra.Command, f *clientFlags, queue, output string, o client.ReserveOptions,
) error {
	c, err := f.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()

	out, err := createOutput(output)
	if err != nil {
		return err
	}
	defer out.discard()

	ds, err := c.Reserve(cmd.Context(), []string{queue}, o)
	if errors.Is(err, client.ErrEmpty) {
		return emptyError{queue: queue}
	}
	if err != nil {
		return &doingError{fmt.Sprintf("reserve from queue %q", queue), err}
	}
	d := ds[0]

	_, err = out.f.Write(d.Data)
	if err == nil {
		err = out.commit()
	}
	if err != nil {
		if nerr := c.Nack(cmd.Context(), d.DeliveryID, 0); nerr != nil {
			return fmt.Errorf("write message %d (and give it back to queue %q: %s): %w",
				d.ID, queue, clientText(nerr.Error()), err)
		}
		return fmt.Errorf("write message %d, given back to queue %q: %w", d.ID, queue, err)
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), d.DeliveryID)
	return err
}

func newAckCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "ack ID",
		Short: "Remove a reserved message for good",
		Long: `Ack ends the delivery ID that 'keyq reserve' printed: its message is removed for
good. A delivery whose lease already ran out is refused (its message is, or will be,
delivered again).`,
		Args: deliveryIDArg,
		RunE: f.onDelivery(func(cmd *cobra.Command, c *client.Client, id uint64) error {
			return c.Ack(cmd.Context(), id)
		}),
	}
	f.register(cmd)
	return cmd
}

func newNackCmd() *cobra.Command {
	var (
		f     clientFlags
		delay time.Duration
	)
	cmd := &cobra.Command{
		Use:   "nack [--delay D] ID",
		Short: "Give a reserved message back to its queue",
		Long: `Nack ends the delivery ID that 'keyq reserve' printed and gives its message back:
to the head of its queue, or, with --delay, ready again once that time has passed.`,
		Args: deliveryIDArg,
		RunE: f.onDelivery(func(cmd *cobra.Command, c *client.Client, id uint64) error {
			return c.Nack(cmd.Context(), id, delay)
		}),
	}
	f.register(cmd)
	durationFlag(cmd.Flags(), &delay, "delay", 0, broker.MaxDuration,
		"deliver the message again after this long")
	return cmd
}

func newTouchCmd() *cobra.Command {
	var (
		f     clientFlags
		lease time.Duration
	)
	cmd := &cobra.Command{
		Use:   "touch [--lease D] ID",
		Short: "Extend the lease of a reserved message",
		Long: `Touch extends the lease of delivery ID to --lease from now (by default, the length
it was given) and prints the new deadline.`,
		Args: deliveryIDArg,
		RunE: f.onDelivery(func(cmd *cobra.Command, c *client.Client, id uint64) error {
			deadline, err := c.Touch(cmd.Context(), id, lease)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), deadline.UTC().Format(time.RFC3339Nano))
			return err
		}),
	}
	f.register(cmd)
	durationFlag(cmd.Flags(), &lease, "lease", 0, broker.MaxDuration,
		"the new lease, from now; 0 for the length it was given")
	return cmd
}

// onDelivery is the RunE of a command on one delivery (ack, nack, touch): it parses
// the delivery id argument, connects, and runs do.
func (f *clientFlags) onDelivery(
	do func(cmd *cobra.Command, c *client.Client, id uint64) error,
) func(*cobra.Command, []string) error {
	return runE(func(cmd *cobra.Command, args []string) error {
		id, err := deliveryID(args[0])
		if err != nil {
			return err
		}
		c, err := f.dial(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		return do(cmd, c, id)
	})
}

// deliveryID parses a delivery id argument; deliveryIDArg makes a bad one a usage
// error (exit 2) before the command runs.
func deliveryID(arg string) (uint64, error) {
	id, err := strconv.ParseUint(arg, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("delivery id %q is not a number", arg)
	}
	return id, nil
}
