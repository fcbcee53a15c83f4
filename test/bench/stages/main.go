// Command stages benchmarks backflow's data plane against the shell pipeline
// users write today, on one ~1 GiB SQL dump and one local MinIO:
//
//	shell_gzip6   gzip -6 | age -r ... | mc pipe
//	zstd_alone    zstd -3 -T0 on the file (the ceiling of this machine)
//	dump_zstd     backflow dump, zstd at its default level, age, sha256, MinIO
//	dump_gzip     backflow dump with gzip
//	restore_zstd  backflow restore of the zstd object into a command's stdin
//	restore_cli   mc cat | age -d | zstd -d | sha256sum of the same object
//	dump_8g       backflow dump of the same file eight times over, for memory
//
// It ends with `ratio NAME VALUE` and `rss NAME MIB` lines, one per figure,
// so that runs can be compared, and `cpu NAME SECONDS` lines: the CPU time
// per GiB of input of each command (its children included) and of the MinIO
// server meanwhile, which a busy machine disturbs less than wall time. Then
// the sources part (sources.go) dumps real PostgreSQL and MariaDB databases
// against their own dump tool alone, and the MongoDB part (mongodb.go) does
// the same for backflow's MongoDB engine against FerretDB, each with its own
// ratio lines. Run it with `make bench-stages`; BACKFLOW_BENCH_ONLY=file,
// sources or mongodb runs one part alone, and BACKFLOW_BENCH_ONLY=profile
// one dump and one restore of the file with CPU profiles written to
// BACKFLOW_BENCH_PROFILE (a directory; `go tool pprof -top FILE` reads them).
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/backflow-dev/backflow/test/servers"

	"github.com/backflow-dev/backflow/test/bench/procfs"
)

type result struct {
	name    string
	seconds float64
	bytes   int64
	rssMiB  float64
	// cpu is the command's CPU seconds (user and system, its children
	// included), minioCPU the MinIO server's meanwhile.
	cpu, minioCPU float64
}

// cpuPerGiB is the CPU seconds per GiB of input.
func (r result) cpuPerGiB() float64 { return r.cpu / (float64(r.bytes) / (1 << 30)) }

func (r result) minioCPUPerGiB() float64 { return r.minioCPU / (float64(r.bytes) / (1 << 30)) }

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
	// minioPID is the MinIO server's process, whose CPU each figure counts.
	minioPID int
}

// Values of BACKFLOW_BENCH_ONLY.
const (
	onlyFile    = "file"
	onlySources = "sources"
	onlyMongoDB = "mongodb"
	onlyProfile = "profile"
)

// dumpCommand is `backflow dump` of a source into the bench's storage, as an
// object named name, encrypted to the bench's recipient.
func (b *bench) dumpCommand(name, source string, flags ...string) []string {
	return append([]string{b.backflow, "dump", "--storage", b.storage, "--name", name, "--path", "{{ .Name }}{{ .Extension }}",
		"--recipient", b.recipient, "--source", source}, flags...)
}

func run() error {
	only := os.Getenv("BACKFLOW_BENCH_ONLY")
	part := func(name string) bool { return only == "" || only == name }
	switch only {
	case "", onlyFile, onlySources, onlyMongoDB:
	case onlyProfile:
		if os.Getenv("BACKFLOW_BENCH_PROFILE") == "" {
			return fmt.Errorf("BACKFLOW_BENCH_ONLY=profile writes its profiles into BACKFLOW_BENCH_PROFILE: set it to a directory")
		}
	default:
		return fmt.Errorf("BACKFLOW_BENCH_ONLY is %q: file, sources, mongodb, profile or unset for all", only)
	}
	if part(onlyMongoDB) {
		if _, err := mongoMiB(); err != nil {
			return err
		}
	}
	var tools []string
	if part(onlyFile) || part(onlyProfile) {
		tools = append(tools, "gzip", "zstd", "age", "sha256sum", "pg_dump")
	}
	if part(onlySources) {
		tools = append(tools, "pg_dump", "mariadb-dump")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not installed: run make deps", tool)
		}
	}
	b := &bench{mc: os.Getenv("BACKFLOW_MC"), backflow: os.Getenv("BACKFLOW_BIN")}
	if b.backflow == "" || (b.mc == "" && (part(onlyFile) || part(onlyProfile))) {
		return fmt.Errorf("set BACKFLOW_MC and BACKFLOW_BIN (make bench-stages does)")
	}
	var err error
	if b.minio, err = servers.StartMinIO(); err != nil {
		return err
	}
	defer b.minio.Stop()
	b.minioPID = minioPID(b.minio)
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
	fmt.Printf("machine: %d cores, load average %s\n", runtime.NumCPU(), procfs.LoadAverage())
	if only == onlyProfile {
		return profileFile(b)
	}
	parts := []struct {
		name string
		run  func(*bench) error
	}{{onlyFile, benchFile}, {onlySources, benchSources}, {onlyMongoDB, benchMongoDB}}
	for i, p := range parts {
		if !part(p.name) {
			continue
		}
		if i > 0 && only == "" {
			fmt.Println()
		}
		if err := p.run(b); err != nil {
			return err
		}
	}
	fmt.Printf("machine at the end: load average %s\n", procfs.LoadAverage())
	return nil
}

