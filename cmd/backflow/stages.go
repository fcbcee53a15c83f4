package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/retention"
	"github.com/backflow-dev/backflow/stages/source"
	_ "github.com/backflow-dev/backflow/stages/source/engines"
	"github.com/backflow-dev/backflow/stages/storage"
)

// storageFlags are the flags every stage that touches storage has.
type storageFlags struct {
	url string
	// keyPrefix confines the keys the stage uses to a namespace's prefix.
	keyPrefix string
}

func (s *storageFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.url, "storage", "", "storage URL: s3://bucket/prefix?endpoint=https://host or file:///dir; S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	cmd.Flags().StringVar(&s.keyPrefix, "key-prefix", "", "refuse any key outside this prefix (relative to the storage URL's, ending in '/'): the namespace's prefix in the storage; empty refuses none")
	_ = cmd.MarkFlagRequired("storage")
}

func (s *storageFlags) open() (storage.Backend, error) {
	return storage.Open(s.url, storage.CredentialsFromEnv(os.Getenv))
}

// streamingMemoryLimit is the soft memory limit of the streaming stages. The
// Go runtime otherwise lets the heap grow to twice what is live, and a long
// dump that churns through buffers creeps up with it; with the limit the
// collector keeps a 1 GiB and an 8 GiB dump at the same size. It is soft: a
// stage that needs more (larger parts) gets it, the collector just works
// harder. GOMEMLIMIT overrides it.
const streamingMemoryLimit = 80 << 20

func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(streamingMemoryLimit)
	}
}

// decodeSpec reads a JSON or YAML spec fragment given inline or, with a
// leading @, from a file.
func decodeSpec(flag, value string, into any) error {
	data := []byte(value)
	if strings.HasPrefix(value, "@") {
		var err error
		if data, err = os.ReadFile(value[1:]); err != nil {
			return fmt.Errorf("--%s: %w", flag, err)
		}
	}
	if err := yaml.UnmarshalStrict(data, into); err != nil {
		return fmt.Errorf("--%s: %w", flag, err)
	}
	return nil
}

// identityFlags are the flags of the stages that decrypt.
type identityFlags struct {
	files []string
	dir   string
}

func (i *identityFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&i.files, "identity-file", nil, "age identity file; repeatable")
	cmd.Flags().StringVar(&i.dir, "identity-dir", "", "directory whose files are age identities, if it exists")
}

// read reads the identity files, and every file in the directory when it
// exists (a mounted Secret; its absence means the step has no identity).
func (i *identityFlags) read() ([]age.Identity, error) {
	files, dir := append([]string(nil), i.files...), i.dir
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			return nil, fmt.Errorf("age identity: %w", err)
		}
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	var ids []age.Identity
	for _, f := range files {
		file, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("age identity: %w", err)
		}
		got, err := pipeline.ParseIdentities(file)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		ids = append(ids, got...)
	}
	return ids, nil
}

