package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	miniogo "github.com/minio/minio-go/v7"

	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/catalog"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/test/servers"
)

// backflow runs the binary's root command, as a shell would, and returns
// its standard output and error.
func backflow(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func mustBackflow(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, err := backflow(t, args...)
	if err != nil {
		t.Fatalf("backflow %s: %v\n%s", args[0], err, stderr)
	}
	return stdout, stderr
}

// Disaster recovery with the bucket's credentials and the age identity
// alone, no cluster: backups written and verified by backflow dump and
// verify (as the Workflow's steps run them) into MinIO, then, as on a
// laptop, list, show and restore --latest into a fresh PostgreSQL database,
// whose data must be the newest verified backup's, not the newer unverified
// one's.
func TestRestoreWithoutACluster(t *testing.T) {
	var (
		minio  *servers.MinIO
		pg     *servers.PostgreSQL
		errs   [2]error
		starts sync.WaitGroup
	)
	starts.Add(2)
	go func() { defer starts.Done(); minio, errs[0] = servers.StartMinIO() }()
	go func() { defer starts.Done(); pg, errs[1] = servers.StartPostgreSQL() }()
	starts.Wait()
	if minio != nil {
		t.Cleanup(minio.Stop)
	}
	if pg != nil {
		t.Cleanup(pg.Stop)
	}
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	query := func(db, sql string) string {
		t.Helper()
		out, err := pg.Query(db, sql)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// What a comparison of two databases compares: every row of the table.
	digest := func(db string) string {
		return query(db, "SELECT count(*) || ':' || md5(string_agg(id || ',' || sku || ',' || qty, ';' ORDER BY id)) FROM orders")
	}
	query("postgres", "CREATE DATABASE shop")
	query("postgres", "CREATE DATABASE billing")
	query("shop", "CREATE TABLE orders (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL); "+
		"INSERT INTO orders SELECT i, 'sku-' || (i % 97), i % 13 FROM generate_series(1, 200000) i")
	query("billing", "CREATE TABLE orders (id int PRIMARY KEY, sku text NOT NULL, qty int NOT NULL); INSERT INTO orders VALUES (1, 'invoice', 1)")

	identityFile, recipient, err := servers.AgeIdentity(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	url := minio.StorageURL("dr")
	t.Setenv("AWS_ACCESS_KEY_ID", minio.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", minio.SecretKey)
	t.Setenv("BACKFLOW_DB_PASSWORD", pg.Password)
	connection := func(db string) string {
		return fmt.Sprintf(`{"postgresql": {"connection": {"host": %q, "port": %d, "database": %q, "username": %q}}}`, pg.Host, pg.Port, db, pg.User)
	}
	custom := func(db string) string {
		return fmt.Sprintf(`{"postgresql": {"connection": {"host": %q, "port": %d, "database": %q, "username": %q}, "format": "custom"}}`, pg.Host, pg.Port, db, pg.User)
	}
	// Two runs of a schedule (the second after a change), a third whose
	// verify never ran, and a namespace's series of the same name.
	dump := func(namespace, name, db string, verify bool) *stages.Manifest {
		t.Helper()
		out, _ := mustBackflow(t, "dump", "--storage", url, "--namespace", namespace, "--name", name, "--series", "nightly",
			"--storage-id", namespace+"/minio", "--source", custom(db), "--recipient", recipient,
			"--path", `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}-{{ .Name }}{{ .Extension }}`)
		var m stages.Manifest
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		if verify {
			mustBackflow(t, "verify", "--storage", url, "--key", m.Key, "--identity-file", identityFile)
		}
		return &m
	}
	dump("shop", "nightly-1", "shop", true)
	query("shop", "UPDATE orders SET qty = qty + 1 WHERE id % 7 = 0; DELETE FROM orders WHERE id > 190000")
	want := digest("shop")
	second := dump("shop", "nightly-2", "shop", true)
	query("shop", "DELETE FROM orders WHERE id > 100")
	unverified := dump("shop", "nightly-3", "shop", false)
	dump("billing", "nightly-1", "billing", true)
	if _, err := minio.Client().PutObject(context.Background(), minio.Bucket, "dr/shop/nightly/notes.txt", strings.NewReader("not a backup"), 12, miniogo.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}

	// The laptop: the bucket's credentials and the identity file.
	started := time.Now()
	query("postgres", "CREATE DATABASE shop_restored")
	table, ignored := mustBackflow(t, "list", "--storage", url)
	t.Logf("backflow list --storage %s\n%s%s", url, table, ignored)
	jsonOut, _ := mustBackflow(t, "list", "--storage", url, "--namespace", "shop", "-o", "json")
	shown, _ := mustBackflow(t, "show", "--storage", url, "--key", second.Key)
	t.Logf("backflow show --key %s\n%s", second.Key, shown)
	_, _, ambiguous := backflow(t, "restore", "--storage", url, "--latest", "--series", "nightly", "--identity-file", identityFile, "--target", connection("shop_restored"))
	_, chose := mustBackflow(t, "restore", "--storage", url, "--latest", "--series", "nightly", "--namespace", "shop",
		"--identity-file", identityFile, "--target", connection("shop_restored"))
	walkThrough := time.Since(started)
	t.Logf("the walk-through (createdb, list twice, show, restore --latest refused and run) took %s", walkThrough.Round(time.Millisecond))

	if got := digest("shop_restored"); got != want {
		t.Errorf("the restored database holds %s, the newest verified backup %s", got, want)
	}
	if !strings.Contains(chose, second.Key) {
		t.Errorf("restore --latest says %q, want the newest verified backup %s", chose, second.Key)
	}
	for _, line := range []string{
		"NAMESPACE  SERIES   TIME",
		"shop       nightly  ",
		"billing    nightly  ",
		second.Key,
		unverified.Key,
		"age",
		pipeline.Fingerprint(recipient),
	} {
		if !strings.Contains(table, line) {
			t.Errorf("the table has no %q", line)
		}
	}
	if !strings.Contains(ignored, "1 objects without a manifest ignored") {
		t.Errorf("list's stderr %q does not count the file without a manifest", ignored)
	}
	var listed []catalog.Backup
	if err := json.Unmarshal([]byte(jsonOut), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 3 || listed[0].Key != unverified.Key || listed[0].Verified || listed[1].Key != second.Key || !listed[1].Verified {
		t.Errorf("list -o json of namespace shop, newest first: %+v", listed)
	}
	var one catalog.Backup
	if err := json.Unmarshal([]byte(shown), &one); err != nil {
		t.Fatal(err)
	}
	if one.Key != second.Key || one.Checksum != second.Checksum || !one.Verified || one.Encryption != stages.EncryptionAge || len(one.Recipients) != 1 {
		t.Errorf("show: %+v", one)
	}
	var amb *catalog.AmbiguousError
	if !errors.As(ambiguous, &amb) || len(amb.Candidates) != 2 || !strings.Contains(ambiguous.Error(), "billing/nightly") || !strings.Contains(ambiguous.Error(), second.Key) {
		t.Errorf("restore --latest of a series two namespaces have: %v; want it refused naming both", ambiguous)
	}

	// verify --latest checks the same backup again.
	_, verified := mustBackflow(t, "verify", "--storage", url, "--latest", "--namespace", "shop", "--series", "nightly", "--identity-file", identityFile)
	if !strings.Contains(verified, "verified ") || !strings.Contains(verified, second.Key) {
		t.Errorf("verify --latest: %s", verified)
	}
}
