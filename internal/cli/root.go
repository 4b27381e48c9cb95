// Package cli is chatreport's command line: each subcommand builds its
// components from the configuration and runs them until the context ends.
package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/chatreport/chatreport/internal/store/elastic"
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
	// ctx is the command's context, esRole the privileges it needs of an
	// Elasticsearch cluster ("" for commands that use none): set before it
	// runs.
	ctx    context.Context
	esRole elastic.Role
	stdout io.Writer
	stderr io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "chatreport",
		Short:         "Conversations Report: Kafka chat events → sessions → search API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		g.ctx, g.esRole = cmd.Context(), esRoleOf(cmd)
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&g.configPath, "config", "", "YAML configuration file (defaults apply to what it leaves out)")
	root.PersistentFlags().BoolVar(&g.checkConfig, "check-config", false, "validate the configuration, print it and exit")
	root.AddCommand(newUpCommand(g), newIngestCommand(g), newServeCommand(g), newSimulateCommand(g), newDLQCommand(g),
		newReplayCommand(g), newIndexCommand(g), newForgetCommand(g), newRefCommand(g))
	return root
}

// esRoleOf is the Elasticsearch role (deploy/elasticsearch/roles) whose
// privileges cmd needs: its top-level command's.
func esRoleOf(cmd *cobra.Command) elastic.Role {
	for cmd.HasParent() && cmd.Parent().HasParent() {
		cmd = cmd.Parent()
	}
	switch cmd.Name() {
	case "ingest":
		return elastic.RoleIngest
	case "serve":
		return elastic.RoleAPI
	case "replay", "index", "forget":
		return elastic.RoleOps
	}
	return ""
}
