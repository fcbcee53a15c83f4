package stages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/minio/minio-go/v7"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/servers"
)

var (
	minioServer *servers.MinIO
	pg          *servers.PostgreSQL
	maria       *servers.MariaDB
	ferret      *servers.FerretDB
)

func TestMain(m *testing.M) {
	var err error
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Add(4)
	go func() { defer wg.Done(); minioServer, errs[0] = servers.StartMinIO() }()
	go func() { defer wg.Done(); pg, errs[1] = servers.StartPostgreSQL() }()
	go func() { defer wg.Done(); maria, errs[2] = servers.StartMariaDB() }()
	go func() { defer wg.Done(); ferret, errs[3] = servers.StartFerretDB() }()
	wg.Wait()
	err = errors.Join(errs...)
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test servers:", err)
	} else {
		code = m.Run()
	}
	for _, stop := range []func(){
		func() {
			if minioServer != nil {
				minioServer.Stop()
			}
		},
		func() {
			if pg != nil {
				pg.Stop()
			}
		},
		func() {
			if maria != nil {
				maria.Stop()
			}
		},
		func() {
			if ferret != nil {
				ferret.Stop()
			}
		},
	} {
		stop()
	}
	os.Exit(code)
}

// s3 opens a fresh prefix of the MinIO bucket for one test.
func s3(t *testing.T) *storage.S3Backend {
	t.Helper()
	b, err := storage.Open(minioServer.StorageURL(strings.ReplaceAll(t.Name(), "/", "-")),
		storage.Credentials{AccessKeyID: minioServer.AccessKey, SecretAccessKey: minioServer.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return b.(*storage.S3Backend)
}

func newIdentity(t *testing.T) (*age.X25519Identity, []age.Recipient, []string) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id, []age.Recipient{id.Recipient()}, []string{id.Recipient().String()}
}

// env serves a connection Secret's values to a stage.
func env(values map[string]string) func(string) string {
	return func(k string) string { return values[k] }
}

func pgEnv(db string) func(string) string {
	return env(map[string]string{
		source.EnvHost: pg.Host, source.EnvPort: fmt.Sprint(pg.Port), source.EnvUsername: pg.User,
		source.EnvPassword: pg.Password, source.EnvDatabase: db,
	})
}

func pgQuery(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := pg.Query(db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mariaQuery(t *testing.T, db, sql string) string {
	t.Helper()
	out, err := maria.Query(db, sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pgFingerprint hashes every row of every table of a database.
func pgFingerprint(t *testing.T, db string) map[string]string {
	t.Helper()
	tables := strings.Fields(pgQuery(t, db, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
	if len(tables) == 0 {
		t.Fatalf("database %s has no tables", db)
	}
	fp := map[string]string{}
	for _, table := range tables {
		fp[table] = pgQuery(t, db, fmt.Sprintf("SELECT count(*) || ':' || md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t", table))
	}
	return fp
}

func createPgbenchDatabase(t *testing.T, db string) {
	t.Helper()
	pgQuery(t, "postgres", "CREATE DATABASE "+db)
	cmd := exec.Command(filepath.Join(pg.BinDir, "pgbench"), "--initialize", "--scale=2", "--quiet", db)
	cmd.Env = append(os.Environ(), pg.Env(db)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench: %v: %s", err, out)
	}
	pgQuery(t, db, `CREATE TABLE blobs (id int PRIMARY KEY, name text, data bytea);
		INSERT INTO blobs SELECT i, 'naïve café ☕ ' || i || E' \\ '' "', decode(md5(i::text) || '00ff5c27', 'hex') FROM generate_series(1, 5000) i;`)
}

func TestPostgreSQLRoundTrip(t *testing.T) {
	createPgbenchDatabase(t, "shop")
	want := pgFingerprint(t, "shop")
	id, recipients, names := newIdentity(t)
	for _, tc := range []struct {
		format      v1.PostgreSQLDumpFormat
		compression pipeline.Algorithm
		encrypt     bool
	}{
		{v1.PostgreSQLFormatCustom, pipeline.Zstd, true},
		{v1.PostgreSQLFormatPlain, pipeline.Gzip, false},
		{v1.PostgreSQLFormatTar, pipeline.None, true},
	} {
		t.Run(string(tc.format), func(t *testing.T) {
			ctx := context.Background()
			backend := s3(t)
			cfg := stages.DumpConfig{
				Source:        v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Format: tc.format, Connection: v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}}},
				SourceOptions: source.Options{Getenv: pgEnv("shop")},
				Storage:       backend, PathTemplate: `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`,
				Namespace: "apps", Name: "shop-1", Series: "shop", Compression: tc.compression, Version: "test",
			}
			if tc.encrypt {
				cfg.Recipients, cfg.RecipientNames = recipients, names
			}
			m, err := stages.Dump(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(m.Key, "apps/shop/") || m.RawSize == 0 || m.Size == 0 {
				t.Fatalf("manifest %+v", m)
			}
			info, err := backend.Stat(ctx, m.Key)
			if err != nil || info.Size != m.Size {
				t.Fatalf("stored object %+v %v, manifest says %d bytes", info, err, m.Size)
			}
			ids := []age.Identity{id}
			verified, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: ids})
			if err != nil {
				t.Fatal(err)
			}
			if verified.VerifiedAt == nil {
				t.Fatal("verify did not mark the manifest")
			}
			db := "restored_" + string(tc.format)
			pgQuery(t, "postgres", "CREATE DATABASE "+db)
			target := v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Connection: v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}}}
			if _, err := stages.Restore(ctx, stages.RestoreConfig{
				Storage: backend, Key: m.Key, Identities: ids, Target: target, VerifyFirst: true,
				SourceOptions: source.Options{Getenv: pgEnv(db)},
			}); err != nil {
				t.Fatal(err)
			}
			got := pgFingerprint(t, db)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("restored rows differ:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestPostgreSQLRestoreTests(t *testing.T) {
	ctx := context.Background()
	pgQuery(t, "postgres", "CREATE DATABASE small; ")
	// Larger than the pipe buffers: pg_restore --list stops reading after the
	// table of contents, and verify must still read the object to its end.
	pgQuery(t, "small", "CREATE TABLE t (v text); INSERT INTO t SELECT md5(i::text) FROM generate_series(1, 200000) i;")
	pgQuery(t, "postgres", "CREATE DATABASE scratch")
	backend := s3(t)
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source:        v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{}},
		SourceOptions: source.Options{Getenv: pgEnv("small")},
		Storage:       backend, PathTemplate: "small/{{ .Name }}{{ .Extension }}", Name: "b1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != "pg-custom" || !strings.HasSuffix(m.Key, ".pgdump.zst") {
		t.Fatalf("default format: %+v", m)
	}
	// Structural check: pg_restore --list.
	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, RestoreTest: &stages.RestoreTestConfig{}}); err != nil {
		t.Fatal(err)
	}
	// A restore into a scratch database, with a check query that must find rows.
	scratch := v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Clean: true}}
	opts := source.Options{Getenv: pgEnv("scratch")}
	for query, wantErr := range map[string]string{
		"SELECT count(*) FROM t HAVING count(*) = 200000": "",
		"SELECT 1 FROM t WHERE v = 'zzz'":                 "check query returned no rows",
	} {
		_, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, SourceOptions: opts,
			RestoreTest: &stages.RestoreTestConfig{Target: &scratch, CheckQuery: query}})
		if wantErr == "" && err != nil {
			t.Errorf("%s: %v", query, err)
		}
		if wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: got %v, want %q", query, err, wantErr)
		}
	}
}

