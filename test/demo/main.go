// Command demo shows backflow's data plane end to end on this machine: a real
// PostgreSQL with sample data is dumped by the backflow binary through zstd
// and age into a real MinIO, verified, restored into a second database, and
// the two databases are compared row for row. Run it with `make demo`.
//
// The Kubernetes half (controller, Argo, a node running the steps) runs in
// the controller tests; a local cluster for the demo is issue 5's work.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/test/servers"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run() error {
	backflow := os.Getenv("BACKFLOW_BIN")
	if backflow == "" {
		return fmt.Errorf("set BACKFLOW_BIN (make demo does)")
	}
	step("starting PostgreSQL and MinIO on loopback")
	pg, err := servers.StartPostgreSQL()
	if err != nil {
		return err
	}
	defer pg.Stop()
	minio, err := servers.StartMinIO()
	if err != nil {
		return err
	}
	defer minio.Stop()

	step("creating database shop with sample data (pgbench tables, unicode text, binary columns)")
	if _, err := pg.Query("postgres", "CREATE DATABASE shop"); err != nil {
		return err
	}
	init := exec.Command(filepath.Join(pg.BinDir, "pgbench"), "--initialize", "--scale=5", "--quiet", "shop")
	init.Env = append(os.Environ(), pg.Env("shop")...)
	if out, err := init.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench: %v: %s", err, out)
	}
	if _, err := pg.Query("shop", `CREATE TABLE orders (id int PRIMARY KEY, customer text, receipt bytea);
		INSERT INTO orders SELECT i, 'Kundin Nr. ' || i || ' — café ☕', decode(md5(i::text), 'hex') FROM generate_series(1, 20000) i;`); err != nil {
		return err
	}

	work, err := os.MkdirTemp("", "backflow-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	identity, recipient, err := servers.AgeIdentity(work)
	if err != nil {
		return err
	}
	storage := minio.StorageURL("demo")
	env := func(db string) []string {
		return append(os.Environ(), "AWS_ACCESS_KEY_ID="+minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+minio.SecretKey,
			"BACKFLOW_DB_USERNAME="+pg.User, "BACKFLOW_DB_PASSWORD="+pg.Password, "BACKFLOW_DB_DATABASE="+db)
	}
	conn := fmt.Sprintf(`{"host": %q, "port": %d, "secretRef": {"name": "demo"}}`, pg.Host, pg.Port)
	bf := func(db string, args ...string) (string, error) {
		cmd := exec.Command(backflow, args...)
		cmd.Env = env(db)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		fmt.Print(indent(stderr.String()))
		if err != nil {
			return "", fmt.Errorf("backflow %s: %w", args[0], err)
		}
		return string(out), nil
	}

	step("backflow dump: pg_dump | zstd | age | sha256 -> %s", minio.Endpoint)
	start := time.Now()
	if _, err := bf("shop", "dump", "--storage", storage, "--namespace", "demo", "--name", "shop-1", "--series", "shop",
		"--path", "{{ .Namespace }}/{{ .Series }}/{{ .Name }}{{ .Extension }}",
		"--source", `{"postgresql": {"connection": `+conn+`, "format": "custom"}}`, "--recipient", recipient); err != nil {
		return err
	}
	key := "demo/shop/shop-1.pgdump.zst.age"
	fmt.Printf("    took %s\n", time.Since(start).Round(time.Millisecond))

	step("backflow verify: read back, decrypt, decompress, check both checksums, pg_restore --list")
	if _, err := bf("shop", "verify", "--storage", storage, "--key", key, "--identity-file", identity, "--restore-test", "{}"); err != nil {
		return err
	}

	step("backflow restore into a fresh database shop_restored")
	if _, err := pg.Query("postgres", "CREATE DATABASE shop_restored"); err != nil {
		return err
	}
	if _, err := bf("shop_restored", "restore", "--storage", storage, "--key", key, "--identity-file", identity,
		"--target", `{"postgresql": {"connection": `+conn+`}}`); err != nil {
		return err
	}

	step("comparing the databases row for row")
	for _, table := range []string{"pgbench_accounts", "pgbench_branches", "pgbench_tellers", "orders"} {
		q := fmt.Sprintf("SELECT count(*) || ' rows, md5 ' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM %s t", table)
		a, err := pg.Query("shop", q)
		if err != nil {
			return err
		}
		b, err := pg.Query("shop_restored", q)
		if err != nil {
			return err
		}
		if a != b {
			return fmt.Errorf("%s differs after the restore: %s vs %s", table, a, b)
		}
		fmt.Printf("    %-17s %s  identical\n", table, a)
	}

	step("the bucket")
	objects := minio.Client().ListObjects(context.Background(), minio.Bucket, minioListOptions())
	for o := range objects {
		fmt.Printf("    %s  %d bytes\n", o.Key, o.Size)
	}
	step("done: backed up, verified and restored")
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
