package main

// The sources part: backflow dump of a real database against the database's
// own dump tool writing to /dev/null, on the same database and the same
// cores, so that the ratio says how much of the tool's speed the pipeline
// (compression, age, checksums, the upload to MinIO) keeps:
//
//	pg_dump_alone       pg_dump --format=custom --compress=0 > /dev/null
//	pg_dump_backflow    backflow dump of the same database (the same pg_dump
//	                    arguments), zstd, age, MinIO
//	mariadb_dump_alone  mariadb-dump --single-transaction ... > /dev/null
//	mariadb_dump_backflow  backflow dump, flavor mariadb
//
// The events table of the file part fills both servers
// (BACKFLOW_BENCH_SOURCE_ROWS rows, 5.6 million by default: about 1 GiB of
// dump). Each figure runs three times, interleaved, and the median counts;
// each prints the CPU the database server's processes took meanwhile, which
// shares the two cores with the dump.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/test/servers"

	"github.com/backflow-dev/backflow/test/bench/procfs"
)

func sourceRows() (int, error) {
	v := os.Getenv("BACKFLOW_BENCH_SOURCE_ROWS")
	if v == "" {
		return benchRows, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("BACKFLOW_BENCH_SOURCE_ROWS is %q, not a number of rows", v)
	}
	return n, nil
}

// sourceStep is one command of a source's comparison.
type sourceStep struct {
	name string
	env  []string
	args []string
	// dump says the command is a backflow dump, which prints its manifest.
	dump bool
}

// sourceResult is a median figure and the database server's CPU meanwhile.
type sourceResult struct {
	result
	serverCPU float64
}

func benchSources(b *bench) error {
	rows, err := sourceRows()
	if err != nil {
		return err
	}
	fmt.Printf("sources: the events table, %d rows, in PostgreSQL and in MariaDB\n", rows)
	if err := benchPostgreSQL(b, rows); err != nil {
		return err
	}
	return benchMariaDB(b, rows)
}

func benchPostgreSQL(b *bench, rows int) error {
	pg, err := servers.StartPostgreSQL()
	if err != nil {
		return err
	}
	defer pg.Stop()
	start := time.Now()
	if _, err := pg.Query("postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	if _, err := pg.Query("bench", pgEventsTable(rows)); err != nil {
		return err
	}
	// Autovacuum would visit the new table during the first figures.
	if _, err := pg.Query("bench", "VACUUM ANALYZE events"); err != nil {
		return err
	}
	fmt.Printf("postgresql: filled in %.0f s\n", time.Since(start).Seconds())
	alone := append(b.env[:len(b.env):len(b.env)], pg.Env("bench")...)
	conn := append(b.env[:len(b.env):len(b.env)], "BACKFLOW_DB_USERNAME="+pg.User, "BACKFLOW_DB_PASSWORD="+pg.Password)
	src := fmt.Sprintf(`{"postgresql":{"connection":{"host":%q,"port":%d,"database":"bench"},"format":"custom"}}`, pg.Host, pg.Port)
	by, err := compareSource(b, pg.PID(), []sourceStep{
		{name: "pg_dump_alone", env: alone, args: []string{"pg_dump", "--no-password", "--format=custom", "--compress=0"}},
		{name: "pg_dump_backflow", env: conn, args: b.dumpCommand("pg-{round}", src), dump: true},
	})
	if err != nil {
		return err
	}
	fmt.Printf("ratio pg_dump_vs_pg_dump_alone %.2f\n", by["pg_dump_backflow"].mbps()/by["pg_dump_alone"].mbps())
	fmt.Printf("rss pg_dump_backflow %.0f\n", by["pg_dump_backflow"].rssMiB)
	fmt.Println()
	return nil
}

