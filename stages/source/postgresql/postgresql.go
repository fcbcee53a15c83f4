// Package postgresql is the PostgreSQL engine: pg_dump in the plain, custom
// or tar format, restored with psql or pg_restore in a single transaction,
// restore tests with a check query or, for the custom and tar formats,
// pg_restore --list without a database.
package postgresql

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strconv"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// DefaultPort is PostgreSQL's port.
const DefaultPort = 5432

// The formats of pg_dump's streams.
var (
	FormatPlain  = source.Format{Name: "pg-plain", Extension: ".sql"}
	FormatCustom = source.Format{Name: "pg-custom", Extension: ".pgdump"}
	FormatTar    = source.Format{Name: "pg-tar", Extension: ".pgdump.tar"}
)

// clientImage is the key of the client image, which has pg_dump, psql and
// pg_restore.
const clientImage = Name

// Name is the engine's name: the source's and target's field.
const Name = "postgresql"

// noPassword keeps libpq's clients from ever prompting: the password comes
// from the environment or nowhere.
const noPassword = "--no-password"

func init() { source.Register(Engine{}) }

// Engine is the PostgreSQL engine.
type Engine struct{}

func (Engine) Name() string  { return Name }
func (Engine) Title() string { return "PostgreSQL" }

func (Engine) Formats() []source.Format { return []source.Format{FormatPlain, FormatCustom, FormatTar} }

func (Engine) ClientImages() map[string]string {
	return map[string]string{clientImage: "docker.io/library/postgres:17-alpine"}
}

func (Engine) CheckSource(v1.BackupSource) error { return nil }

func (Engine) DumpPod(src v1.BackupSource) source.Pod {
	s := src.PostgreSQL
	return source.Pod{ClientImage: clientImage, Image: s.Image, Connection: &s.Connection}
}

func (Engine) RestorePod(target v1.RestoreTarget) source.Pod {
	t := target.PostgreSQL
	return source.Pod{ClientImage: clientImage, Image: t.Image, Connection: &t.Connection}
}

func (Engine) DescribeSource(src v1.BackupSource) string {
	s := src.PostgreSQL
	return fmt.Sprintf("PostgreSQL %s with pg_dump (%s)", source.DescribeConnection(s.Connection), cmp.Or(string(s.Format), "custom"))
}

func (Engine) DescribeTarget(target v1.RestoreTarget) string {
	return "into PostgreSQL " + source.DescribeConnection(target.PostgreSQL.Connection)
}

func (Engine) Format(src v1.BackupSource) source.Format {
	switch dumpFormat(src.PostgreSQL.Format) {
	case v1.PostgreSQLFormatPlain:
		return FormatPlain
	case v1.PostgreSQLFormatTar:
		return FormatTar
	}
	return FormatCustom
}

// dumpFormat is pg_dump's --format, custom unless the spec says otherwise.
func dumpFormat(f v1.PostgreSQLDumpFormat) v1.PostgreSQLDumpFormat {
	return cmp.Or(f, v1.PostgreSQLFormatCustom)
}

func (Engine) DatabaseName(src v1.BackupSource, opts source.Options) string {
	return source.DatabaseName(nil, src.PostgreSQL.Connection, opts)
}

// EstimateSize is the size of the tables pg_dump dumps, as psql reads it
// over the same connection (TableSizeQuery).
func (Engine) EstimateSize(ctx context.Context, src v1.BackupSource, opts source.Options) (int64, error) {
	conn, err := source.ResolveConnection(src.PostgreSQL.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return 0, err
	}
	return psqlQuery(conn, TableSizeQuery).Int64Output(ctx)
}

// TableSizeQuery sums pg_table_size (the rows, TOAST included, without
// indexes) of the database's own tables and materialized views: what a
// dump holds as data. pg_database_size would count the indexes and the
// system catalogs too, which a dump holds only as definitions: a plain
// dump of a pgbench database is 0.49 of pg_database_size and 0.71 of the
// tables' size (the stage tests log the ratio). Progress then reaches about
// 70% and jumps to 100% at the end; the next run expects the dump's own
// size.
const TableSizeQuery = `SELECT COALESCE(SUM(pg_table_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace ` +
	`WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'`

func (Engine) StartDump(ctx context.Context, src v1.BackupSource, opts source.Options, stderr io.Writer) (*source.Producer, error) {
	proc, err := DumpProcess(src.PostgreSQL, opts)
	if err != nil {
		return nil, err
	}
	return proc.StartProducer(ctx, stderr)
}

