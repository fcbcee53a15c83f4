package servers

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/test/tools"
)

// FerretDB is a running FerretDB server: the MongoDB wire protocol on
// SQLite, the MongoDB-protocol server that can be had here (no MongoDB
// server is packaged). It has a user in admin with a password, and comes
// with the MongoDB database tools.
type FerretDB struct {
	Host     string
	Port     int
	User     string
	Password string
	// ToolsDir holds mongodump, mongorestore, mongoimport and mongoexport.
	ToolsDir string
	dir      string
	proc     *process
}

// StartFerretDB starts FerretDB on a free loopback port with its data in a
// temporary directory.
func StartFerretDB() (*FerretDB, error) {
	bin, err := tools.Cached("ferretdb")
	if err != nil {
		return nil, err
	}
	var toolsDir string
	for _, tool := range []string{"mongodump", "mongorestore", "mongoimport", "mongoexport"} {
		path, err := tools.Cached(tool)
		if err != nil {
			return nil, err
		}
		toolsDir = filepath.Dir(path)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-ferretdb-")
	if err != nil {
		return nil, err
	}
	f := &FerretDB{Host: "127.0.0.1", Port: port, User: "backflow", Password: `mongo-test-"secret`, ToolsDir: toolsDir, dir: dir}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	f.proc, err = startProcess(filepath.Join(dir, "ferretdb.log"), bin, []string{
		"--handler=sqlite", "--sqlite-url=file:" + filepath.Join(dir, "data") + "/", "--state-dir=" + dir,
		"--listen-addr=127.0.0.1:" + strconv.Itoa(port), "--debug-addr=127.0.0.1:0", "--telemetry=disable", "--log-level=WARN",
		// Authentication with a user made at start; without it FerretDB
		// accepts any credentials, and a test of them would prove nothing.
		"--test-enable-new-auth", "--setup-database=admin", "--setup-username=" + f.User, "--setup-password=" + f.Password,
	}, nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := waitFor("ferretdb", 60*time.Second, func() error { _, err := f.Export("admin", "none"); return err }); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// ConnectFerretDB is a FerretDB that runs elsewhere (the local cluster's),
// for Import and Export.
func ConnectFerretDB(host string, port int, user, password string) (*FerretDB, error) {
	mongodump, err := tools.Cached("mongodump")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-mongo-client-")
	if err != nil {
		return nil, err
	}
	return &FerretDB{Host: host, Port: port, User: user, Password: password, ToolsDir: filepath.Dir(mongodump), dir: dir}, nil
}

// config writes a database tools config file with the credentials.
func (f *FerretDB) config() (string, error) {
	path := filepath.Join(f.dir, "tools.yaml")
	content := fmt.Sprintf("uri: %q\npassword: %q\n", fmt.Sprintf("mongodb://%s@%s:%d/?authSource=admin", f.User, f.Host, f.Port), f.Password)
	return path, os.WriteFile(path, []byte(content), 0o600)
}

func (f *FerretDB) tool(name string, args ...string) []string {
	return append([]string{filepath.Join(f.ToolsDir, name)}, args...)
}

// Import replaces a collection's documents with these, given as MongoDB
// Extended JSON, one per line.
func (f *FerretDB) Import(db, collection, documents string) error {
	cfg, err := f.config()
	if err != nil {
		return err
	}
	file := filepath.Join(f.dir, "import.json")
	if err := os.WriteFile(file, []byte(documents), 0o600); err != nil {
		return err
	}
	_, err = run(f.tool("mongoimport", "--config="+cfg, "--quiet", "--drop", "--db="+db, "--collection="+collection, "--file="+file))
	return err
}

// Export returns a collection's documents as canonical Extended JSON, one
// per line, ordered by _id.
func (f *FerretDB) Export(db, collection string) (string, error) {
	cfg, err := f.config()
	if err != nil {
		return "", err
	}
	out, err := run(f.tool("mongoexport", "--config="+cfg, "--quiet", "--jsonFormat=canonical", "--db="+db, "--collection="+collection, "--sort={\"_id\":1}"))
	return strings.TrimSpace(out), err
}

// Stop stops the server, if this process started it, and removes its data.
func (f *FerretDB) Stop() {
	if f.proc != nil {
		f.proc.stop()
	}
	os.RemoveAll(f.dir)
}
