package main

import (
	"github.com/spf13/cobra"

	"github.com/backflow-dev/backflow/health"
)

// newArgoCDConfigCommand prints the argocd-cm patch that installs backflow's
// health checks into Argo CD.
func newArgoCDConfigCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "argocd-config",
		Short: "Print the argocd-cm patch with backflow's Argo CD health checks",
		Long: `Prints a ConfigMap with one resource.customizations.health.backflow.dev_<Kind> key per
kind, to merge into Argo CD's argocd-cm:

  backflow argocd-config | kubectl apply --server-side --field-manager backflow -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := health.ArgoCDConfigMap(namespace)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "argocd", "namespace of Argo CD")
	return cmd
}
