package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/hook"
)

func newHookCommand() *cobra.Command {
	var (
		ec          hook.ExecConfig
		onError     string
		commandJSON string
		timeout     int
	)
	cmd := &cobra.Command{
		Use:   "hook -- COMMAND [ARG...]",
		Short: "Run a hook command in a container of a running pod",
		Long: `Runs COMMAND in a container of a pod chosen by --pod or --selector, like kubectl exec.
With --on-error Continue a failing hook is reported and the step still succeeds.`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (ec.PodName == "") == (ec.Selector == "") {
				return fmt.Errorf("set exactly one of --pod and --selector")
			}
			if commandJSON != "" {
				if len(args) > 0 {
					return fmt.Errorf("give the command either after -- or as --command-json, not both")
				}
				if err := json.Unmarshal([]byte(commandJSON), &args); err != nil {
					return fmt.Errorf("--command-json must be a JSON list of strings: %w", err)
				}
			}
			if len(args) == 0 {
				return fmt.Errorf("no hook command")
			}
			ec.Timeout = time.Duration(timeout) * time.Second
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return err
			}
			ec.Command = args
			ec.Stdout, ec.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = hook.Exec(cmd.Context(), cfg, ec)
			if err != nil && v1.HookErrorPolicy(onError) == v1.HookErrorContinue {
				fmt.Fprintf(cmd.ErrOrStderr(), "hook failed, continuing as onError is Continue: %v\n", err)
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ec.Namespace, "namespace", "default", "namespace of the pod")
	f.StringVar(&ec.PodName, "pod", "", "name of the pod")
	f.StringVar(&ec.Selector, "selector", "", "label selector choosing the pod")
	f.StringVar(&ec.Container, "container", "", "container of the pod (default: its first)")
	f.IntVar(&timeout, "timeout-seconds", 300, "seconds the hook may run")
	f.StringVar(&commandJSON, "command-json", "", "the command as a JSON list, instead of after --")
	f.StringVar(&onError, "on-error", string(v1.HookErrorFail), "Fail or Continue")
	return cmd
}