// writeOutputs writes one file per value into dir, for Argo's output
// parameters.
func writeOutputs(dir string, values map[string]string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, value := range values {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(value), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// manifestOutputs are the output parameters of dump and verify.
func manifestOutputs(m *stages.Manifest) map[string]string {
	data, _ := json.Marshal(m)
	return map[string]string{
		compiler.OutputKey:         m.Key,
		compiler.OutputSize:        strconv.FormatInt(m.Size, 10),
		compiler.OutputRawSize:     strconv.FormatInt(m.RawSize, 10),
		compiler.OutputChecksum:    m.Checksum,
		compiler.OutputRawChecksum: m.RawChecksum,
		// For a reader of the Workflow (the Argo UI, argo get): no template
		// declares it as an output.
		"manifest": string(data),
	}
}

// printJSON prints v as indented JSON: a manifest, a catalog, a rotation.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newDumpCommand() *cobra.Command {
	var (
		st             storageFlags
		sourceSpec     string
		pathTemplate   string
		namespace      string
		name, series   string
		storageID      string
		compression    string
		level          int
		recipients     []string
		recipientFiles []string
		recipientsEnv  string
		volumeRoot     string
		outputsDir     string
		allowEmpty     bool
		expectedSize   int64
	)
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Stream a source through compression and encryption into storage",
		Long: `Runs the source's dump (pg_dump, mysqldump/mariadb-dump, mongodump, a tar of volume
paths, or a command) and streams its output through compression, age encryption and
checksums (BLAKE3 of the plain stream, sha256 of the stored object) into storage, then
writes a manifest beside the object. Nothing is staged on disk. When the dump fails, nothing is left in storage.

Connection settings not in --source come from BACKFLOW_DB_HOST, BACKFLOW_DB_PORT,
BACKFLOW_DB_USERNAME, BACKFLOW_DB_PASSWORD, BACKFLOW_DB_DATABASE and BACKFLOW_DB_URI.`,
		Example: `  backflow dump --storage file:///tmp/backups --name app \
    --source '{"postgresql": {"connection": {"host": "127.0.0.1", "database": "app"}}}' \
    --recipient age1...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			limitMemory()
			var src v1.BackupSource
			if err := decodeSpec("source", sourceSpec, &src); err != nil {
				return err
			}
			src.AllowEmpty = src.AllowEmpty || allowEmpty
			backend, err := st.open()
			if err != nil {
				return err
			}
			var lines []string
			lines = append(lines, recipients...)
			if recipientsEnv != "" {
				lines = append(lines, os.Getenv(recipientsEnv))
			}
			for _, f := range recipientFiles {
				data, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("recipients: %w", err)
				}
				lines = append(lines, string(data))
			}
			rs, names, err := pipeline.ParseRecipients(lines...)
			if err != nil {
				return err
			}
			if series == "" {
				series = name
			}
			m, err := stages.Dump(cmd.Context(), stages.DumpConfig{
				Source:        src,
				SourceOptions: source.Options{Namespace: namespace, Getenv: os.Getenv, VolumeRoot: volumeRoot},
				Storage:       backend, PathTemplate: pathTemplate, KeyPrefix: st.keyPrefix,
				Namespace: namespace, Name: name, Series: series, StorageID: storageID,
				Compression: pipeline.Algorithm(compression), Level: level,
				Recipients: rs, RecipientNames: names,
				ProgressFile: os.Getenv("ARGO_PROGRESS_FILE"), ExpectedSize: expectedSize, Version: version,
				Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "stored %s/%s: %d bytes (%d raw), %s\n", backend, m.Key, m.Size, m.RawSize, m.Checksum)
			_ = printJSON(cmd.OutOrStdout(), m)
			return writeOutputs(outputsDir, manifestOutputs(m))
		},
	}
	st.register(cmd)
	f := cmd.Flags()
	f.StringVar(&sourceSpec, "source", "", "the Backup's spec.source as JSON or YAML, or @file")
	f.StringVar(&pathTemplate, "path", compiler.DefaultPath, "object key template (Go template with safe sprig functions)")
	f.StringVar(&namespace, "namespace", "default", "namespace of the Backup, for the key and Service host names")
	f.StringVar(&name, "name", "", "name of the Backup")
	f.StringVar(&series, "series", "", "series of the Backup (its schedule's name); defaults to --name")
	f.StringVar(&storageID, "storage-id", "", "the BackupStorage as <namespace>/<name>, recorded in the manifest and the object's metadata: rotate deletes only what names its own")
	f.StringVar(&compression, "compression", "zstd", "zstd, gzip or none")
	f.IntVar(&level, "level", 0, "compression level (0 for the algorithm's default)")
	f.StringArrayVar(&recipients, "recipient", nil, "age recipient (age1...) to encrypt to; repeatable")
	f.StringArrayVar(&recipientFiles, "recipients-file", nil, "file with age recipients, one per line; repeatable")
	f.StringVar(&recipientsEnv, "recipients-env", "", "environment variable with more age recipients, one per line")
	f.StringVar(&volumeRoot, "volume-root", compiler.VolumeRoot, "where the PVC of a pvc source is mounted")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory to write Argo output parameters into")
	f.BoolVar(&allowEmpty, "allow-empty", false, "accept a dump of zero bytes")
	f.Int64Var(&expectedSize, "expected-size", 0, "raw size in bytes the dump expects, for Argo progress (the series' previous verified backup's); 0 asks the source for an estimate")
	_ = cmd.MarkFlagRequired("source")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newVerifyCommand() *cobra.Command {
	var (
		st          storageFlags
		key         string
		ids         identityFlags
		restoreTest string
		engine      string
		namespace   string
		outputsDir  string
		expect      string
		mark        bool
		latest      latestFlags
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Read a backup back and check its checksums, optionally restoring it into a scratch database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			limitMemory()
			backend, err := st.open()
			if err != nil {
				return err
			}
			identities, err := ids.read()
			if err != nil {
				return err
			}
			if latest.latest {
				if key, expect, err = latest.resolve(cmd, st, backend, expect); err != nil {
					return err
				}
			}
			cfg := stages.VerifyConfig{
				Storage: backend, Key: key, KeyPrefix: st.keyPrefix, Identities: identities, ExpectChecksum: expect, ReadOnly: !mark,
				SourceOptions: source.Options{Namespace: namespace, Getenv: os.Getenv},
				ProgressFile:  os.Getenv("ARGO_PROGRESS_FILE"), Stderr: cmd.ErrOrStderr(),
			}
			if restoreTest != "" {
				var spec v1.RestoreTest
				if err := decodeSpec("restore-test", restoreTest, &spec); err != nil {
					return err
				}
				cfg.RestoreTest = &stages.RestoreTestConfig{CheckQuery: spec.CheckQuery}
				if spec.Connection != nil {
					target, err := source.ScratchTarget(engine, *spec.Connection)
					if err != nil {
						return fmt.Errorf("--engine: %w", err)
					}
					cfg.RestoreTest.Target = &target
				}
			}
			m, err := stages.Verify(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "verified %s/%s: %d bytes, %s\n", backend, m.Key, m.Size, m.Checksum)
			_ = printJSON(cmd.OutOrStdout(), m)
			return writeOutputs(outputsDir, manifestOutputs(m))
		},
	}
	st.register(cmd)
	ids.register(cmd)
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "key of the object to verify")
	f.StringVar(&restoreTest, "restore-test", "", "the Backup's spec.verify.restoreTest as JSON or YAML, or @file")
	f.StringVar(&engine, "engine", "", "engine of the scratch database of a restore test: "+strings.Join(source.ScratchEngineNames(), ", "))
	f.StringVar(&expect, "expect-checksum", "", "sha256:<hex> the object must have (the Backup's status.checksum); a manifest or object that differs is refused")
	f.BoolVar(&mark, "mark-verified", true, "record in the manifest that the backup was verified (needs write access; off for a read-only check)")
	f.StringVar(&namespace, "namespace", "default", "namespace, for Service host names")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory to write Argo output parameters into")
	latest.register(cmd)
	return cmd
}

func newRestoreCommand() *cobra.Command {
	var (
		st          storageFlags
		key         string
		ids         identityFlags
		targetSpec  string
		outputsDir  string
		verifyFirst bool
		namespace   string
		volumeRoot  string
		expect      string
		latest      latestFlags
	)
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Stream a backup back into a database, a volume or a command",
		Long: `Reads the object, decrypts and decompresses it, and feeds it to the target while
checking its checksums. With --verify-first (the default) the object's checksum is
checked in a first pass, before the target sees a byte.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			limitMemory()
			var target v1.RestoreTarget
			if err := decodeSpec("target", targetSpec, &target); err != nil {
				return err
			}
			backend, err := st.open()
			if err != nil {
				return err
			}
			identities, err := ids.read()
			if err != nil {
				return err
			}
			if latest.latest {
				if key, expect, err = latest.resolve(cmd, st, backend, expect); err != nil {
					return err
				}
			}
			m, err := stages.Restore(cmd.Context(), stages.RestoreConfig{
				Storage: backend, Key: key, KeyPrefix: st.keyPrefix, Identities: identities, Target: target, VerifyFirst: verifyFirst, ExpectChecksum: expect,
				SourceOptions: source.Options{Namespace: namespace, Getenv: os.Getenv, VolumeRoot: volumeRoot},
				ProgressFile:  os.Getenv("ARGO_PROGRESS_FILE"), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "restored %s/%s: %d bytes\n", backend, m.Key, m.RawSize)
			return writeOutputs(outputsDir, manifestOutputs(m))
		},
	}
	st.register(cmd)
	ids.register(cmd)
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "key of the object to restore")
	f.StringVar(&targetSpec, "target", "", "the Restore's spec.target as JSON or YAML, or @file")
	f.BoolVar(&verifyFirst, "verify-first", true, "check the object's checksum before the target sees a byte")
	f.StringVar(&expect, "expect-checksum", "", "sha256:<hex> the object must have (the Backup's status.checksum); a manifest or object that differs is refused before the target sees a byte")
	f.StringVar(&namespace, "namespace", "default", "namespace, for Service host names")
	f.StringVar(&volumeRoot, "volume-root", compiler.VolumeRoot, "where the PVC of a pvc target is mounted")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory to write Argo output parameters into")
	latest.register(cmd)
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

