package mongodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// Name is the engine's name: the source's and target's field.
const Name = "mongodb"

// DefaultPort is MongoDB's port.
const DefaultPort = 27017

// FormatArchive is mongodump's archive format.
var FormatArchive = source.Format{Name: "mongodb-archive", Extension: ".archive"}

func init() { source.Register(Engine{}) }

// Engine is the MongoDB engine as the stages and the controller see it. Its
// steps run in the backflow image: it needs no client tools.
type Engine struct{}

func (Engine) Name() string  { return Name }
func (Engine) Title() string { return "MongoDB" }

func (Engine) Formats() []source.Format { return []source.Format{FormatArchive} }

func (Engine) ClientImages() map[string]string { return nil }

// CheckSource refuses oplog capture when the Backup is compiled, before a
// Workflow starts.
func (Engine) CheckSource(src v1.BackupSource) error {
	if src.MongoDB.Oplog {
		return ErrOplogUnavailable
	}
	return nil
}

func (Engine) DumpPod(src v1.BackupSource) source.Pod {
	return source.Pod{Connection: &src.MongoDB.Connection}
}

func (Engine) RestorePod(target v1.RestoreTarget) source.Pod {
	return source.Pod{Connection: &target.MongoDB.Connection}
}

func (Engine) DescribeSource(src v1.BackupSource) string {
	return "MongoDB " + source.DescribeConnection(src.MongoDB.Connection)
}

func (Engine) DescribeTarget(target v1.RestoreTarget) string {
	return "into MongoDB " + source.DescribeConnection(target.MongoDB.Connection)
}

func (Engine) Format(v1.BackupSource) source.Format { return FormatArchive }

func (Engine) DatabaseName(src v1.BackupSource, opts source.Options) string {
	return source.DatabaseName(src.MongoDB.Databases, src.MongoDB.Connection, opts)
}

// EstimateSize is the server's figure for the documents the dump reads
// (see the package's EstimateSize).
func (Engine) EstimateSize(ctx context.Context, src v1.BackupSource, opts source.Options) (int64, error) {
	dumpOpts, err := dumpOptions(src.MongoDB, src.AllowEmpty, opts)
	if err != nil {
		return 0, err
	}
	return EstimateSize(ctx, dumpOpts)
}

// StartDump runs Dump into a pipe: the producer's reader ends with io.EOF
// only when the dump succeeded.
func (Engine) StartDump(ctx context.Context, src v1.BackupSource, opts source.Options, _ io.Writer) (*source.Producer, error) {
	dumpOpts, err := dumpOptions(src.MongoDB, src.AllowEmpty, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(Dump(ctx, dumpOpts, pw))
	}()
	return source.NewProducer(pr, func() {
		cancel()
		pr.CloseWithError(errors.New("dump stopped"))
	}), nil
}

func (Engine) Accepts(format string) bool { return format == FormatArchive.Name }

func (Engine) StartRestore(ctx context.Context, target v1.RestoreTarget, _ string, opts source.Options, _, _ io.Writer) (*source.Consumer, error) {
	restoreOpts, err := restoreOptions(target.MongoDB, opts)
	if err != nil {
		return nil, err
	}
	return source.Consume(ctx, func(ctx context.Context, r io.Reader) error {
		_, err := Restore(ctx, restoreOpts, r)
		return err
	}), nil
}

func (Engine) ScratchEngines() []string { return []string{Name} }

func (Engine) ScratchEngine(v1.BackupSource) string { return Name }

func (Engine) ScratchTarget(_ string, conn v1.DatabaseConnection) v1.RestoreTarget {
	return v1.RestoreTarget{MongoDB: &v1.MongoDBTarget{Connection: conn, Drop: true}}
}

