package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// Default ports of the engines.
const (
	PostgreSQLPort = 5432
	MySQLPort      = 3306
	MongoDBPort    = 27017
)

// Kind is the name of the source kind that is set: postgresql, mysql,
// mongodb, pvc or command.
func Kind(src v1.BackupSource) string {
	switch {
	case src.PostgreSQL != nil:
		return "postgresql"
	case src.MySQL != nil:
		return "mysql"
	case src.MongoDB != nil:
		return "mongodb"
	case src.PVC != nil:
		return "pvc"
	case src.Command != nil:
		return "command"
	}
	return ""
}

// FormatMongoDBArchive is mongodump's archive format.
const FormatMongoDBArchive = "mongodb-archive"

// Format names the raw stream's format, which decides how it is restored:
// pg-plain, pg-custom, pg-tar, mysql, mongodb-archive, tar or raw.
func Format(src v1.BackupSource) string {
	switch {
	case src.PostgreSQL != nil:
		return "pg-" + string(postgresFormat(src.PostgreSQL.Format))
	case src.MySQL != nil:
		return "mysql"
	case src.MongoDB != nil:
		return FormatMongoDBArchive
	case src.PVC != nil:
		return "tar"
	}
	return "raw"
}

// Extension is the file suffix of the raw stream, before compression and
// encryption add theirs.
func Extension(format string) string {
	switch format {
	case "pg-plain", "mysql":
		return ".sql"
	case "pg-custom":
		return ".pgdump"
	case "pg-tar":
		return ".pgdump.tar"
	case FormatMongoDBArchive:
		return ".archive"
	case "tar":
		return ".tar"
	}
	return ".bin"
}

func postgresFormat(f v1.PostgreSQLDumpFormat) v1.PostgreSQLDumpFormat {
	if f == "" {
		return v1.PostgreSQLFormatCustom
	}
	return f
}

// Options are what a dump or restore needs besides the spec.
type Options struct {
	// Namespace of the resource, for Service host names.
	Namespace string
	// Getenv reads the connection Secret's values.
	Getenv func(string) string
	// VolumeRoot is where the PVC is mounted.
	VolumeRoot string
	// Version of backflow, for archives that name the tool that wrote them
	// (MongoDB's).
	Version string
}

// Producer is a started source: reading it yields the raw stream, which ends
// with io.EOF only when the source finished successfully.
type Producer struct {
	io.Reader
	stop func()
}

// Stop ends the source early and releases what it holds.
func (p *Producer) Stop() { p.stop() }

// StartDump starts the dump of a source. Its diagnostics go to stderr.
func StartDump(ctx context.Context, src v1.BackupSource, opts Options, stderr io.Writer) (*Producer, error) {
	if src.PVC != nil {
		r := TarPaths(opts.VolumeRoot, src.PVC.Paths)
		return &Producer{Reader: r, stop: func() { _ = r.Close() }}, nil
	}
	if src.MongoDB != nil {
		return startMongoDump(ctx, src.MongoDB, src.AllowEmpty, opts)
	}
	proc, err := DumpProcess(src, opts)
	if err != nil {
		return nil, err
	}
	running, err := proc.Start(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return &Producer{Reader: running.Output(), stop: running.Stop}, nil
}

// DumpProcess is the command that dumps a database or runs a user's command.
func DumpProcess(src v1.BackupSource, opts Options) (Process, error) {
	switch {
	case src.PostgreSQL != nil:
		s := src.PostgreSQL
		conn, err := ResolveConnection(s.Connection, opts.Namespace, PostgreSQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		level := int32(0)
		if s.CompressionLevel != nil {
			level = *s.CompressionLevel
		}
		args := []string{"pg_dump", "--no-password", "--format=" + string(postgresFormat(s.Format))}
		if postgresFormat(s.Format) == v1.PostgreSQLFormatCustom {
			args = append(args, "--compress="+strconv.Itoa(int(level)))
		}
		return Process{Args: append(args, s.ExtraArgs...), Env: postgresEnv(conn)}, nil
	case src.MySQL != nil:
		s := src.MySQL
		conn, err := ResolveConnection(s.Connection, opts.Namespace, MySQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		args := []string{mysqlProgram(s.Flavor, "dump"), "--defaults-extra-file={file:my.cnf}",
			"--hex-blob", "--default-character-set=utf8mb4", "--routines", "--triggers"}
		if s.SingleTransaction == nil || *s.SingleTransaction {
			args = append(args, "--single-transaction")
		}
		args = append(args, s.ExtraArgs...)
		// One database is dumped without CREATE DATABASE and USE, so that it
		// restores into a database of any name; several keep their names.
		switch dbs := mysqlDatabases(s, conn); len(dbs) {
		case 0:
			args = append(args, "--all-databases")
		case 1:
			args = append(args, "--", dbs[0])
		default:
			args = append(append(args, "--databases", "--"), dbs...)
		}
		return Process{Args: args, Files: map[string]string{"my.cnf": myCnf(conn, false)}}, nil
	case src.Command != nil:
		c := src.Command
		var env []string
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+"="+e.Value)
			}
			// Values from Secrets are set on the container by the controller and
			// inherited from there.
		}
		return Process{Args: append(append([]string(nil), c.Command...), c.Args...), Env: env}, nil
	case src.MongoDB != nil:
		return Process{}, errors.New("MongoDB is dumped by backflow itself, not by a command")
	}
	return Process{}, errors.New("the source names no postgresql, mysql, mongodb, pvc or command")
}