// retentionFlags are the rules of rotate, one flag each; negative for a rule
// that is not set.
type retentionFlags struct {
	days, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly, keepYearly int
}

func (r *retentionFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&r.days, compiler.ParamDays, -1, "keep backups younger than this many days, verified or not (negative: no such rule)")
	f.IntVar(&r.keepLast, compiler.ParamKeepLast, -1, "keep this many newest verified backups (negative: no such rule)")
	f.IntVar(&r.keepHourly, compiler.ParamKeepHourly, -1, "keep the newest verified backup of each of the last N hours that have one")
	f.IntVar(&r.keepDaily, compiler.ParamKeepDaily, -1, "keep the newest verified backup of each of the last N days that have one")
	f.IntVar(&r.keepWeekly, compiler.ParamKeepWeekly, -1, "keep the newest verified backup of each of the last N ISO weeks that have one")
	f.IntVar(&r.keepMonthly, compiler.ParamKeepMonthly, -1, "keep the newest verified backup of each of the last N months that have one")
	f.IntVar(&r.keepYearly, compiler.ParamKeepYearly, -1, "keep the newest verified backup of each of the last N years that have one")
}

func (r *retentionFlags) rules() retention.Rules {
	set := func(v int) *int {
		if v < 0 {
			return nil
		}
		return &v
	}
	return retention.Rules{
		Days: set(r.days), KeepLast: set(r.keepLast), KeepHourly: set(r.keepHourly), KeepDaily: set(r.keepDaily),
		KeepWeekly: set(r.keepWeekly), KeepMonthly: set(r.keepMonthly), KeepYearly: set(r.keepYearly),
	}
}