// StartRestoreTest restores into the scratch database, checks it and drops
// it, on one connection (RestoreTest). The check's query is JSON
// {"collection": ..., "filter": {...}}.
func (Engine) StartRestoreTest(ctx context.Context, target v1.RestoreTarget, _, query string, opts source.Options, _ io.Writer) (*source.Consumer, error) {
	restoreOpts, err := restoreOptions(target.MongoDB, opts)
	if err != nil {
		return nil, err
	}
	var check *Check
	if query != "" {
		check = &Check{}
		dec := json.NewDecoder(strings.NewReader(query))
		dec.DisallowUnknownFields()
		if err := dec.Decode(check); err != nil || check.Collection == "" {
			return nil, fmt.Errorf(`checkQuery for MongoDB must be {"collection": "<name>", "filter": {...}} (%v)`, err)
		}
	}
	return source.Consume(ctx, func(ctx context.Context, r io.Reader) error {
		return RestoreTest(ctx, restoreOpts, r, check)
	}), nil
}

// clientOptions connects the Go driver to a resolved connection. The
// password goes into the driver's credential, never into the URI, so that
// no error message can repeat it; the user is looked up in admin unless the
// connection's authSource says otherwise, as the connection-string spec
// says for a URI that names no database.
func clientOptions(c source.Connection) (*options.ClientOptions, error) {
	host := c.Host
	if !strings.Contains(host, ",") && !strings.Contains(host, ":") {
		host += ":" + strconv.Itoa(c.Port)
	}
	params := url.Values{}
	for k, v := range c.Params {
		params[k] = v
	}
	credential := options.Credential{
		Username: c.Username, Password: c.Password, PasswordSet: c.Password != "",
		AuthSource: params.Get("authSource"), AuthMechanism: params.Get("authMechanism"),
	}
	params.Del("authSource")
	params.Del("authMechanism")
	if credential.AuthSource == "" {
		credential.AuthSource = "admin"
	}
	uri := "mongodb://" + host + "/"
	if q := params.Encode(); q != "" {
		uri += "?" + q
	}
	opts := options.Client().ApplyURI(uri).SetAppName("backflow").
		SetConnectTimeout(30 * time.Second).SetServerSelectionTimeout(30 * time.Second)
	if c.Username != "" {
		opts.SetAuth(credential)
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("the MongoDB connection settings are not valid: %w", err)
	}
	return opts, nil
}

// clientOf resolves a MongoDB connection spec into driver options.
func clientOf(spec v1.DatabaseConnection, opts source.Options) (*options.ClientOptions, source.Connection, error) {
	conn, err := source.ResolveConnection(spec, opts.Namespace, DefaultPort, opts.Getenv)
	if err != nil {
		return nil, conn, err
	}
	client, err := clientOptions(conn)
	return client, conn, err
}

// dumpOptions are what Dump needs to dump a MongoDB source.
func dumpOptions(s *v1.MongoDBSource, allowEmpty bool, opts source.Options) (DumpOptions, error) {
	if s.Oplog {
		// Before connecting: nothing moves when the dump cannot keep its
		// promise.
		return DumpOptions{}, ErrOplogUnavailable
	}
	client, conn, err := clientOf(s.Connection, opts)
	if err != nil {
		return DumpOptions{}, err
	}
	dbs := s.Databases
	if len(dbs) == 0 && conn.Database != "" {
		dbs = []string{conn.Database}
	}
	parallel := DefaultParallelCollections
	if s.ParallelCollections != nil {
		parallel = int(*s.ParallelCollections)
	}
	return DumpOptions{
		Client: client, Databases: dbs, Include: s.IncludeCollections, Exclude: s.ExcludeCollections,
		Parallel: parallel, ToolVersion: opts.Version, AllowEmpty: allowEmpty,
	}, nil
}

// restoreOptions are what Restore needs to restore into a target.
func restoreOptions(t *v1.MongoDBTarget, opts source.Options) (RestoreOptions, error) {
	client, conn, err := clientOf(t.Connection, opts)
	if err != nil {
		return RestoreOptions{}, err
	}
	rules := make([]Rename, len(t.Rename))
	for i, r := range t.Rename {
		rules[i] = Rename{From: r.From, To: r.To}
	}
	return RestoreOptions{Client: client, Database: conn.Database, Drop: t.Drop, Rename: rules}, nil
}