func benchMariaDB(b *bench, rows int) error {
	maria, err := servers.StartMariaDB()
	if err != nil {
		return err
	}
	defer maria.Stop()
	start := time.Now()
	if _, err := maria.Query("", "CREATE DATABASE bench"); err != nil {
		return err
	}
	// The same columns as PostgreSQL's table, from MariaDB's sequence engine.
	if _, err := maria.Query("bench", fmt.Sprintf(`CREATE TABLE events (id bigint PRIMARY KEY, at datetime, user_name varchar(32),
		kind varchar(16), session char(32), payload json, note varchar(64))
		SELECT seq AS id, TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq * 7 SECOND AS at,
		CONCAT('user-', seq %% 50000) AS user_name,
		ELT(1 + seq %% 5, 'login', 'logout', 'purchase', 'view', 'search') AS kind,
		md5(seq) AS session,
		JSON_OBJECT('ip', CONCAT('10.', seq %% 256, '.', seq * 7 %% 256, '.', seq * 13 %% 256),
			'amount', (seq %% 10000) / 100.0, 'sku', CONCAT('SKU-', seq * 31 %% 100000)) AS payload,
		REPEAT(CONCAT(SUBSTR(md5(seq DIV 10), 1, 8), ' '), 4) AS note
		FROM seq_1_to_%d`, rows)); err != nil {
		return err
	}
	fmt.Printf("mariadb: filled in %.0f s\n", time.Since(start).Seconds())
	conn := append(b.env[:len(b.env):len(b.env)], "BACKFLOW_DB_USERNAME="+maria.User, "BACKFLOW_DB_PASSWORD="+maria.Password)
	src := fmt.Sprintf(`{"mysql":{"flavor":"mariadb","connection":{"host":%q,"port":%d,"database":"bench"}}}`, maria.Host, maria.Port)
	by, err := compareSource(b, maria.PID(), []sourceStep{
		// The arguments of backflow's mysql engine, the connection given
		// on the command line instead of in an option file.
		{name: "mariadb_dump_alone", env: b.env, args: []string{"mariadb-dump", "--no-defaults", "--host=" + maria.Host,
			"--port=" + strconv.Itoa(maria.Port), "--user=" + maria.User, "--password=" + maria.Password,
			"--hex-blob", "--default-character-set=utf8mb4", "--routines", "--triggers", "--single-transaction", "--", "bench"}},
		{name: "mariadb_dump_backflow", env: conn, args: b.dumpCommand("maria-{round}", src), dump: true},
	})
	if err != nil {
		return err
	}
	fmt.Printf("ratio mariadb_dump_vs_alone %.2f\n", by["mariadb_dump_backflow"].mbps()/by["mariadb_dump_alone"].mbps())
	fmt.Printf("rss mariadb_dump_backflow %.0f\n", by["mariadb_dump_backflow"].rssMiB)
	return nil
}

// compareSource runs the steps three times, interleaved, and prints their
// medians. The tool alone writes to /dev/null and counts as many bytes as
// the backflow dump's manifest says the same tool wrote.
func compareSource(b *bench, serverPID int, steps []sourceStep) (map[string]sourceResult, error) {
	runs := map[string][]sourceResult{}
	var raw int64
	for round := 1; round <= 3; round++ {
		for _, s := range steps {
			args := make([]string, len(s.args))
			for j, a := range s.args {
				args[j] = strings.ReplaceAll(a, "{round}", fmt.Sprint(round))
			}
			fmt.Printf("round %d: %s\n", round, s.name)
			serverBefore := procfs.GroupCPU(serverPID)
			r, out, err := timedOutput(s.name, s.env, b.minioPID, s.dump, args...)
			if err != nil {
				return nil, err
			}
			// The server reaps its backend a moment after the client left.
			time.Sleep(200 * time.Millisecond)
			res := sourceResult{result: r, serverCPU: procfs.GroupCPU(serverPID) - serverBefore}
			if s.dump {
				var m struct {
					RawSize int64 `json:"rawSize"`
				}
				if err := json.Unmarshal([]byte(out), &m); err != nil {
					return nil, fmt.Errorf("%s: reading the manifest: %w", s.name, err)
				}
				raw = m.RawSize
			}
			runs[s.name] = append(runs[s.name], res)
		}
	}
	by := map[string]sourceResult{}
	for _, s := range steps {
		rs := runs[s.name]
		for i := range rs {
			rs[i].bytes = raw
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].seconds < rs[j].seconds })
		r := rs[len(rs)/2]
		secs := r.seconds
		fmt.Printf("  %-22s %7.1f s %8.1f MB/s  peak RSS %6.1f MiB  cpu (cores): command %.2f, database server %.2f, minio %.2f  (median of %d)\n",
			r.name, secs, r.mbps(), r.rssMiB, r.cpu/secs, r.serverCPU/secs, r.minioCPU/secs, len(rs))
		by[s.name] = r
	}
	return by, nil
}

// timedOutput runs a command like timed, its standard output kept when keep
// is set and sent to /dev/null otherwise.
func timedOutput(name string, env []string, minio int, keep bool, args ...string) (result, string, error) {
	if !keep {
		r, err := timed(name, 0, env, minio, args...)
		return r, "", err
	}
	out, err := os.CreateTemp("", "backflow-bench-out-")
	if err != nil {
		return result{}, "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	r, err := timedTo(name, 0, env, minio, out, args...)
	if err != nil {
		return result{}, "", err
	}
	data, err := os.ReadFile(out.Name())
	return r, string(data), err
}