// objectPath is the mc path of an object of the bench's storage.
func (b *bench) objectPath(key string) string {
	return "bench/" + b.minio.Bucket + "/bench/" + key
}

// restoreCommand is `backflow restore` of an object into a command that
// reads it to the end.
func (b *bench) restoreCommand(key string) []string {
	return []string{b.backflow, "restore", "--storage", b.storage, "--key", key, "--identity-file", b.identity,
		"--verify-first=false", "--target", commandJSON("sh", "-c", "cat > /dev/null")}
}

// commandJSON is a command source or target running cmd.
func commandJSON(cmd ...string) string {
	return fmt.Sprintf(`{"command":{"image":"x","command":[%s]}}`, quoteAll(cmd))
}

// profileFile dumps and restores the file once each with CPU profiles.
func profileFile(b *bench) error {
	dump, size, err := ensureDump()
	if err != nil {
		return err
	}
	dir := os.Getenv("BACKFLOW_BENCH_PROFILE")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, s := range []struct {
		name string
		args []string
	}{
		{"dump_zstd", b.dumpCommand("profile", commandJSON("cat", dump))},
		{"restore_zstd", b.restoreCommand("profile.bin.zst.age")},
	} {
		env := append(b.env[:len(b.env):len(b.env)], "BACKFLOW_CPU_PROFILE="+filepath.Join(dir, s.name+".pprof"))
		r, err := timed(s.name, size, env, b.minioPID, s.args...)
		if err != nil {
			return err
		}
		fmt.Printf("  %-13s %7.1f s %8.1f MB/s  cpu %.2f s/GiB, minio %.2f s/GiB; profile %s\n", r.name, r.seconds, r.mbps(),
			r.cpuPerGiB(), r.minioCPUPerGiB(), filepath.Join(dir, s.name+".pprof"))
	}
	return nil
}

// benchFile is the first part: one pg_dump file through the shell pipeline
// and through backflow.
func benchFile(b *bench) error {
	dump, size, err := ensureDump()
	if err != nil {
		return err
	}
	fmt.Printf("input: %s, %.2f GiB of pg_dump output\n", dump, float64(size)/(1<<30))
	mc, env, recipient := b.mc, b.env, b.recipient
	source := commandJSON
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
		{"restore_zstd", size, 3, b.restoreCommand("zstd-{round}.bin.zst.age")},
		{"restore_cli", size, 3, []string{"sh", "-c", `"$0" cat --quiet "$1" | age -d -i "$2" | zstd -d -q -c | sha256sum > /dev/null`,
			mc, b.objectPath("zstd-{round}.bin.zst.age"), b.identity}},
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
			r, err := timed(s.name, s.bytes, env, b.minioPID, args...)
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
		fmt.Printf("  %-13s %7.1f s %8.1f MB/s  peak RSS %6.1f MiB  cpu %5.2f s/GiB + minio %4.2f  (median of %d)\n",
			r.name, r.seconds, r.mbps(), r.rssMiB, r.cpuPerGiB(), r.minioCPUPerGiB(), len(rs))
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
	fmt.Printf("ratio restore_vs_cli_restore %.2f\n", ratio("restore_zstd", "restore_cli"))
	fmt.Printf("ratio rss_8g_vs_1g %.2f\n", by["dump_8g"].rssMiB/by["dump_zstd"].rssMiB)
	fmt.Printf("rss dump_1g %.0f\n", by["dump_zstd"].rssMiB)
	fmt.Printf("rss dump_gzip_1g %.0f\n", by["dump_gzip"].rssMiB)
	fmt.Printf("rss dump_8g %.0f\n", by["dump_8g"].rssMiB)
	fmt.Printf("rss restore_1g %.0f\n", by["restore_zstd"].rssMiB)
	for _, r := range results {
		fmt.Printf("cpu %s %.2f\n", r.name, r.cpuPerGiB())
		fmt.Printf("cpu %s_minio %.2f\n", r.name, r.minioCPUPerGiB())
	}
	return nil
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ",")
}