func TestMariaDBRoundTrip(t *testing.T) {
	ctx := context.Background()
	mariaQuery(t, "", "CREATE DATABASE wiki CHARACTER SET utf8mb4")
	mariaQuery(t, "wiki", `CREATE TABLE pages (id INT PRIMARY KEY, title VARCHAR(200), body MEDIUMTEXT, raw BLOB, hash BINARY(16));
		INSERT INTO pages SELECT seq, CONCAT('Página ', seq, ' 🚀 "quoted" \\ back'), REPEAT('lorem ipsum ünïcödé ', seq % 50), 
			UNHEX(CONCAT(MD5(seq), '00FF5C27220A0D1A')), UNHEX(MD5(seq)) FROM seq_1_to_20000;
		CREATE TABLE empty_table (id INT);`)
	fingerprint := func(db string) string {
		return mariaQuery(t, db, `SET SESSION group_concat_max_len = 1000000000;
			SELECT CONCAT(COUNT(*), ':', MD5(GROUP_CONCAT(CONCAT_WS('|', id, title, body, HEX(raw), HEX(hash)) ORDER BY id SEPARATOR ','))) FROM pages`)
	}
	want := fingerprint("wiki")
	id, recipients, names := newIdentity(t)
	backend := s3(t)
	conn := v1.DatabaseConnection{Host: maria.Host, SecretRef: &v1.ConnectionSecretRef{Name: "x"}}
	secret := func(db string) func(string) string {
		return env(map[string]string{source.EnvPort: fmt.Sprint(maria.Port), source.EnvUsername: maria.User, source.EnvPassword: maria.Password, source.EnvDatabase: db})
	}
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source:        v1.BackupSource{MySQL: &v1.MySQLSource{Flavor: v1.MySQLFlavorMariaDB, Connection: conn}},
		SourceOptions: source.Options{Getenv: secret("wiki")},
		Storage:       backend, PathTemplate: "{{ .Database }}/{{ .Name }}{{ .Extension }}", Name: "wiki-1",
		Recipients: recipients, RecipientNames: names,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != "wiki/wiki-1.sql.zst.age" {
		t.Errorf("key %q", m.Key)
	}
	mariaQuery(t, "", "CREATE DATABASE wiki_restored CHARACTER SET utf8mb4")
	if _, err := stages.Restore(ctx, stages.RestoreConfig{
		Storage: backend, Key: m.Key, Identities: []age.Identity{id}, VerifyFirst: true,
		Target:        v1.RestoreTarget{MySQL: &v1.MySQLTarget{Flavor: v1.MySQLFlavorMariaDB, Connection: conn}},
		SourceOptions: source.Options{Getenv: secret("wiki_restored")},
	}); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint("wiki_restored"); got != want {
		t.Errorf("restored rows differ: got %s, want %s", got, want)
	}
	if got := mariaQuery(t, "wiki_restored", "SHOW TABLES LIKE 'empty_table'"); got != "empty_table" {
		t.Errorf("empty table not restored: %q", got)
	}
}

