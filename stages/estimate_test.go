package stages_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/source/postgresql"
)

// A dump that reports progress without an expected size asks its source
// for an estimate, against the real servers: what the dump expects is what
// the server reports for what it dumps (PostgreSQL's table sizes,
// MariaDB's information_schema, FerretDB's dbStats). Given an expected
// size (the series' previous verified backup), it asks nothing.
func TestDumpExpectsTheSourcesEstimate(t *testing.T) {
	ctx := context.Background()
	dump := func(t *testing.T, src v1.BackupSource, opts source.Options, expected int64, name ...string) (string, *stages.Manifest) {
		t.Helper()
		var stderr bytes.Buffer
		m, err := stages.Dump(ctx, stages.DumpConfig{
			Source: src, SourceOptions: opts, Storage: s3(t), PathTemplate: "{{ .Name }}{{ .Extension }}", Name: strings.Join(append(name, "estimated"), "-"),
			ProgressFile: filepath.Join(t.TempDir(), "progress"), ExpectedSize: expected, Stderr: &stderr,
		})
		if err != nil {
			t.Fatal(err)
		}
		return stderr.String(), m
	}
	number := func(t *testing.T, s string) int64 {
		t.Helper()
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			t.Fatalf("%q is no number", s)
		}
		return n
	}
	expects := func(t *testing.T, said, engine string, size int64, m *stages.Manifest) {
		t.Helper()
		want := fmt.Sprintf("expecting about %s, the estimate of %s", v1.FormatSize(size), engine)
		if !strings.Contains(said, want) {
			t.Errorf("the dump said %q, want %q", said, want)
		}
		t.Logf("%s: estimate %d bytes, dump %d bytes raw (%.2f of the estimate)", engine, size, m.RawSize, float64(m.RawSize)/float64(size))
	}

	t.Run("postgresql", func(t *testing.T) {
		createPgbenchDatabase(t, "estimated")
		src := v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Format: v1.PostgreSQLFormatPlain, Connection: v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}}}
		opts := source.Options{Getenv: pgEnv("estimated")}
		said, m := dump(t, src, opts, 0)
		expects(t, said, "PostgreSQL", number(t, pgQuery(t, "estimated", postgresql.TableSizeQuery)), m)

		said, _ = dump(t, src, opts, 123<<20, "given")
		if !strings.Contains(said, "expecting 123.0MiB: the raw size of the series' previous verified backup") || strings.Contains(said, "estimate") {
			t.Errorf("with an expected size the dump said %q", said)
		}
	})

	t.Run("mariadb", func(t *testing.T) {
		mariaQuery(t, "", "CREATE DATABASE `est'db` CHARACTER SET utf8mb4")
		mariaQuery(t, "est'db", `CREATE TABLE pages (id INT PRIMARY KEY, body TEXT, KEY (body(20)));
			INSERT INTO pages SELECT seq, REPEAT(MD5(seq), 20) FROM seq_1_to_20000; ANALYZE TABLE pages;`)
		conn := v1.DatabaseConnection{Host: maria.Host, SecretRef: &v1.ConnectionSecretRef{Name: "x"}}
		secret := env(map[string]string{source.EnvPort: fmt.Sprint(maria.Port), source.EnvUsername: maria.User, source.EnvPassword: maria.Password, source.EnvDatabase: "est'db"})
		said, m := dump(t, v1.BackupSource{MySQL: &v1.MySQLSource{Flavor: v1.MySQLFlavorMariaDB, Connection: conn}}, source.Options{Getenv: secret}, 0)
		size := number(t, mariaQuery(t, "", "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'est''db'"))
		expects(t, said, "MySQL", size, m)
	})

	t.Run("mongodb", func(t *testing.T) {
		docs := make([]any, 2000)
		for i := range docs {
			docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "text", Value: strings.Repeat("backflow ", 50)}}
		}
		if _, err := ferret.Client().Database("estimated").Collection("notes").InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
		var stats struct {
			DataSize float64 `bson:"dataSize"`
		}
		said, m := dump(t, v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("estimated")}}, source.Options{Getenv: mongoSecret()}, 0)
		if err := ferret.Client().Database("estimated").RunCommand(ctx, bson.D{{Key: "dbStats", Value: 1}}).Decode(&stats); err != nil {
			t.Fatal(err)
		}
		expects(t, said, "MongoDB", int64(stats.DataSize), m)
	})
}