// timed runs a command and measures its wall time, peak RSS and CPU time,
// and the CPU time of the process minio (0 for none) meanwhile.
func timed(name string, bytes int64, env []string, minio int, args ...string) (result, error) {
	return timedTo(name, bytes, env, minio, nil, args...)
}

// timedTo is timed with the command's standard output into stdout (nil for
// /dev/null).
func timedTo(name string, bytes int64, env []string, minio int, stdout *os.File, args ...string) (result, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	minioBefore, _ := procfs.CPU(minio)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%s: %v: %s", name, err, stderr.String())
	}
	elapsed := time.Since(start).Seconds()
	minioAfter, _ := procfs.CPU(minio)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return result{name: name, seconds: elapsed, bytes: bytes, rssMiB: float64(ru.Maxrss) / 1024,
		cpu:      (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds(),
		minioCPU: minioAfter - minioBefore}, nil
}

// benchRows is the number of rows of the events table: about 1 GiB of
// dump.
const benchRows = 5_600_000

// pgEventsTable is the SQL that makes the events table of PostgreSQL with
// rows rows.
func pgEventsTable(rows int) string {
	return fmt.Sprintf(`CREATE TABLE events AS SELECT i AS id,
		timestamptz '2026-01-01' + i * interval '7 seconds' AS at,
		'user-' || (i %% 50000) AS user_name,
		(ARRAY['login', 'logout', 'purchase', 'view', 'search'])[1 + i %% 5] AS kind,
		md5(i::text) AS session,
		jsonb_build_object('ip', '10.' || (i %% 256) || '.' || (i * 7 %% 256) || '.' || (i * 13 %% 256),
			'amount', (i %% 10000) / 100.0, 'sku', 'SKU-' || (i * 31 %% 100000)) AS payload,
		repeat(substr(md5((i / 10)::text), 1, 8) || ' ', 4) AS note
		FROM generate_series(1, %d) i`, rows)
}

// ensureDump is the path and size of a ~1 GiB plain pg_dump, made once and
// kept in the cache.
func ensureDump() (string, int64, error) {
	path := filepath.Join(cacheDir(), "bench", "events-1g.sql")
	if _, err := os.Stat(path); err != nil {
		if err := makeDump(path); err != nil {
			return "", 0, err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), nil
}

// makeDump writes the pg_dump of the events table to path. The table mixes
// what real databases hold (timestamps, names, enums, hashes, JSON, repeated
// text), so it compresses about as much as production dumps do, unlike
// pgbench's blank-padded tables.
func makeDump(path string) error {
	fmt.Printf("making the input: %d rows and pg_dump (once; cached)\n", benchRows)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	pg, err := servers.StartPostgreSQL()
	if err != nil {
		return err
	}
	defer pg.Stop()
	if _, err := pg.Query("postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	if _, err := pg.Query("bench", pgEventsTable(benchRows)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	out, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	dump := exec.CommandContext(ctx, "pg_dump", "--format=plain", "bench")
	dump.Env = append(os.Environ(), pg.Env("bench")...)
	dump.Stdout = out
	if err := dump.Run(); err != nil {
		out.Close()
		return fmt.Errorf("pg_dump: %w", err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
