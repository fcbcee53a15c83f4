// Command stages benchmarks backflow's data plane against the shell pipeline
// users write today, on one ~1 GiB SQL dump and one local MinIO:
//
//	shell_gzip6   gzip -6 | age -r ... | mc pipe
//	zstd_alone    zstd -3 -T0 on the file (the ceiling of this machine)
//	dump_zstd     backflow dump, zstd at its default level, age, sha256, MinIO
//	dump_gzip     backflow dump with gzip
//	restore_zstd  backflow restore of the zstd object into a command's stdin
//	dump_8g       backflow dump of the same file eight times over, for memory
//
// It ends with `ratio NAME VALUE` and `rss NAME MIB` lines, one per figure,
// so that runs can be compared. Then the MongoDB part (mongodb.go) does the
// same for backflow's MongoDB engine against FerretDB, with its own ratio and
// rss lines. Run it with `make bench-stages`; BACKFLOW_BENCH_ONLY=file or
// BACKFLOW_BENCH_ONLY=mongodb runs one part alone.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/backflow-dev/backflow/test/servers"
)

type result struct {
	name    string
	seconds float64
	bytes   int64
	rssMiB  float64
}

func (r result) mbps() float64 { return float64(r.bytes) / 1e6 / r.seconds }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-stages:", err)
		os.Exit(1)
	}
}

func cacheDir() string {
	if c := os.Getenv("BACKFLOW_CACHE"); c != "" {
		return c
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "backflow")
}

// bench is what both parts share: the backflow binary, one MinIO, one age
// identity and the environment the commands run in.
type bench struct {
	backflow            string
	mc                  string
	minio               *servers.MinIO
	work                string
	identity, recipient string
	env                 []string
	storage             string
}

// Values of BACKFLOW_BENCH_ONLY.
const (
	onlyFile    = "file"
	onlyMongoDB = "mongodb"
)

// dumpCommand is `backflow dump` of a source into the bench's storage, as an
// object named name, encrypted to the bench's recipient.
func (b *bench) dumpCommand(name, source string, flags ...string) []string {
	return append([]string{b.backflow, "dump", "--storage", b.storage, "--name", name, "--path", "{{ .Name }}{{ .Extension }}",
		"--recipient", b.recipient, "--source", source}, flags...)
}

func run() error {
	only := os.Getenv("BACKFLOW_BENCH_ONLY")
	if only != "" && only != onlyFile && only != onlyMongoDB {
		return fmt.Errorf("BACKFLOW_BENCH_ONLY is %q: file, mongodb or unset for both", only)
	}
	if only != onlyFile {
		if _, err := mongoMiB(); err != nil {
			return err
		}
	}
	if only != onlyMongoDB {
		for _, tool := range []string{"gzip", "zstd", "age", "pg_dump"} {
			if _, err := exec.LookPath(tool); err != nil {
				return fmt.Errorf("%s not installed: run make deps", tool)
			}
		}
	}
	b := &bench{mc: os.Getenv("BACKFLOW_MC"), backflow: os.Getenv("BACKFLOW_BIN")}
	if b.backflow == "" || (b.mc == "" && only != "mongodb") {
		return fmt.Errorf("set BACKFLOW_MC and BACKFLOW_BIN (make bench-stages does)")
	}
	var err error
	if b.minio, err = servers.StartMinIO(); err != nil {
		return err
	}
	defer b.minio.Stop()
	if b.work, err = os.MkdirTemp("", "backflow-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	if b.identity, b.recipient, err = servers.AgeIdentity(b.work); err != nil {
		return err
	}
	minio := b.minio
	b.env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+minio.SecretKey,
		"MC_HOST_bench="+strings.Replace(minio.Endpoint, "http://", "http://"+minio.AccessKey+":"+minio.SecretKey+"@", 1),
		"MC_CONFIG_DIR="+filepath.Join(b.work, "mc"))
	b.storage = minio.StorageURL("bench")
	if only != "mongodb" {
		if err := benchFile(b); err != nil {
			return err
		}
	}
	if only != onlyFile {
		if only == "" {
			fmt.Println()
		}
		return benchMongoDB(b)
	}
	return nil
}

