// Package mysql is the MySQL engine, with its MariaDB flavor: mysqldump or
// mariadb-dump, restored with the mysql or mariadb client, restore tests
// with a check query.
package mysql

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// Name is the engine's name: the source's and target's field.
const Name = "mysql"

// optionFile is the client option file with the connection, 0600 in the
// step's own directory, and the flag that reads it.
const (
	optionFile        = "my.cnf"
	defaultsExtraFile = "--defaults-extra-file={file:" + optionFile + "}"
)

// DefaultPort is MySQL's and MariaDB's port.
const DefaultPort = 3306

// FormatSQL is the SQL of mysqldump and mariadb-dump.
var FormatSQL = source.Format{Name: "mysql", Extension: ".sql"}

func init() { source.Register(Engine{}) }

// Engine is the MySQL engine. Its flavors, mysql and mariadb, differ in
// their client tools: each has its client image, and is the name of the
// scratch database's engine in a restore test.
type Engine struct{}

func (Engine) Name() string  { return Name }
func (Engine) Title() string { return "MySQL" }

func (Engine) Formats() []source.Format { return []source.Format{FormatSQL} }

func (Engine) ClientImages() map[string]string {
	return map[string]string{
		string(v1.MySQLFlavorMySQL):   "docker.io/library/mysql:8.4",
		string(v1.MySQLFlavorMariaDB): "docker.io/library/mariadb:11.4",
	}
}

// flavor is the flavor a spec names, mysql unless it says mariadb.
func flavor(f v1.MySQLFlavor) string {
	if f == v1.MySQLFlavorMariaDB {
		return string(v1.MySQLFlavorMariaDB)
	}
	return string(v1.MySQLFlavorMySQL)
}

func (Engine) CheckSource(v1.BackupSource) error { return nil }

func (Engine) DumpPod(src v1.BackupSource) source.Pod {
	s := src.MySQL
	return source.Pod{ClientImage: flavor(s.Flavor), Image: s.Image, Connection: &s.Connection}
}

func (Engine) RestorePod(target v1.RestoreTarget) source.Pod {
	t := target.MySQL
	return source.Pod{ClientImage: flavor(t.Flavor), Image: t.Image, Connection: &t.Connection}
}

func (Engine) DescribeSource(src v1.BackupSource) string {
	title := "MySQL"
	if src.MySQL.Flavor == v1.MySQLFlavorMariaDB {
		title = "MariaDB"
	}
	return title + " " + source.DescribeConnection(src.MySQL.Connection)
}

func (Engine) DescribeTarget(target v1.RestoreTarget) string {
	return "into MySQL " + source.DescribeConnection(target.MySQL.Connection)
}

func (Engine) Format(v1.BackupSource) source.Format { return FormatSQL }

func (Engine) DatabaseName(src v1.BackupSource, opts source.Options) string {
	return source.DatabaseName(src.MySQL.Databases, src.MySQL.Connection, opts)
}

// EstimateSize is the data and index length information_schema reports
// for the tables of the databases the dump dumps (every database but the
// server's own schemas for --all-databases). InnoDB's figures are
// estimates of pages, and a dump holds no index: the dump is mostly
// smaller, sometimes larger (text of numbers, hex of blobs).
func (Engine) EstimateSize(ctx context.Context, src v1.BackupSource, opts source.Options) (int64, error) {
	s := src.MySQL
	conn, err := source.ResolveConnection(s.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return 0, err
	}
	return source.Process{
		Args:  []string{program(s.Flavor, "client"), defaultsExtraFile, "--batch", "--skip-column-names", "--execute=" + sizeQuery(databases(s, conn))},
		Files: map[string]string{optionFile: myCnf(conn, false)},
	}.Int64Output(ctx)
}

// sizeQuery sums the data and index length of the tables of databases, or
// of every database but the server's own schemas. Names travel as hex
// literals, so that no name can end the query's string.
func sizeQuery(databases []string) string {
	where := "table_schema NOT IN ('information_schema', 'performance_schema', 'sys')"
	if len(databases) > 0 {
		names := make([]string, len(databases))
		for i, db := range databases {
			names[i] = fmt.Sprintf("_utf8mb4 X'%x'", db)
		}
		where = "table_schema IN (" + strings.Join(names, ", ") + ")"
	}
	return "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE " + where
}

