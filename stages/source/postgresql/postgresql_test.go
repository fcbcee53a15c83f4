package postgresql

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

func TestLibpqEnvPassesTheURIsParameters(t *testing.T) {
	c := source.Connection{Host: "10.0.0.5", Port: 7777, Params: url.Values{"sslmode": {"require"}}}
	if env := strings.Join(libpqEnv(c), " "); !strings.Contains(env, "PGSSLMODE=require") || !strings.Contains(env, "PGPORT=7777") {
		t.Errorf("environment %s", env)
	}
}

// Every restore runs in a single transaction, before the user's arguments,
// so that a stream cut short leaves the database as it was.
func TestRestoreRunsInASingleTransaction(t *testing.T) {
	opts := source.Options{Getenv: func(string) string { return "" }}
	target := &v1.PostgreSQLTarget{Connection: v1.DatabaseConnection{Host: "pg"}, Clean: true, ExtraArgs: []string{"--no-acl"}}
	for format, want := range map[string][]string{
		"pg-plain":  {"psql", "--no-password", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-", "--single-transaction", "--no-acl"},
		"pg-custom": {"pg_restore", "--no-password", "--exit-on-error", "--no-owner", "--dbname=application_name=backflow", "--clean", "--if-exists", "--single-transaction", "--no-acl"},
	} {
		p, err := RestoreProcess(target, format, opts)
		if err != nil || !slices.Equal(p.Args, want) {
			t.Errorf("%s: %q, %v", format, p.Args, err)
		}
	}
}

// pg_dump runs with the format the manifest records: a format other than
// plain, custom and tar (which only the CLI can be given) is refused.
func TestDumpFormatIsTheRecordedOne(t *testing.T) {
	opts := source.Options{Getenv: func(string) string { return "" }}
	for format, want := range map[v1.PostgreSQLDumpFormat]string{"": FormatCustom.Name, "plain": FormatPlain.Name, "tar": FormatTar.Name} {
		s := &v1.PostgreSQLSource{Connection: v1.DatabaseConnection{Host: "pg"}, Format: format}
		proc, err := DumpProcess(s, opts)
		if err != nil {
			t.Fatal(err)
		}
		recorded := Engine{}.Format(v1.BackupSource{PostgreSQL: s}).Name
		if recorded != want || !slices.Contains(proc.Args, "--format="+strings.TrimPrefix(recorded, "pg-")) {
			t.Errorf("format %q: recorded %s, pg_dump %v", format, recorded, proc.Args)
		}
	}
	if _, err := DumpProcess(&v1.PostgreSQLSource{Connection: v1.DatabaseConnection{Host: "pg"}, Format: "directory"}, opts); err == nil {
		t.Error("the directory format is dumped")
	}
}