// Output formats of rotate.
const (
	outputTable = "table"
	outputJSON  = "json"
)

func newRotateCommand() *cobra.Command {
	var (
		st           storageFlags
		key          string
		pathTemplate string
		namespace    string
		series       string
		storageID    string
		timezone     string
		retention    retentionFlags
		dryRun       bool
		output       string
		outputsDir   string
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Apply retention to one series of backups",
		Long: `Lists the objects below the series' scope (the directory part of --path that is the
same for every run of the series), selects the backups whose manifest names the
series' namespace, series and storage, and applies retention to them: the newest
verified backup is always kept, nothing is deleted while the series has no verified
backup, and each kept or deleted backup is printed with the rule that decided it.
Other series, other namespaces and files backflow did not write are left alone,
wherever they lie. With --key, the manifest of that backup of the series gives
--namespace, --series and --storage-id when they are not set.`,
		Example: `  backflow rotate --storage file:///tmp/backups --key default/shop/20261122T030000Z.pgdump.zst.age \
    --keep-last 3 --keep-daily 7 --keep-monthly 12 --timezone Europe/Berlin --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != outputTable && output != outputJSON {
				return fmt.Errorf("--output must be %s or %s", outputTable, outputJSON)
			}
			loc, err := time.LoadLocation(timezone)
			if err != nil {
				return fmt.Errorf("--timezone: %w", err)
			}
			backend, err := st.open()
			if err != nil {
				return err
			}
			if key != "" && st.keyPrefix != "" {
				// Before its manifest is read.
				if err := pathtemplate.Confine(st.keyPrefix, key); err != nil {
					return fmt.Errorf("rotate refused, nothing was listed or deleted: --key %w", err)
				}
			}
			flags := cmd.Flags()
			if key != "" && (!flags.Changed("namespace") || !flags.Changed("series") || !flags.Changed("storage-id")) {
				m, err := stages.ReadManifest(cmd.Context(), backend, key)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				if !flags.Changed("namespace") {
					namespace = m.Namespace
				}
				if !flags.Changed("series") {
					series = m.Series
				}
				if !flags.Changed("storage-id") {
					storageID = m.Storage
				}
			}
			scope, err := pathtemplate.Scope(pathTemplate, namespace, series)
			if err != nil {
				return fmt.Errorf("--path: %w", err)
			}
			res, err := stages.Rotate(cmd.Context(), stages.RotateConfig{
				Storage: backend, Scope: scope, KeyPrefix: st.keyPrefix, Namespace: namespace, Series: series, StorageID: storageID, Key: key,
				Rules: retention.rules(), Location: loc, DryRun: dryRun,
			})
			if err != nil {
				return err
			}
			report := res.Report()
			data, err := json.Marshal(report)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == outputJSON {
				if err := printJSON(out, res); err != nil {
					return err
				}
			} else {
				below := scope
				if below == "" {
					below = "the top of the storage"
				}
				fmt.Fprintf(out, "series %s/%s of storage %q, listed below %s:\n", namespace, series, storageID, below)
				printDecisions(out, res, loc)
			}
			return writeOutputs(outputsDir, map[string]string{compiler.OutputRotation: string(data)})
		},
	}
	st.register(cmd)
	retention.register(cmd)
	f := cmd.Flags()
	f.StringVar(&key, "key", "", "key of the backup just written: it must be one of the series, and its manifest names the series when the flags do not")
	f.StringVar(&pathTemplate, "path", compiler.DefaultPath, "the series' object key template, as given to dump: its part that is the same for every run is what rotate lists")
	f.StringVar(&namespace, "namespace", "default", "namespace of the series")
	f.StringVar(&series, "series", "", "series (the BackupSchedule's name, or the one-shot Backup's)")
	f.StringVar(&storageID, "storage-id", "", "the BackupStorage as <namespace>/<name>, as given to dump")
	f.StringVar(&timezone, "timezone", "UTC", "IANA time zone of the hours, days, weeks, months and years of the keep rules")
	f.BoolVar(&dryRun, "dry-run", false, "print the decision, delete nothing")
	f.StringVarP(&output, "output", "o", outputTable, "table or json")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory to write Argo output parameters into")
	cmd.MarkFlagsOneRequired("series", "key")
	return cmd
}

// printDecisions prints a rotation's decisions as a table, times in loc.
func printDecisions(w io.Writer, res *stages.RotateResult, loc *time.Location) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tTIME\tVERIFIED\tACTION\tWHY")
	for _, d := range res.Decisions {
		verified, action := "no", string(d.Action)
		if d.Verified {
			verified = "yes"
		}
		if d.Action == retention.ActionDeleted && res.DryRun {
			action = "would delete"
		}
		key := d.Key
		switch d.Kind {
		case retention.KindOrphan:
			key += " (no manifest)"
		case retention.KindManifest:
			key += stages.ManifestSuffix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", key, d.Time.In(loc).Format("2006-01-02 15:04 MST"), verified, action, d.Why())
	}
	_ = tw.Flush()
	verb := "deleted"
	if res.DryRun {
		verb = "would delete (dry run)"
	}
	fmt.Fprintf(w, "kept %d, %s %d; left alone %d objects below the scope that are not this series' (other series, namespaces or storages, files backflow did not write)\n",
		res.Kept, verb, res.Deleted, res.Foreign)
}