func (Engine) StartDump(ctx context.Context, src v1.BackupSource, opts source.Options, stderr io.Writer) (*source.Producer, error) {
	proc, err := DumpProcess(src.MySQL, opts)
	if err != nil {
		return nil, err
	}
	return proc.StartProducer(ctx, stderr)
}

// DumpProcess is the mysqldump or mariadb-dump of a source.
func DumpProcess(s *v1.MySQLSource, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(s.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	args := []string{program(s.Flavor, "dump"), defaultsExtraFile,
		"--hex-blob", "--default-character-set=utf8mb4", "--routines", "--triggers"}
	if s.SingleTransaction == nil || *s.SingleTransaction {
		args = append(args, "--single-transaction")
	}
	args = append(args, s.ExtraArgs...)
	// One database is dumped without CREATE DATABASE and USE, so that it
	// restores into a database of any name; several keep their names.
	switch dbs := databases(s, conn); len(dbs) {
	case 0:
		args = append(args, "--all-databases")
	case 1:
		args = append(args, "--", dbs[0])
	default:
		args = append(append(args, "--databases", "--"), dbs...)
	}
	return source.Process{Args: args, Files: map[string]string{optionFile: myCnf(conn, false)}}, nil
}

func databases(s *v1.MySQLSource, conn source.Connection) []string {
	if len(s.Databases) > 0 {
		return s.Databases
	}
	if conn.Database != "" {
		return []string{conn.Database}
	}
	return nil
}

func (Engine) Accepts(format string) bool { return format == FormatSQL.Name }

func (Engine) StartRestore(ctx context.Context, target v1.RestoreTarget, _ string, opts source.Options, stdout, stderr io.Writer) (*source.Consumer, error) {
	proc, err := RestoreProcess(target.MySQL, opts)
	if err != nil {
		return nil, err
	}
	proc.Stdout = stdout
	return proc.StartConsumer(ctx, stderr)
}

// RestoreProcess is the mysql or mariadb client that restores the SQL of a
// dump into a target.
func RestoreProcess(t *v1.MySQLTarget, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(t.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	args := []string{program(t.Flavor, "client"), defaultsExtraFile, "--binary-mode", "--default-character-set=utf8mb4"}
	return source.Process{Args: append(args, t.ExtraArgs...), Files: map[string]string{optionFile: myCnf(conn, true)}}, nil
}

func (Engine) ScratchEngines() []string {
	return []string{string(v1.MySQLFlavorMySQL), string(v1.MySQLFlavorMariaDB)}
}

func (Engine) ScratchEngine(src v1.BackupSource) string { return flavor(src.MySQL.Flavor) }

func (Engine) ScratchTarget(scratchEngine string, conn v1.DatabaseConnection) v1.RestoreTarget {
	return v1.RestoreTarget{MySQL: &v1.MySQLTarget{Connection: conn, Flavor: v1.MySQLFlavor(scratchEngine)}}
}

func (e Engine) StartRestoreTest(ctx context.Context, target v1.RestoreTarget, format, query string, opts source.Options, stderr io.Writer) (*source.Consumer, error) {
	return source.RestoreAndQuery(ctx, e, target, format, query, opts, stderr, func() (source.Process, error) {
		return checkQueryProcess(target.MySQL, query, opts)
	})
}

// checkQueryProcess runs a restore test's query with the client and prints
// its rows, one per line.
func checkQueryProcess(t *v1.MySQLTarget, query string, opts source.Options) (source.Process, error) {
	conn, err := source.ResolveConnection(t.Connection, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return source.Process{}, err
	}
	return source.Process{
		Args:  []string{program(t.Flavor, "client"), defaultsExtraFile, "--batch", "--skip-column-names", "--execute=" + query},
		Files: map[string]string{optionFile: myCnf(conn, true)},
	}, nil
}

// program picks the client program of a flavor, falling back to the MySQL
// names that MariaDB images also ship.
func program(f v1.MySQLFlavor, tool string) string {
	names := map[string][2]string{"dump": {"mysqldump", "mariadb-dump"}, "client": {"mysql", "mariadb"}}[tool]
	if f == v1.MySQLFlavorMariaDB {
		if _, err := exec.LookPath(names[1]); err == nil {
			return names[1]
		}
	}
	return names[0]
}

// myCnf is an option file for the MySQL and MariaDB clients. withDatabase
// adds the default database for the mysql client.
func myCnf(c source.Connection, withDatabase bool) string {
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
