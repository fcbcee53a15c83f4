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

	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages/storage"
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
		code := exitCode(err)
		if code == compiler.ExitCodeRetry {
			fmt.Fprintln(os.Stderr, "backflow:", err, "(transient: the step may be retried)")
		} else {
			fmt.Fprintln(os.Stderr, "backflow:", err)
		}
		os.Exit(code)
	}
}

// exitCode is compiler.ExitCodeRetry for a failure a later attempt may not
// meet, so that Argo retries the step, and 1 for any other.
func exitCode(err error) int {
	if storage.IsTransient(err) {
		return compiler.ExitCodeRetry
	}
	return 1
}