// benchFile is the first part: one pg_dump file through the shell pipeline
// and through backflow.
func benchFile(b *bench) error {
	dump, err := ensureDump()
	if err != nil {
		return err
	}
	fi, err := os.Stat(dump)
	if err != nil {
		return err
	}
	size := fi.Size()
	fmt.Printf("input: %s, %.2f GiB of pg_dump output\n", dump, float64(size)/(1<<30))
	backflow, mc, env, storage, identity, recipient := b.backflow, b.mc, b.env, b.storage, b.identity, b.recipient
	source := func(cmd ...string) string {
		return fmt.Sprintf(`{"command":{"image":"x","command":[%s]}}`, quoteAll(cmd))
	}
	eight := `for i in 1 2 3 4 5 6 7 8; do cat "$0"; done`

	// Each figure runs `rounds` times, the figures of a round one after the
	// other, and the median round counts: ratios then compare runs made
	// close together, and one noisy round (a neighbour on the cores) does not
	// decide them. {round} in an argument becomes the round number.
	steps := []struct {
		name   string
		bytes  int64
		rounds int
		args   []string
	}{
		{"shell_gzip6", size, 1, []string{"sh", "-c", `gzip -6 < "$0" | age -r "$1" | "$2" pipe --quiet bench/backups/shell/dump.sql.gz.age`, dump, recipient, mc}},
		{"zstd_alone", size, 3, []string{"sh", "-c", `zstd -3 -T0 -q -c "$0" > /dev/null`, dump}},
		{"dump_zstd", size, 3, b.dumpCommand("zstd-{round}", source("cat", dump))},
		{"dump_gzip", size, 3, b.dumpCommand("gzip-{round}", source("cat", dump), "--compression", "gzip")},
		{"restore_zstd", size, 3, []string{backflow, "restore", "--storage", storage, "--key", "zstd-{round}.bin.zst.age", "--identity-file", identity,
			"--verify-first=false", "--target", source("sh", "-c", "cat > /dev/null")}},
		{"dump_8g", 8 * size, 1, b.dumpCommand("eight", source("sh", "-c", eight, dump))},
	}
	runs := map[string][]result{}
	for round := 1; round <= 3; round++ {
		for _, s := range steps {
			if round > s.rounds {
				continue
			}
			args := make([]string, len(s.args))
			for j, a := range s.args {
				args[j] = strings.ReplaceAll(a, "{round}", fmt.Sprint(round))
			}
			fmt.Printf("round %d: %s\n", round, s.name)
			r, err := timed(s.name, s.bytes, env, args...)
			if err != nil {
				return err
			}
			runs[s.name] = append(runs[s.name], r)
		}
	}
	var results []result
	for _, s := range steps {
		rs := runs[s.name]
		sort.Slice(rs, func(i, j int) bool { return rs[i].seconds < rs[j].seconds })
		r := rs[len(rs)/2]
		fmt.Printf("  %-13s %7.1f s %8.1f MB/s  peak RSS %6.1f MiB  (median of %d)\n", r.name, r.seconds, r.mbps(), r.rssMiB, len(rs))
		results = append(results, r)
	}
	by := map[string]result{}
	for _, r := range results {
		by[r.name] = r
	}
	ratio := func(a, b string) float64 { return by[a].mbps() / by[b].mbps() }
	fmt.Println()
	fmt.Printf("ratio zstd_vs_shell_gzip6 %.2f\n", ratio("dump_zstd", "shell_gzip6"))
	fmt.Printf("ratio zstd_vs_zstd_alone %.2f\n", ratio("dump_zstd", "zstd_alone"))
	fmt.Printf("ratio gzip_vs_shell_gzip6 %.2f\n", ratio("dump_gzip", "shell_gzip6"))
	fmt.Printf("ratio restore_vs_dump %.2f\n", ratio("restore_zstd", "dump_zstd"))
	fmt.Printf("ratio rss_8g_vs_1g %.2f\n", by["dump_8g"].rssMiB/by["dump_zstd"].rssMiB)
	fmt.Printf("rss dump_1g %.0f\n", by["dump_zstd"].rssMiB)
	fmt.Printf("rss dump_gzip_1g %.0f\n", by["dump_gzip"].rssMiB)
	fmt.Printf("rss dump_8g %.0f\n", by["dump_8g"].rssMiB)
	fmt.Printf("rss restore_1g %.0f\n", by["restore_zstd"].rssMiB)
	return nil
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ",")
}

// timed runs a command and measures its wall time and peak RSS.
func timed(name string, bytes int64, env []string, args ...string) (result, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.Stdout = nil
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %v: %s", name, err, stderr.String())
	}
	elapsed := time.Since(start).Seconds()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{name: name, seconds: elapsed, bytes: bytes, rssMiB: float64(ru.Maxrss) / 1024}, nil
}

// ensureDump makes a ~1 GiB plain pg_dump once and keeps it in the cache. The
// table mixes what real databases hold (timestamps, names, enums, hashes,
// JSON, repeated text), so it compresses about as much as production dumps
// do, unlike pgbench's blank-padded tables.
func ensureDump() (string, error) {
	path := filepath.Join(cacheDir(), "bench", "events-1g.sql")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Println("making the input: 5.6 million rows and pg_dump (once; cached)")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	pg, err := servers.StartPostgreSQL()
	if err != nil {
		return "", err
	}
	defer pg.Stop()
	if _, err := pg.Query("postgres", "CREATE DATABASE bench"); err != nil {
		return "", err
	}
	if _, err := pg.Query("bench", `CREATE TABLE events AS SELECT i AS id,
		timestamptz '2026-01-01' + i * interval '7 seconds' AS at,
		'user-' || (i % 50000) AS user_name,
		(ARRAY['login', 'logout', 'purchase', 'view', 'search'])[1 + i % 5] AS kind,
		md5(i::text) AS session,
		jsonb_build_object('ip', '10.' || (i % 256) || '.' || (i * 7 % 256) || '.' || (i * 13 % 256),
			'amount', (i % 10000) / 100.0, 'sku', 'SKU-' || (i * 31 % 100000)) AS payload,
		repeat(substr(md5((i / 10)::text), 1, 8) || ' ', 4) AS note
		FROM generate_series(1, 5600000) i`); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	out, err := os.Create(path + ".tmp")
	if err != nil {
		return "", err
	}
	dump := exec.CommandContext(ctx, "pg_dump", "--format=plain", "bench")
	dump.Env = append(os.Environ(), pg.Env("bench")...)
	dump.Stdout = out
	if err := dump.Run(); err != nil {
		out.Close()
		return "", fmt.Errorf("pg_dump: %w", err)
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(path+".tmp", path)
}
