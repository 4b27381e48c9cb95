// Package cli is chatreport's command line: each subcommand builds its
// components from the configuration and runs them until the context ends.
package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Execute runs the command line args.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// globals are the flags every subcommand has.
type globals struct {
	configPath  string
	checkConfig bool
	stdout      io.Writer
	stderr      io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "chatreport",
		Short:         "Conversations Report: Kafka chat events → sessions → search API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "YAML configuration file (defaults apply to what it leaves out)")
	root.PersistentFlags().BoolVar(&g.checkConfig, "check-config", false, "validate the configuration, print it and exit")
	root.AddCommand(newUpCommand(g), newIngestCommand(g), newServeCommand(g), newSimulateCommand(g), newDLQCommand(g),
		newReplayCommand(g), newIndexCommand(g), newForgetCommand(g))
	return root
}
