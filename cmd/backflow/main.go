// Command backflow is the one binary of backflow: the controller, every
// workflow step and the command-line tools are its subcommands, so a single
// image serves them all.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "backflow",
		Short:         "Kubernetes backups that run as Argo Workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCommand(),
		newControllerCommand(),
		newDumpCommand(),
		newVerifyCommand(),
		newRestoreCommand(),
		newRotateCommand(),
		newHookCommand(),
		newInstallCommand(),
		newWorkflowTemplatesCommand(),
		newArgoCDConfigCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of backflow",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version)
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "backflow:", err)
		os.Exit(1)
	}
}
