package servers

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/backflow-dev/backflow/test/tools"
)

// FerretDB is a running FerretDB server: the MongoDB wire protocol on
// SQLite, the MongoDB-protocol server that can be had here (no MongoDB
// server is packaged). It has a user in admin with a password. Tests reach
// it with the official Go driver (Client).
type FerretDB struct {
	Host     string
	Port     int
	User     string
	Password string
	dir      string
	proc     *process
	client   *mongo.Client
}

// StartFerretDB starts FerretDB on a free loopback port with its data in a
// temporary directory.
func StartFerretDB() (*FerretDB, error) {
	bin, err := tools.Cached("ferretdb")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-ferretdb-")
	if err != nil {
		return nil, err
	}
	f := &FerretDB{Host: loopback, Port: port, User: "backflow", Password: `mongo-test-"secret`, dir: dir}
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
	if err := waitFor("ferretdb", 60*time.Second, f.connect); err != nil {
		f.Stop()
		return nil, err
	}
	return f, nil
}

// ConnectFerretDB is a FerretDB that runs elsewhere (the local cluster's),
// for Import and Export.
func ConnectFerretDB(host string, port int, user, password string) (*FerretDB, error) {
	f := &FerretDB{Host: host, Port: port, User: user, Password: password}
	return f, f.connect()
}

func (f *FerretDB) connect() error {
	opts := options.Client().ApplyURI(fmt.Sprintf("mongodb://%s:%d/", f.Host, f.Port)).
		SetAuth(options.Credential{Username: f.User, Password: f.Password, AuthSource: "admin"}).
		SetServerSelectionTimeout(5 * time.Second)
	client, err := mongo.Connect(opts)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(ctx)
		return err
	}
	f.client = client
	return nil
}

// Client is a connected client with the server's admin user.
func (f *FerretDB) Client() *mongo.Client { return f.client }

// Import replaces a collection's documents with these, given as MongoDB
// Extended JSON, one per line.
func (f *FerretDB) Import(db, collection, documents string) error {
	ctx := context.Background()
	coll := f.client.Database(db).Collection(collection)
	if err := coll.Drop(ctx); err != nil {
		return err
	}
	var batch []any
	scanner := bufio.NewScanner(strings.NewReader(documents))
	scanner.Buffer(nil, 32<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" {
			continue
		}
		var doc bson.D
		if err := bson.UnmarshalExtJSON([]byte(line), false, &doc); err != nil {
			return fmt.Errorf("import into %s.%s: %w", db, collection, err)
		}
		batch = append(batch, doc)
		if len(batch) == 500 {
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if _, err := coll.InsertMany(ctx, batch); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// Export returns a collection's documents as canonical Extended JSON, one
// per line, ordered by _id.
func (f *FerretDB) Export(db, collection string) (string, error) {
	ctx := context.Background()
	cur, err := f.client.Database(db).Collection(collection).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return "", err
	}
	defer cur.Close(ctx)
	var lines []string
	for cur.Next(ctx) {
		line, err := bson.MarshalExtJSON(cur.Current, true, false)
		if err != nil {
			return "", err
		}
		lines = append(lines, string(line))
	}
	return strings.Join(lines, "\n"), cur.Err()
}

// Stop stops the server, if this process started it, and removes its data.
func (f *FerretDB) Stop() {
	if f.client != nil {
		_ = f.client.Disconnect(context.Background())
	}
	if f.proc != nil {
		f.proc.stop()
	}
	if f.dir != "" {
		os.RemoveAll(f.dir)
	}
}
