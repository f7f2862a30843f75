package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/keyq/keyq/internal/server"
)

// version is keyq's version when a release build sets it with
// -ldflags "-X main.version=1.2.3"; empty means server.Version.
var version string

// keyqVersion returns the version this binary reports.
func keyqVersion() string {
	if version != "" {
		return version
	}
	return server.Version
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print keyq's version",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "keyq %s (%s, %s/%s%s)\n",
				keyqVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH, vcsRevision())
			return err
		}),
	}
}

// vcsRevision returns ", commit abc1234" when the binary was built from a git
// checkout with VCS stamping, else "".
func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 7 {
			return ", commit " + s.Value[:7]
		}
	}
	return ""
}