func commandSource(script string) v1.BackupSource {
	return v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"sh", "-c", script}}}
}

// assertBucketEmpty fails when anything, finished or not, is stored under the
// backend's prefix.
func assertBucketEmpty(t *testing.T, b *storage.S3Backend) {
	t.Helper()
	ctx := context.Background()
	prefix := b.FullKey("")
	for obj := range b.Client().ListObjects(ctx, b.Bucket(), minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		t.Errorf("left in the bucket: %s (%v)", obj.Key, obj.Err)
	}
	for up := range b.Client().ListIncompleteUploads(ctx, b.Bucket(), prefix, true) {
		t.Errorf("unfinished multipart upload left: %s %s (%v)", up.Key, up.UploadID, up.Err)
	}
}

func TestFailingDumpsLeaveNothing(t *testing.T) {
	cases := map[string]struct {
		script, want string
		allowEmpty   bool
	}{
		"50 MB then exit 1":  {"head -c 50000000 /dev/urandom; echo 'out of cheese' >&2; exit 1", "exit code 1: out of cheese", false},
		"killed mid-stream":  {"head -c 30000000 /dev/urandom; kill -9 $$", "killed by signal", false},
		"empty output":       {"true", "the source wrote no data", false},
		"command not found":  {"exec /nonexistent/dump", "exit code 127", false},
		"small then failure": {"echo tiny; exit 2", "exit code 2", false},
	}
	_, recipients, names := newIdentity(t)
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			backend := s3(t)
			_, err := stages.Dump(context.Background(), stages.DumpConfig{
				Source:  commandSource(tc.script),
				Storage: backend, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "x",
				Recipients: recipients, RecipientNames: names, Stderr: io.Discard,
			})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "nothing was stored") {
				t.Errorf("the error should say nothing was stored: %v", err)
			}
			assertBucketEmpty(t, backend)
		})
	}
	t.Run("cancelled", func(t *testing.T) {
		backend := s3(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := stages.Dump(ctx, stages.DumpConfig{
			Source:  commandSource("while true; do head -c 1000000 /dev/urandom; done"),
			Storage: backend, PathTemplate: "{{ .Name }}", Name: "x", Stderr: io.Discard,
		})
		if err == nil {
			t.Fatal("a cancelled dump succeeded")
		}
		assertBucketEmpty(t, backend)
	})
	t.Run("allowed empty", func(t *testing.T) {
		backend := s3(t)
		src := commandSource("true")
		src.AllowEmpty = true
		m, err := stages.Dump(context.Background(), stages.DumpConfig{Source: src, Storage: backend, PathTemplate: "{{ .Name }}", Name: "x"})
		if err != nil || m.RawSize != 0 {
			t.Fatalf("%+v %v", m, err)
		}
	})
}

