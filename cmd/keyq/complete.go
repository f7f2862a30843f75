package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeTimeout bounds the server round trip behind a shell completion, so that
// a server that is down costs the person pressing Tab little.
const completeTimeout = time.Second

// completeQueue completes a command's first argument with the names of the queues
// the server has, and leaves later arguments (put's FILE) to the shell's file
// completion.
func (f *clientFlags) completeQueue(
	cmd *cobra.Command, args []string, prefix string,
) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completeTimeout)
	defer cancel()

	c, err := f.dial(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer c.Close()
	s, err := c.Stats(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}

	var names []cobra.Completion
	for _, q := range s.QueueStats {
		if strings.HasPrefix(q.Name, prefix) {
			names = append(names, q.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