// DumpProcess is the pg_dump of a source.
func DumpProcess(s *v1.PostgreSQLSource, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(s.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	format := dumpFormat(s.Format)
	switch format {
	case v1.PostgreSQLFormatPlain, v1.PostgreSQLFormatCustom, v1.PostgreSQLFormatTar:
	default:
		// The CRD allows only these; the CLI takes any JSON. Another format
		// would be recorded as one it is not.
		return source.Process{}, fmt.Errorf("postgresql.format %q: plain, custom or tar", format)
	}
	args := []string{"pg_dump", noPassword, "--format=" + string(format)}
	if format == v1.PostgreSQLFormatCustom {
		level := int32(0)
		if s.CompressionLevel != nil {
			level = *s.CompressionLevel
		}
		args = append(args, "--compress="+strconv.Itoa(int(level)))
	}
	return source.Process{Args: append(args, s.ExtraArgs...), Env: libpqEnv(conn)}, nil
}

func (Engine) Accepts(format string) bool {
	return format == FormatPlain.Name || format == FormatCustom.Name || format == FormatTar.Name
}

func (Engine) StartRestore(ctx context.Context, target v1.RestoreTarget, format string, opts source.Options, stdout, stderr io.Writer) (*source.Consumer, error) {
	proc, err := RestoreProcess(target.PostgreSQL, format, opts)
	if err != nil {
		return nil, err
	}
	proc.Stdout = stdout
	return proc.StartConsumer(ctx, stderr)
}

// RestoreProcess is the psql (plain format) or pg_restore (custom and tar)
// that restores a stream into a target. It runs in a single transaction, so
// that a stream cut short by a checksum failure leaves the database as it
// was: the stages hold back the end of the stream until the checksums
// matched.
func RestoreProcess(t *v1.PostgreSQLTarget, format string, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(t.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	var args []string
	switch format {
	case FormatPlain.Name:
		args = []string{"psql", noPassword, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"}
	case FormatCustom.Name, FormatTar.Name:
		// A conninfo without dbname makes libpq take PGDATABASE from the
		// environment: the database never appears on the command line, and
		// -d still tells pg_restore to restore rather than print SQL.
		args = []string{"pg_restore", noPassword, "--exit-on-error", "--no-owner", "--dbname=application_name=backflow"}
		if t.Clean {
			args = append(args, "--clean", "--if-exists")
		}
	default:
		return source.Process{}, fmt.Errorf("a %s backup cannot be restored into PostgreSQL", format)
	}
	args = append(append(args, "--single-transaction"), t.ExtraArgs...)
	return source.Process{Args: args, Env: libpqEnv(conn)}, nil
}

func (Engine) ScratchEngines() []string { return []string{Name} }

func (Engine) ScratchEngine(v1.BackupSource) string { return Name }

func (Engine) ScratchTarget(_ string, conn v1.DatabaseConnection) v1.RestoreTarget {
	return v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Connection: conn, Clean: true}}
}

func (e Engine) StartRestoreTest(ctx context.Context, target v1.RestoreTarget, format, query string, opts source.Options, stderr io.Writer) (*source.Consumer, error) {
	return source.RestoreAndQuery(ctx, e, target, format, query, opts, stderr, func() (source.Process, error) {
		return checkQueryProcess(target.PostgreSQL, query, opts)
	})
}

// checkQueryProcess runs a restore test's query with psql and prints its
// rows, one per line.
func checkQueryProcess(t *v1.PostgreSQLTarget, query string, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(t.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	return psqlQuery(conn, query), nil
}

// psqlQuery runs a query with psql and prints its rows, one per line.
func psqlQuery(conn source.Connection, query string) source.Process {
	return source.Process{
		Args: []string{"psql", noPassword, "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--tuples-only", "--no-align", "--command=" + query},
		Env:  libpqEnv(conn),
	}
}

// ChecksArchive: pg_restore reads the table of contents of the custom and
// tar formats; a plain dump is SQL that only a database can check.
func (Engine) ChecksArchive(format string) bool {
	return format == FormatCustom.Name || format == FormatTar.Name
}

// StartArchiveCheck lists the archive's table of contents with pg_restore
// --list, which fails on a damaged archive.
func (Engine) StartArchiveCheck(ctx context.Context, stderr io.Writer) (*source.Consumer, error) {
	return source.Process{Args: []string{"pg_restore", "--list"}, Stdout: io.Discard}.StartConsumer(ctx, stderr)
}

// libpqEnv passes a connection to libpq through its environment variables.
func libpqEnv(c source.Connection) []string {
	env := []string{
		"PGHOST=" + c.Host,
		"PGPORT=" + strconv.Itoa(c.Port),
		"PGAPPNAME=backflow",
	}
	for name, value := range map[string]string{"PGUSER": c.Username, "PGPASSWORD": c.Password, "PGDATABASE": c.Database} {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	for param, name := range map[string]string{
		"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
		"connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS", "target_session_attrs": "PGTARGETSESSIONATTRS",
	} {
		if v := c.Params.Get(param); v != "" {
			env = append(env, name+"="+v)
		}
	}
	return env
}