// dumpCommand stores the output of a script and returns its manifest.
func dumpCommand(t *testing.T, b storage.Backend, script string, recipients []age.Recipient, names []string) *stages.Manifest {
	t.Helper()
	m, err := stages.Dump(context.Background(), stages.DumpConfig{
		Source: commandSource(script), Storage: b, PathTemplate: "series/{{ .Name }}{{ .Extension }}", Name: "b",
		Recipients: recipients, RecipientNames: names,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestVerifyDetectsDamage(t *testing.T) {
	ctx := context.Background()
	id, recipients, names := newIdentity(t)
	backend := s3(t)
	m := dumpCommand(t, backend, "seq 1 300000", recipients, names)
	if m.Key != "series/b.bin.zst.age" {
		t.Fatalf("key %s", m.Key)
	}

	wrong, _ := age.GenerateX25519Identity()
	_, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{wrong}})
	if !errors.Is(err, pipeline.ErrWrongIdentity) || !strings.Contains(err.Error(), "does not match any recipient") {
		t.Errorf("wrong identity: %v", err)
	}
	_, err = stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key})
	if !errors.Is(err, stages.ErrIdentityRequired) {
		t.Errorf("no identity: %v", err)
	}
	_, err = stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: "series/missing.bin", Identities: []age.Identity{id}})
	if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "no manifest") {
		t.Errorf("missing object: %v", err)
	}

	// Flip one byte in the middle of the stored object.
	client, full := backend.Client(), backend.FullKey(m.Key)
	obj, err := client.GetObject(ctx, backend.Bucket(), full, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if _, err := client.PutObject(ctx, backend.Bucket(), full, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}})
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), "is corrupted") || !strings.Contains(err.Error(), m.Checksum) {
		t.Errorf("flipped byte: %v", err)
	}

	// Restore refuses before the target sees a byte.
	marker := filepath.Join(t.TempDir(), "received")
	target := v1.RestoreTarget{Command: &v1.CommandTarget{Image: "x", Command: []string{"sh", "-c", "cat > " + marker}}}
	_, err = stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}, Target: target, VerifyFirst: true, Stderr: io.Discard})
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), "refused before it started") {
		t.Errorf("restore of a corrupted object: %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("the restore target was started for a corrupted object")
	}
	// Without the first pass the restore still fails, loudly.
	_, err = stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}, Target: target, Stderr: io.Discard})
	if !errors.Is(err, stages.ErrChecksumMismatch) {
		t.Errorf("streaming restore of a corrupted object: %v", err)
	}
}

