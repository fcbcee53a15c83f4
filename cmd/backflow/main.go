// Command backflow is the one binary of backflow: the controller, every
// workflow step and the command-line tools are its subcommands, so a single
// image serves them all.
package main

import (
	"context"
	"errors"
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
		newListCommand(),
		newShowCommand(),
		newNotifyCommand(),
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
	stopProfile, err := startCPUProfile()
	if err == nil {
		err = newRootCommand().ExecuteContext(ctx)
		stopProfile()
	}
	if err != nil && ctx.Err() != nil {
		// Stopped from outside: the pod deleted (a node drain, a person) or
		// Ctrl-C. What failed after the signal is its consequence, and
		// another attempt may well finish.
		err = stoppedError{err}
	}
	stop()
	if err != nil {
		code := exitCode(err)
		message := err.Error()
		if code == compiler.ExitCodeRetry {
			message += " (transient: the step may be retried)"
		}
		fmt.Fprintln(os.Stderr, "backflow:", message)
		writeTerminationMessage(message)
		os.Exit(code)
	}
}

// stoppedError is a failure that followed a stop signal.
type stoppedError struct{ err error }

func (e stoppedError) Error() string { return "stopped by a signal: " + e.err.Error() }
func (e stoppedError) Unwrap() error { return e.err }

// terminationMessagePath is where the kubelet reads a container's
// termination message; Argo's controller appends it to a failed step's
// message ("main: Error (exit code 1): <message>"), so the Backup's status
// names the cause rather than only the exit code.
const terminationMessagePath = "/dev/termination-log"

// writeTerminationMessage writes the message where the kubelet reads it,
// when running in a container: the file exists only there, and is never
// created elsewhere (a laptop's /dev).
func writeTerminationMessage(message string) {
	f, err := os.OpenFile(terminationMessagePath, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	// The kubelet keeps at most 4096 bytes.
	_, _ = f.WriteString(message[:min(len(message), 4096)])
}

// exitCode is compiler.ExitCodeRetry for a failure a later attempt may not
// meet, so that Argo retries the step, and 1 for any other.
func exitCode(err error) int {
	if storage.IsTransient(err) || errors.As(err, new(stoppedError)) {
		return compiler.ExitCodeRetry
	}
	return 1
}
