package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/backflow-dev/backflow/controller/compiler"
)

// newWorkflowTemplatesCommand prints or writes the stage
// ClusterWorkflowTemplates, for `make generate` and for platform teams who
// install them with their own image.
func newWorkflowTemplatesCommand() *cobra.Command {
	var outDir, image string
	var allowed []string
	cmd := &cobra.Command{
		Use:   "workflowtemplates",
		Short: "Print the ClusterWorkflowTemplates of the backflow stages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := compiler.DefaultOptions()
			if image != "" {
				opts.Image = image
			}
			opts.AllowedImages = allowed
			if err := opts.CheckImages(); err != nil {
				return err
			}
			for _, cwt := range compiler.ClusterWorkflowTemplates(opts) {
				data, err := compiler.MarshalTemplate(cwt)
				if err != nil {
					return err
				}
				if outDir == "" {
					fmt.Fprintf(cmd.OutOrStdout(), "---\n%s", data)
					continue
				}
				if err := os.WriteFile(filepath.Join(outDir, cwt.Name+".yaml"), data, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&outDir, "out-dir", "", "write one file per template into this directory instead of printing them")
	cmd.Flags().StringVar(&image, "image", "", "backflow image the templates default to")
	cmd.Flags().StringSliceVar(&allowed, "allowed-images", nil, "user images the run templates allow besides the backflow and client images (the controller's --allowed-images)")
	return cmd
}