// DatabaseName is the database a source dumps, as resolved from its spec and
// connection Secret; empty when it dumps several or none is named.
func DatabaseName(src v1.BackupSource, opts Options) string {
	var spec v1.DatabaseConnection
	switch {
	case src.PostgreSQL != nil:
		spec = src.PostgreSQL.Connection
	case src.MySQL != nil:
		if len(src.MySQL.Databases) > 0 {
			if len(src.MySQL.Databases) == 1 {
				return src.MySQL.Databases[0]
			}
			return ""
		}
		spec = src.MySQL.Connection
	case src.MongoDB != nil:
		if len(src.MongoDB.Databases) > 0 {
			if len(src.MongoDB.Databases) == 1 {
				return src.MongoDB.Databases[0]
			}
			return ""
		}
		spec = src.MongoDB.Connection
	default:
		return ""
	}
	if opts.Getenv == nil {
		return spec.Database
	}
	conn, err := ResolveConnection(spec, opts.Namespace, 1, opts.Getenv)
	if err != nil {
		return spec.Database
	}
	return conn.Database
}

func mysqlDatabases(s *v1.MySQLSource, conn Connection) []string {
	if len(s.Databases) > 0 {
		return s.Databases
	}
	if conn.Database != "" {
		return []string{conn.Database}
	}
	return nil
}

// mysqlProgram picks the client program of a flavor, falling back to the
// MySQL names that MariaDB images also ship.
func mysqlProgram(flavor v1.MySQLFlavor, tool string) string {
	names := map[string][2]string{"dump": {"mysqldump", "mariadb-dump"}, "client": {"mysql", "mariadb"}}[tool]
	if flavor == v1.MySQLFlavorMariaDB {
		if _, err := exec.LookPath(names[1]); err == nil {
			return names[1]
		}
	}
	return names[0]
}

// postgresEnv passes a connection to libpq through its environment variables.
func postgresEnv(c Connection) []string {
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

// myCnf is an option file for the MySQL and MariaDB clients. withDatabase
// adds the default database for the mysql client.
func myCnf(c Connection, withDatabase bool) string {
	var b strings.Builder
	b.WriteString("[client]\n")
	fmt.Fprintf(&b, "host=%s\nport=%d\n", optionValue(c.Host), c.Port)
	if c.Username != "" {
		fmt.Fprintf(&b, "user=%s\n", optionValue(c.Username))
	}
	if c.Password != "" {
		fmt.Fprintf(&b, "password=%s\n", optionValue(c.Password))
	}
	if withDatabase && c.Database != "" {
		fmt.Fprintf(&b, "[mysql]\ndatabase=%s\n[mariadb]\ndatabase=%s\n", optionValue(c.Database), optionValue(c.Database))
	}
	return b.String()
}

// optionValue quotes a value for a MySQL option file.
func optionValue(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
