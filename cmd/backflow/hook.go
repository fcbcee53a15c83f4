package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/hook"
)

func newHookCommand() *cobra.Command {
	var (
		ec      hook.ExecConfig
		onError string
	)
	cmd := &cobra.Command{
		Use:   "hook -- COMMAND [ARG...]",
		Short: "Run a hook command in a container of a running pod",
		Long: `Runs COMMAND in a container of a pod chosen by --pod or --selector, like kubectl exec.
With --on-error Continue a failing hook is reported and the step still succeeds.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (ec.PodName == "") == (ec.Selector == "") {
				return fmt.Errorf("set exactly one of --pod and --selector")
			}
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
	f.DurationVar(&ec.Timeout, "timeout", 5*time.Minute, "how long the hook may run")
	f.StringVar(&onError, "on-error", string(v1.HookErrorFail), "Fail or Continue")
	return cmd
}
