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

	"filippo.io/age"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	_ "github.com/backflow-dev/backflow/stages/source/engines"
	"github.com/backflow-dev/backflow/stages/storage"
)

// storageFlags are the flags every stage that touches storage has.
type storageFlags struct {
	url string
}

func (s *storageFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.url, "storage", "", "storage URL: s3://bucket/prefix?endpoint=https://host or file:///dir; S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
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

func printManifest(w io.Writer, m *stages.Manifest) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(m)
}

func newDumpCommand() *cobra.Command {
	var (
		st             storageFlags
		sourceSpec     string
		pathTemplate   string
		namespace      string
		name, series   string
		compression    string
		level          int
		recipients     []string
		recipientFiles []string
		recipientsEnv  string
		volumeRoot     string
		outputsDir     string
		allowEmpty     bool
	)
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Stream a source through compression and encryption into storage",
		Long: `Runs the source's dump (pg_dump, mysqldump/mariadb-dump, mongodump, a tar of volume
paths, or a command) and streams its output through compression, age encryption and
sha256 into storage, then writes a manifest beside the object. Nothing is staged on
disk. When the dump fails, nothing is left in storage.

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
				Storage:       backend, PathTemplate: pathTemplate,
				Namespace: namespace, Name: name, Series: series,
				Compression: pipeline.Algorithm(compression), Level: level,
				Recipients: rs, RecipientNames: names,
				ProgressFile: os.Getenv("ARGO_PROGRESS_FILE"), Version: version,
				Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "stored %s/%s: %d bytes (%d raw), %s\n", backend, m.Key, m.Size, m.RawSize, m.Checksum)
			printManifest(cmd.OutOrStdout(), m)
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
	f.StringVar(&compression, "compression", "zstd", "zstd, gzip or none")
	f.IntVar(&level, "level", 0, "compression level (0 for the algorithm's default)")
	f.StringArrayVar(&recipients, "recipient", nil, "age recipient (age1...) to encrypt to; repeatable")
	f.StringArrayVar(&recipientFiles, "recipients-file", nil, "file with age recipients, one per line; repeatable")
	f.StringVar(&recipientsEnv, "recipients-env", "", "environment variable with more age recipients, one per line")
	f.StringVar(&volumeRoot, "volume-root", compiler.VolumeRoot, "where the PVC of a pvc source is mounted")
	f.StringVar(&outputsDir, "outputs-dir", "", "directory to write Argo output parameters into")
	f.BoolVar(&allowEmpty, "allow-empty", false, "accept a dump of zero bytes")
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
			cfg := stages.VerifyConfig{
				Storage: backend, Key: key, Identities: identities, ExpectChecksum: expect, ReadOnly: !mark,
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
			printManifest(cmd.OutOrStdout(), m)
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
	_ = cmd.MarkFlagRequired("key")
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
			m, err := stages.Restore(cmd.Context(), stages.RestoreConfig{
				Storage: backend, Key: key, Identities: identities, Target: target, VerifyFirst: verifyFirst, ExpectChecksum: expect,
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
	_ = cmd.MarkFlagRequired("key")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

func newRotateCommand() *cobra.Command {
	var (
		st       storageFlags
		series   string
		key      string
		days     int
		keepLast int
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Apply retention to one series of backups",
		Long: `Lists the backups of one series (the directory of --key, or --series), keeps those
that --days or --keep-last keep and the newest verified one, and deletes the rest.
Only objects inside the series are touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backend, err := st.open()
			if err != nil {
				return err
			}
			if key != "" {
				series = pathtemplate.Series(key)
			}
			cfg := stages.RotateConfig{Storage: backend, Series: series, DryRun: dryRun}
			if days >= 0 {
				cfg.Days = &days
			}
			if keepLast >= 0 {
				cfg.KeepLast = &keepLast
			}
			res, err := stages.Rotate(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			out := cmd.OutOrStdout()
			for _, k := range res.Kept {
				fmt.Fprintf(out, "kept %s\n", k)
			}
			for _, k := range res.Deleted {
				fmt.Fprintf(out, "%s %s\n", verb, k)
			}
			for _, k := range res.Orphans {
				fmt.Fprintf(out, "%s %s (no manifest: left by a failed dump)\n", verb, k)
			}
			return nil
		},
	}
	st.register(cmd)
	f := cmd.Flags()
	f.StringVar(&series, "series", "", "directory of the series, ending in /")
	f.StringVar(&key, "key", "", "key of a backup of the series (its directory is the series)")
	f.IntVar(&days, "days", -1, "keep backups younger than this many days (negative: no such rule)")
	f.IntVar(&keepLast, "keep-last", -1, "keep this many newest backups (negative: no such rule)")
	f.BoolVar(&dryRun, "dry-run", false, "say what would be deleted, delete nothing")
	cmd.MarkFlagsOneRequired("series", "key")
	cmd.MarkFlagsMutuallyExclusive("series", "key")
	return cmd
}
