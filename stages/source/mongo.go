package source

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
	"github.com/backflow-dev/backflow/stages/source/mongodb"
)

// mongoClientOptions connects the Go driver to a resolved connection. The
// password goes into the driver's credential, never into the URI, so that
// no error message can repeat it; the user is looked up in admin unless the
// connection's authSource says otherwise, as the connection-string spec
// says for a URI that names no database.
func mongoClientOptions(c Connection) (*options.ClientOptions, error) {
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

// mongoConnection resolves a MongoDB connection spec into driver options.
func mongoConnection(spec v1.DatabaseConnection, opts Options) (*options.ClientOptions, Connection, error) {
	conn, err := ResolveConnection(spec, opts.Namespace, MongoDBPort, opts.Getenv)
	if err != nil {
		return nil, conn, err
	}
	client, err := mongoClientOptions(conn)
	return client, conn, err
}

// mongoDumpOptions are what the engine needs to dump a MongoDB source.
func mongoDumpOptions(s *v1.MongoDBSource, allowEmpty bool, opts Options) (mongodb.DumpOptions, error) {
	if s.Oplog {
		// Before connecting: nothing moves when the dump cannot keep its
		// promise.
		return mongodb.DumpOptions{}, mongodb.ErrOplogUnavailable
	}
	client, conn, err := mongoConnection(s.Connection, opts)
	if err != nil {
		return mongodb.DumpOptions{}, err
	}
	dbs := s.Databases
	if len(dbs) == 0 && conn.Database != "" {
		dbs = []string{conn.Database}
	}
	parallel := mongodb.DefaultParallelCollections
	if s.ParallelCollections != nil {
		parallel = int(*s.ParallelCollections)
	}
	return mongodb.DumpOptions{
		Client: client, Databases: dbs, Include: s.IncludeCollections, Exclude: s.ExcludeCollections,
		Parallel: parallel, ToolVersion: opts.Version, AllowEmpty: allowEmpty,
	}, nil
}

// startMongoDump runs the engine's dump into a pipe: the producer's reader
// ends with io.EOF only when the dump succeeded.
func startMongoDump(ctx context.Context, s *v1.MongoDBSource, allowEmpty bool, opts Options) (*Producer, error) {
	dumpOpts, err := mongoDumpOptions(s, allowEmpty, opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(mongodb.Dump(ctx, dumpOpts, pw))
	}()
	return &Producer{Reader: pr, stop: func() {
		cancel()
		pr.CloseWithError(errors.New("dump stopped"))
	}}, nil
}

// mongoRestoreOptions are what the engine needs to restore into a MongoDB
// target.
func mongoRestoreOptions(t *v1.MongoDBTarget, opts Options) (mongodb.RestoreOptions, error) {
	client, conn, err := mongoConnection(t.Connection, opts)
	if err != nil {
		return mongodb.RestoreOptions{}, err
	}
	rules := make([]mongodb.Rename, len(t.Rename))
	for i, r := range t.Rename {
		rules[i] = mongodb.Rename{From: r.From, To: r.To}
	}
	return mongodb.RestoreOptions{Client: client, Database: conn.Database, Drop: t.Drop, Rename: rules}, nil
}

// startMongoRestore runs the engine's restore on a pipe.
func startMongoRestore(ctx context.Context, restoreOpts mongodb.RestoreOptions) *Consumer {
	return startMongoConsumer(ctx, func(ctx context.Context, r io.Reader) error {
		_, err := mongodb.Restore(ctx, restoreOpts, r)
		return err
	})
}

// startMongoConsumer runs an engine's consumer of the stream on a pipe,
// cancelled on Abort.
func startMongoConsumer(ctx context.Context, consume func(context.Context, io.Reader) error) *Consumer {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	return consumerOf(pr, pw, func() error {
		defer cancel()
		return consume(ctx, pr)
	}, cancel)
}

// mongoRestoreTest restores into the scratch database, checks it and drops
// it (mongodb.RestoreTest). The check's query is JSON {"collection": ...,
// "filter": {...}}.
func mongoRestoreTest(ctx context.Context, restoreOpts mongodb.RestoreOptions, query string) (*Consumer, error) {
	var check *mongodb.Check
	if query != "" {
		check = &mongodb.Check{}
		dec := json.NewDecoder(strings.NewReader(query))
		dec.DisallowUnknownFields()
		if err := dec.Decode(check); err != nil || check.Collection == "" {
			return nil, fmt.Errorf(`checkQuery for MongoDB must be {"collection": "<name>", "filter": {...}} (%v)`, err)
		}
	}
	return startMongoConsumer(ctx, func(ctx context.Context, r io.Reader) error {
		return mongodb.RestoreTest(ctx, restoreOpts, r, check)
	}), nil
}
