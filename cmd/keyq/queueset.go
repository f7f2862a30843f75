package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/broker"
)

func newQueueCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show or change a queue's settings",
	}
	cmd.AddCommand(newQueueSetCmd(), newQueueShowCmd())
	return cmd
}

// queueSetFlags are the flags of `keyq queue set`; only those given are changed.
type queueSetFlags struct {
	maxLength, maxBytes int64
	overflow            string
	lease, ttl          time.Duration
	maxDeliveries       int64
	deadLetter          string
	expiredToDLQ        bool
}

func (q *queueSetFlags) register(fs *pflag.FlagSet) {
	countFlag(fs, &q.maxLength, "max-length", 0, 0,
		"most messages ready or delayed; 0 for no limit")
	countFlag(fs, &q.maxBytes, "max-bytes", 0, 0,
		"most payload bytes ready or delayed; 0 for no limit")
	fs.StringVar(&q.overflow, "overflow", "reject",
		"what a put into a full queue does: reject or drop-oldest")
	durationFlag(fs, &q.lease, "lease", 0, broker.MaxDuration,
		"default lease of a reserve; 0 for the server's")
	countFlag(fs, &q.maxDeliveries, "max-deliveries", 0, math.MaxUint32,
		"deliveries before a message is dead-lettered; 0 for no limit")
	fs.StringVar(&q.deadLetter, "dead-letter", "",
		`dead-letter queue; "" for QUEUE.dlq`)
	durationFlag(fs, &q.ttl, "ttl", 0, broker.MaxDuration,
		"default time to live of a put; 0 for none")
	fs.BoolVar(&q.expiredToDLQ, "expired-to-dlq", false,
		"dead-letter expired messages instead of dropping them")
}

// changes returns one client.QueueSetting per flag given on the command line.
func (q *queueSetFlags) changes(fs *pflag.FlagSet) ([]client.QueueSetting, error) {
	var ch []client.QueueSetting
	add := func(name string, s func() client.QueueSetting) {
		if fs.Changed(name) {
			ch = append(ch, s())
		}
	}
	add("max-length", func() client.QueueSetting { return client.SetMaxLength(q.maxLength) })
	add("max-bytes", func() client.QueueSetting { return client.SetMaxBytes(q.maxBytes) })
	add("lease", func() client.QueueSetting { return client.SetDefaultLease(q.lease) })
	add("max-deliveries", func() client.QueueSetting {
		return client.SetMaxDeliveries(int(q.maxDeliveries))
	})
	add("dead-letter", func() client.QueueSetting { return client.SetDeadLetter(q.deadLetter) })
	add("ttl", func() client.QueueSetting { return client.SetDefaultTTL(q.ttl) })
	add("expired-to-dlq", func() client.QueueSetting {
		return client.SetExpiredToDLQ(q.expiredToDLQ)
	})
	if fs.Changed("overflow") {
		switch q.overflow {
		case "reject":
			ch = append(ch, client.SetOverflow(client.OverflowReject))
		case "drop-oldest":
			ch = append(ch, client.SetOverflow(client.OverflowDropOldest))
		default:
			return nil, fmt.Errorf("--overflow must be reject or drop-oldest, not %q", q.overflow)
		}
	}
	if len(ch) == 0 {
		return nil, fmt.Errorf("no setting given: name at least one flag")
	}
	return ch, nil
}

func newQueueSetCmd() *cobra.Command {
	var (
		f  clientFlags
		qf queueSetFlags
	)
	cmd := &cobra.Command{
		Use:   "set QUEUE --FLAG VALUE...",
		Short: "Change some of a queue's settings",
		Long: `Set changes the settings of QUEUE that its flags name and leaves the others as
they are; the server keeps them durably. It then prints the queue as 'keyq queue show'
does. A value of 0 (or "" for --dead-letter) puts a setting back to its default.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeQueue,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			_, err := qf.changes(cmd.Flags()) // a bad or missing flag is a usage error
			return err
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			changes, err := qf.changes(cmd.Flags())
			if err != nil {
				return err
			}
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			info, err := c.SetQueue(cmd.Context(), args[0], changes...)
			if err != nil {
				return err
			}
			return printQueue(cmd.OutOrStdout(), info)
		}),
	}
	f.register(cmd)
	qf.register(cmd.Flags())
	return cmd
}

func newQueueShowCmd() *cobra.Command {
	var (
		f      clientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show QUEUE",
		Short: "Print a queue's counts and settings",
		Long: `Show prints the counts of QUEUE (messages ready, leased, delayed, expired,
dead-lettered) and its settings. --json prints the server's document as it sent it.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeQueue,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			info, err := c.QueueInfo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				var buf bytes.Buffer
				if err := json.Indent(&buf, info.Raw, "", "  "); err != nil {
					return fmt.Errorf("indent the server's document: %w", err)
				}
				buf.WriteByte('\n')
				_, err := buf.WriteTo(cmd.OutOrStdout())
				return err
			}
			return printQueue(cmd.OutOrStdout(), info)
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON document")
	return cmd
}

// printQueue prints a queue's counts and settings, one per line.
func printQueue(w io.Writer, q *client.QueueInfo) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	s := q.Settings
	rows := []struct {
		name  string
		value any
	}{
		{"queue", q.Name},
		{"messages", q.Messages},
		{"bytes", q.Bytes},
		{"inflight", q.Inflight},
		{"deferred", q.Deferred},
		{"waiting", q.Waiting},
		{"expired", q.Expired},
		{"dead_lettered", q.DeadLettered},
		{"dropped", q.Dropped},
		{"max_length", limit(s.MaxLength)},
		{"max_bytes", limit(s.MaxBytes)},
		{"overflow", s.Overflow},
		{"default_lease", orDefault(s.DefaultLease, "server default")},
		{"max_deliveries", limit(int64(s.MaxDeliveries))},
		{"dead_letter", s.DeadLetter},
		{"default_ttl", orDefault(s.DefaultTTL, "none")},
		{"expired_to_dlq", s.ExpiredToDLQ},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%v\n", r.name, r.value)
	}
	return tw.Flush()
}

func limit(n int64) any {
	if n == 0 {
		return "none"
	}
	return n
}

func orDefault(d time.Duration, zero string) any {
	if d == 0 {
		return zero
	}
	return d
}
