package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyq/keyq/client"
)

func newStatsCmd() *cobra.Command {
	var (
		f      clientFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Print the server's totals and each queue's counts",
		Long: `Stats prints the server's totals since it started and, for each queue, the
messages and bytes waiting, the puts and gets so far, and the messages under a lease
(inflight) or held back by a delay (deferred). A server with a memory limit
(serve --max-memory, which a --storage memory server has by default) adds a line
"held bytes N of M": what counts toward the limit, and the limit. --json prints the
server's document as it sent it (indented), with every field.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()

			s, err := c.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printStatsJSON(cmd.OutOrStdout(), s)
			}
			return printStats(cmd.OutOrStdout(), s)
		}),
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the server's JSON document")
	return cmd
}

func printStatsJSON(w io.Writer, s *client.Stats) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, s.Raw, "", "  "); err != nil {
		return fmt.Errorf("indent stats document: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// printStats writes the totals, then a table with a row per queue.
func printStats(w io.Writer, s *client.Stats) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "version\t%s\n", s.Version)
	fmt.Fprintf(tw, "uptime\t%s\n", s.Uptime().Round(time.Second))
	fmt.Fprintf(tw, "connections\t%d\n", s.Connections)
	fmt.Fprintf(tw, "queues\t%d\n", s.Queues)
	fmt.Fprintf(tw, "messages\t%d\n", s.Messages)
	fmt.Fprintf(tw, "bytes\t%d\n", s.Bytes)
	fmt.Fprintf(tw, "puts\t%d\n", s.Puts)
	fmt.Fprintf(tw, "gets\t%d\n", s.Gets)
	fmt.Fprintf(tw, "empty gets\t%d\n", s.EmptyGets)
	if s.MaxMemory > 0 {
		fmt.Fprintf(tw, "held bytes\t%d of %d (--max-memory)\n", s.HeldBytes, s.MaxMemory)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(s.QueueStats) == 0 {
		return nil
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "QUEUE\tMESSAGES\tBYTES\tPUTS\tGETS\tINFLIGHT\tDEFERRED")
	for _, q := range s.QueueStats {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", q.Name, q.Messages, q.Bytes, q.Puts,
			q.Gets, q.Inflight, q.Deferred)
	}
	return tw.Flush()
}