func TestRestoreIntoCommandAndVolume(t *testing.T) {
	ctx := context.Background()
	backend, err := storage.NewFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := dumpCommand(t, backend, "seq 1 100000", nil, nil)
	out := filepath.Join(t.TempDir(), "out")
	_, err = stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: m.Key, VerifyFirst: true,
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "x", Command: []string{"sh", "-c", `cat > "$0"`, out}}}})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := exec.Command("seq", "1", "100000").Output()
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
		t.Errorf("command target received %d bytes, want %d", len(got), len(want))
	}

	// A volume: tar of paths in, extraction into a subdirectory out.
	vol := t.TempDir()
	for name, content := range map[string]string{"media/a.txt": "alpha", "media/deep/b.bin": "\x00\x01", "cache/skip": "x"} {
		p := filepath.Join(vol, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		_ = os.WriteFile(p, []byte(content), 0o644)
	}
	progress := filepath.Join(t.TempDir(), "progress")
	pm, err := stages.Dump(ctx, stages.DumpConfig{
		Source: v1.BackupSource{PVC: &v1.PVCSource{ClaimName: "data", Paths: []string{"media"}}}, SourceOptions: source.Options{VolumeRoot: vol},
		Storage: backend, PathTemplate: "vol/{{ .Name }}{{ .Extension }}", Name: "v", ProgressFile: progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := os.ReadFile(progress); string(p) != "1/1\n" {
		t.Errorf("progress file at the end: %q", p)
	}
	restored := t.TempDir()
	if _, err := stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: pm.Key, SourceOptions: source.Options{VolumeRoot: restored},
		Target: v1.RestoreTarget{PVC: &v1.PVCTarget{ClaimName: "data", Path: "restored"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(restored, "restored", "media", "deep", "b.bin")); string(got) != "\x00\x01" {
		t.Errorf("volume restore: %q", got)
	}
	if _, err := os.Stat(filepath.Join(restored, "restored", "cache")); !os.IsNotExist(err) {
		t.Error("a path that was not asked for was archived")
	}
}

func TestS3Backend(t *testing.T) {
	ctx := context.Background()
	b := s3(t)
	for _, key := range []string{"a/1", "a/2", "a/sub/3", "b/4"} {
		if err := b.Put(ctx, key, strings.NewReader("data "+key), nil); err != nil {
			t.Fatal(err)
		}
	}
	list, err := b.List(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range list {
		keys = append(keys, o.Key)
		if o.Size != int64(len("data "+o.Key)) || o.LastModified.IsZero() {
			t.Errorf("%+v", o)
		}
	}
	if fmt.Sprint(keys) != "[a/1 a/2 a/sub/3]" {
		t.Errorf("List(a/) = %v, want everything below a/ and nothing else", keys)
	}
	if _, err := b.Stat(ctx, "a/nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a missing key: %v", err)
	}
	if _, err := b.Get(ctx, "a/nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get of a missing key: %v", err)
	}
	r, err := b.Get(ctx, "a/sub/3")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "data a/sub/3" {
		t.Errorf("Get: %q", got)
	}
	if err := b.Delete(ctx, "a/1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "a/1"); err != nil {
		t.Errorf("deleting a missing key: %v", err)
	}
	if _, err := b.Stat(ctx, "a/1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("deleted object still there: %v", err)
	}
	if err := b.CheckBucket(ctx); err != nil {
		t.Error(err)
	}
}
