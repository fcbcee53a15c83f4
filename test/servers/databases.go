package servers

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// asUser runs a command as another user when the tests run as root, because
// PostgreSQL refuses to run as root.
func asUser(name string, args ...string) []string {
	if os.Geteuid() != 0 {
		return append([]string{name}, args...)
	}
	return append([]string{"runuser", "-u", "postgres", "--", name}, args...)
}

func run(args []string, env ...string) (string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args[:min(len(args), 6)], " "), err, out)
	}
	return string(out), nil
}

// PostgreSQL is a running PostgreSQL server whose superuser has a password.
type PostgreSQL struct {
	Host     string
	Port     int
	User     string
	Password string
	BinDir   string
	dir      string
	proc     *process
}

// postgresBinDir finds the server binaries of Debian's postgresql package.
func postgresBinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", fmt.Errorf("no PostgreSQL server: run `make deps` (apt-get install postgresql-15)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

// StartPostgreSQL initialises a cluster in a temporary directory and starts it
// on a free loopback port, with password authentication over TCP.
func StartPostgreSQL() (*PostgreSQL, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-pg-")
	if err != nil {
		return nil, err
	}
	p := &PostgreSQL{Host: loopback, Port: port, User: "postgres", Password: "pg-test-secret", BinDir: bin, dir: dir}
	fail := func(err error) (*PostgreSQL, error) { p.Stop(); return nil, err }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
		defer func() { _ = os.Chown(filepath.Join(dir, "pw"), uid, gid) }()
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o644); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	if _, err := run(asUser(filepath.Join(bin, "initdb"), "--pgdata="+data, "--username=postgres", "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")); err != nil {
		return fail(err)
	}
	p.proc, err = startProcess(filepath.Join(os.TempDir(), filepath.Base(dir)+".log"), asUser(filepath.Join(bin, "postgres"))[0],
		append(asUser(filepath.Join(bin, "postgres"))[1:], "-D", data, "-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
			"-c", "unix_socket_directories="+dir, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"), nil)
	if err != nil {
		return fail(err)
	}
	if err := waitFor("postgresql", 60*time.Second, func() error { _, err := p.Query("postgres", "SELECT 1"); return err }); err != nil {
		return fail(err)
	}
	return p, nil
}

// Env is the libpq environment for connecting to database db as the superuser.
func (p *PostgreSQL) Env(db string) []string {
	return []string{"PGHOST=" + p.Host, "PGPORT=" + strconv.Itoa(p.Port), "PGUSER=" + p.User, "PGPASSWORD=" + p.Password, "PGDATABASE=" + db}
}

// Query runs SQL in database db with psql and returns its unaligned output.
func (p *PostgreSQL) Query(db, sql string) (string, error) {
	out, err := run([]string{"psql", "--no-psqlrc", "--no-password", "--set=ON_ERROR_STOP=1", "--tuples-only", "--no-align", "--quiet", "--command=" + sql}, p.Env(db)...)
	return strings.TrimSpace(out), err
}

// PID is the server's process. The server's processes (postmaster,
// backends) form a process group of their own with this ID, whose CPU a
// benchmark counts.
func (p *PostgreSQL) PID() int { return p.proc.cmd.Process.Pid }

// Stop stops the server and removes its files.
func (p *PostgreSQL) Stop() {
	p.proc.stop()
	os.RemoveAll(p.dir)
	os.Remove(filepath.Join(os.TempDir(), filepath.Base(p.dir)+".log"))
}

// MariaDB is a running MariaDB server with a password user "backflow".
type MariaDB struct {
	Host     string
	Port     int
	User     string
	Password string
	socket   string
	dir      string
	proc     *process
}

// StartMariaDB initialises a data directory in a temporary directory and
// starts mariadbd on a free loopback port.

// mariadbNoDefaults keeps the machine's option files out of the test
// server and its clients.
const mariadbNoDefaults = "--no-defaults"

func StartMariaDB() (*MariaDB, error) {
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			return nil, fmt.Errorf("no MariaDB server: run `make deps` (apt-get install mariadb-server)")
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-mariadb-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{Host: loopback, Port: port, User: "backflow", Password: "maria-test-'secret\"", socket: filepath.Join(dir, "sock"), dir: dir}
	fail := func(err error) (*MariaDB, error) { m.Stop(); return nil, err }
	data := filepath.Join(dir, "data")
	who, _ := user.Current()
	if _, err := run([]string{"mariadb-install-db", mariadbNoDefaults, "--datadir=" + data, "--user=" + who.Username,
		"--auth-root-authentication-method=socket", "--skip-test-db"}); err != nil {
		return fail(err)
	}
	m.proc, err = startProcess(filepath.Join(dir, "mariadb.log"), "/usr/sbin/mariadbd", []string{mariadbNoDefaults, "--datadir=" + data,
		"--user=" + who.Username, "--bind-address=127.0.0.1", "--port=" + strconv.Itoa(port), "--socket=" + m.socket,
		"--pid-file=" + filepath.Join(dir, "pid"), "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci"}, nil)
	if err != nil {
		return fail(err)
	}
	if err := waitFor("mariadb", 60*time.Second, func() error { _, err := m.rootQuery("SELECT 1"); return err }); err != nil {
		return fail(err)
	}
	pw := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(m.Password)
	if _, err := m.rootQuery(fmt.Sprintf("CREATE USER 'backflow'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'backflow'@'%%' WITH GRANT OPTION;", pw)); err != nil {
		return fail(err)
	}
	return m, nil
}

func (m *MariaDB) rootQuery(sql string) (string, error) {
	out, err := run([]string{"mariadb", mariadbNoDefaults, "--socket=" + m.socket, "--user=root", "--default-character-set=utf8mb4", "--batch", "--skip-column-names", "--execute=" + sql})
	return strings.TrimSpace(out), err
}

// Query runs SQL in database db (empty for none) as root over the socket.
func (m *MariaDB) Query(db, sql string) (string, error) {
	if db != "" {
		sql = "USE `" + db + "`; " + sql
	}
	return m.rootQuery(sql)
}

// PID is the server's process, the leader of its process group.
func (m *MariaDB) PID() int { return m.proc.cmd.Process.Pid }

// Stop stops the server and removes its files.
func (m *MariaDB) Stop() {
	m.proc.stop()
	os.RemoveAll(m.dir)
}
