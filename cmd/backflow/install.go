package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newInstallCommand copies the running binary to a path. The init container
// of a step uses it to put backflow into the database client image, because
// the backflow image has no shell and no cp.
func newInstallCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "install DEST",
		Short:  "Copy this binary to DEST",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			src, err := os.Open(self)
			if err != nil {
				return err
			}
			defer src.Close()
			dest := args[0]
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return err
			}
			tmp := dest + ".tmp"
			dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
			if err != nil {
				return err
			}
			if _, err := io.Copy(dst, src); err != nil {
				dst.Close()
				return err
			}
			if err := dst.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp, dest); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "installed %s\n", dest)
			return nil
		},
	}
}
