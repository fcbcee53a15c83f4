package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/catalog"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/storage"
)

// listFlags select backups by their manifests: list's filter, and the one
// of restore and verify --latest.
type listFlags struct {
	prefix    string
	namespace string
	series    string
	storageID string
}

func (l *listFlags) register(cmd *cobra.Command, withNamespace bool) {
	f := cmd.Flags()
	f.StringVar(&l.prefix, "prefix", "", "list only below this directory of the storage (ending in '/'); the whole storage by default")
	if withNamespace {
		f.StringVar(&l.namespace, "namespace", "", "only backups of this namespace, as their manifest records it")
	}
	f.StringVar(&l.series, "series", "", "only backups of this series (the BackupSchedule's name, or the one-shot Backup's)")
	f.StringVar(&l.storageID, "storage-id", "", "only backups written through this BackupStorage, as <namespace>/<name>")
}

func (l *listFlags) filter() catalog.Filter {
	return catalog.Filter{Namespace: l.namespace, Series: l.series, Storage: l.storageID}
}

// list reads the catalog, below the key prefix when the storage flags
// confine the stage to one, and says on stderr what it left out.
func (l *listFlags) list(cmd *cobra.Command, st storageFlags, backend storage.Backend) (*catalog.Catalog, error) {
	prefix := l.prefix
	if st.keyPrefix != "" {
		if prefix == "" {
			prefix = st.keyPrefix
		} else if err := pathtemplate.ConfineScope(st.keyPrefix, prefix); err != nil {
			return nil, fmt.Errorf("--prefix: %w", err)
		}
	}
	c, err := catalog.ListManifests(cmd.Context(), backend, prefix, l.filter())
	if err != nil {
		return nil, err
	}
	if c.WithoutManifest > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "%d objects without a manifest ignored: they are not backups\n", c.WithoutManifest)
	}
	if len(c.Unreadable) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "%d manifests this backflow cannot read ignored: %s\n", len(c.Unreadable), strings.Join(c.Unreadable, ", "))
	}
	return c, nil
}

// latestFlags are --latest and its filter, on restore and verify.
type latestFlags struct {
	latest bool
	listFlags
}

func (l *latestFlags) register(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&l.latest, "latest", false, "use the newest verified backup that --namespace, --series and --storage-id select (instead of --key); refused when several series match")
	// --namespace is the stage's own flag (Service host names); --latest
	// filters on it when it is given.
	l.listFlags.register(cmd, false)
	cmd.MarkFlagsMutuallyExclusive("latest", "key")
	cmd.MarkFlagsOneRequired("latest", "key")
}

// resolve picks the newest verified backup, and says which on stderr; it
// returns the backup's key and the checksum the stage then pins, so that
// what runs is what was listed (expect, when the user gave one, stays).
func (l *latestFlags) resolve(cmd *cobra.Command, st storageFlags, backend storage.Backend, expect string) (key, checksum string, err error) {
	if f := cmd.Flags().Lookup("namespace"); f != nil && f.Changed {
		l.namespace = f.Value.String()
	}
	c, err := l.list(cmd, st, backend)
	if err != nil {
		return "", "", err
	}
	b, err := c.LatestVerified()
	if err != nil {
		return "", "", fmt.Errorf("--latest: %w", err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "the newest verified backup of series %s/%s: %s (%s, %s)\n",
		b.Namespace, b.Series, b.Key, b.StartedAt.UTC().Format(listTimeLayout), v1.FormatSize(b.Size))
	if expect == "" {
		expect = b.Checksum
	}
	return b.Key, expect, nil
}

// listTimeLayout is how list prints a backup's time (in UTC).
const listTimeLayout = "2006-01-02 15:04:05 MST"

func newListCommand() *cobra.Command {
	var (
		st     storageFlags
		filter listFlags
		output string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the backups of a storage, from their manifests",
		Long: `Lists every backup below the storage URL: each object with a manifest beside it
(<key>.backflow.json), whichever cluster, namespace or series wrote it. Backups are
grouped by namespace, series and storage, newest first. Objects without a manifest are
not backups and are only counted, on stderr. Needs the bucket's credentials only: no
cluster.`,
		Example: `  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
  backflow list --storage 's3://backups?endpoint=https://s3.eu-west-1.amazonaws.com' --namespace shop
  backflow list --storage file:///mnt/backups --series nightly -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return fmt.Errorf("--output must be %s or %s", outputTable, outputJSON)
			}
			backend, err := st.open()
			if err != nil {
				return err
			}
			c, err := filter.list(cmd, st, backend)
			if err != nil {
				return err
			}
			if output == outputJSON {
				backups := c.Backups
				if backups == nil {
					backups = []catalog.Backup{}
				}
				return printJSON(cmd.OutOrStdout(), backups)
			}
			printCatalog(cmd.OutOrStdout(), c.Backups)
			return nil
		},
	}
	st.register(cmd)
	filter.register(cmd, true)
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "table or json (an array of manifests with verified and objectMissing)")
	return cmd
}

func newShowCommand() *cobra.Command {
	var (
		st  storageFlags
		key string
	)
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print the manifest of one backup",
		Long: `Prints the manifest of the object at --key as JSON, with whether it was verified
and whether the object is there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stages.ConfineKey(st.keyPrefix, key); err != nil {
				return fmt.Errorf("--key %w", err)
			}
			backend, err := st.open()
			if err != nil {
				return err
			}
			b, err := catalog.Show(cmd.Context(), backend, key)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), b)
		},
	}
	st.register(cmd)
	cmd.Flags().StringVar(&key, "key", "", "key of the backup's object (relative to the storage URL's prefix)")
	_ = cmd.MarkFlagRequired("key")
	return cmd
}

// printCatalog prints backups as a table, sizes for people and times in UTC.
func printCatalog(w io.Writer, backups []catalog.Backup) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tSERIES\tTIME\tKEY\tSIZE\tRAW\tCOMPRESSION\tENCRYPTION\tRECIPIENTS\tVERIFIED")
	for _, b := range backups {
		compression := string(b.Compression)
		if b.CompressionLevel != 0 {
			compression += fmt.Sprintf(" -%d", b.CompressionLevel)
		}
		recipients := strings.Join(b.Recipients, ",")
		if recipients == "" {
			recipients = "-"
		}
		verified := "no"
		if b.VerifiedAt != nil {
			verified = "yes " + b.VerifiedAt.UTC().Format(time.DateTime)
		}
		if b.ObjectMissing {
			verified += " (object missing)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(b.Namespace), dash(b.Series), b.StartedAt.UTC().Format(listTimeLayout), b.Key,
			v1.FormatSize(b.Size), v1.FormatSize(b.RawSize), compression, b.Encryption, recipients, verified)
	}
	_ = tw.Flush()
	if len(backups) == 0 {
		fmt.Fprintln(w, "no backups")
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
