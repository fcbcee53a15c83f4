// Package mongodb is backflow's MongoDB engine: it dumps databases into
// mongodump's archive format and restores such archives, talking to the
// server with the official Go driver, so that the dump and restore steps need
// no MongoDB client tools. What it writes restores with `mongorestore
// --archive`, and it restores what `mongodump --archive` wrote.
package mongodb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/backflow-dev/backflow/stages/source/mongodb/archive"
)

// DefaultParallelCollections is how many collections a dump reads at once
// unless told otherwise, as mongodump's --numParallelCollections.
const DefaultParallelCollections = 4

// ErrOplogUnavailable refuses a dump with oplog capture: no server in
// backflow's tests keeps a replica set's oplog, and untested capture code
// could store a dump that is not consistent while claiming it is.
var ErrOplogUnavailable = errors.New("mongodb.oplog: oplog capture is not available in this version of backflow; " +
	"remove oplog to take a dump without a point-in-time guarantee")

// systemDatabases are never dumped unless named: they hold the server's
// own state (users, sessions, the oplog), not an application's data.
var systemDatabases = []string{"admin", "config", "local"}

// DumpOptions say what to dump.
type DumpOptions struct {
	// Client connects to the server; its credentials never appear in errors.
	Client *options.ClientOptions
	// Databases to dump; empty for every database but the system ones.
	Databases []string
	// Include and Exclude select collections by name or namespace, with '*'
	// wildcards; an exclusion wins.
	Include, Exclude []string
	// Parallel is how many collections are read at once.
	Parallel int
	// Oplog asks for oplog capture, which is refused (ErrOplogUnavailable).
	Oplog bool
	// ToolVersion is recorded in the archive's header.
	ToolVersion string
	// AllowEmpty accepts a selection without any collection. Otherwise it
	// fails the dump: a misspelt database name would store an archive of
	// nothing that looks like a backup.
	AllowEmpty bool
}

// collectionInfo is one entry of listCollections.
type collectionInfo struct {
	Name    string   `bson:"name"`
	Type    string   `bson:"type"`
	Options bson.Raw `bson:"options"`
	Info    struct {
		UUID bson.Binary `bson:"uuid"`
	} `bson:"info"`
}

// namespace is a collection or view to dump.
type namespace struct {
	db   string
	info collectionInfo
}

func (n namespace) String() string { return n.db + "." + n.info.Name }

// Dump writes the selected databases to w in mongodump's archive format,
// as mongodump does: a prelude with every collection's and view's options
// and indexes, then their documents, several collections interleaved.
// Collections are read Parallel at a time; each holds at most one cursor
// batch and one archive segment in memory.
func Dump(ctx context.Context, opts DumpOptions, w io.Writer) error {
	if opts.Oplog {
		return ErrOplogUnavailable
	}
	if opts.Parallel < 1 {
		opts.Parallel = DefaultParallelCollections
	}
	client, err := connect(ctx, opts.Client)
	if err != nil {
		return err
	}
	defer disconnect(client)

	serverVersion, err := serverVersion(ctx, client)
	if err != nil {
		return err
	}
	namespaces, err := listNamespaces(ctx, client, opts)
	if err != nil {
		return err
	}
	if len(namespaces) == 0 && !opts.AllowEmpty {
		what := "the server has no database but admin, config and local"
		if len(opts.Databases) > 0 {
			what = fmt.Sprintf("no collection of %s was selected (does the database exist? check includeCollections and excludeCollections)", strings.Join(opts.Databases, ", "))
		}
		return fmt.Errorf("nothing to dump: %s; set source.allowEmpty if an empty backup is expected", what)
	}
	prelude := make([]archive.CollectionMetadata, 0, len(namespaces))
	for _, ns := range namespaces {
		meta, err := collectionMetadata(ctx, client, ns)
		if err != nil {
			return err
		}
		prelude = append(prelude, meta)
	}
	aw, err := archive.NewWriter(w, archive.Header{
		ConcurrentCollections: int32(opts.Parallel), Version: archive.FormatVersion,
		ServerVersion: serverVersion, ToolVersion: "backflow " + opts.ToolVersion,
	}, prelude)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan namespace)
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for range min(opts.Parallel, len(namespaces)) {
		wg.Go(func() {
			for ns := range work {
				if err := dumpCollection(ctx, client, aw, ns); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel(err)
					}
					errMu.Unlock()
				}
			}
		})
	}
feed:
	for _, ns := range namespaces {
		select {
		case work <- ns:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return aw.Close()
}

const (
	typeCollection = "collection"
	typeView       = "view"
)

// listNamespaces lists the collections and views to dump, sorted, so that
// archives of the same data are alike.
func listNamespaces(ctx context.Context, client *mongo.Client, opts DumpOptions) ([]namespace, error) {
	dbs := opts.Databases
	if len(dbs) == 0 {
		names, err := client.ListDatabaseNames(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listing databases: %w", err)
		}
		for _, name := range names {
			if !slices.Contains(systemDatabases, name) {
				dbs = append(dbs, name)
			}
		}
	}
	slices.Sort(dbs)
	var out []namespace
	for _, db := range dbs {
		cur, err := client.Database(db).ListCollections(ctx, bson.D{})
		if err != nil {
			return nil, fmt.Errorf("listing the collections of %s: %w", db, err)
		}
		var infos []collectionInfo
		if err := cur.All(ctx, &infos); err != nil {
			return nil, fmt.Errorf("listing the collections of %s: %w", db, err)
		}
		for _, info := range infos {
			if info.Type == "" {
				info.Type = typeCollection
			}
			if strings.HasPrefix(info.Name, "system.") {
				continue
			}
			ns := namespace{db: db, info: info}
			if !selected(ns, opts.Include, opts.Exclude) {
				continue
			}
			if info.Type != typeCollection && info.Type != typeView {
				// A time-series collection keeps its documents in a bucket
				// collection of its own; dumping the view of it would restore
				// as a plain collection, which is not what was backed up.
				return nil, fmt.Errorf("%s is a %s collection, which backflow cannot dump yet; leave it out with excludeCollections", ns, info.Type)
			}
			out = append(out, ns)
		}
	}
	slices.SortFunc(out, func(a, b namespace) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// selected says whether the include and exclude patterns let a namespace
// through. A pattern matches the collection's name, or, when it has a dot,
// its database.collection namespace.
func selected(ns namespace, include, exclude []string) bool {
	matches := func(patterns []string) bool {
		for _, p := range patterns {
			if _, ok := matchWildcard(p, ns.info.Name); ok {
				return true
			}
			if _, ok := matchWildcard(p, ns.String()); ok && strings.Contains(p, ".") {
				return true
			}
		}
		return false
	}
	if matches(exclude) {
		return false
	}
	return len(include) == 0 || matches(include)
}

// collectionMetadata is a namespace's entry in the archive's prelude: its
// options and indexes as mongodump's metadata.json has them.
func collectionMetadata(ctx context.Context, client *mongo.Client, ns namespace) (archive.CollectionMetadata, error) {
	meta := archive.Metadata{CollectionName: ns.info.Name, Type: ns.info.Type, Indexes: []bson.D{}}
	if len(ns.info.Options) > 0 {
		if err := bson.Unmarshal(ns.info.Options, &meta.Options); err != nil {
			return archive.CollectionMetadata{}, fmt.Errorf("reading the options of %s: %w", ns, err)
		}
	}
	if meta.Options == nil {
		meta.Options = bson.D{}
	}
	if len(ns.info.Info.UUID.Data) == 16 {
		meta.UUID = fmt.Sprintf("%x", ns.info.Info.UUID.Data)
	}
	if ns.info.Type != typeView {
		cur, err := client.Database(ns.db).Collection(ns.info.Name).Indexes().List(ctx)
		if err != nil {
			return archive.CollectionMetadata{}, fmt.Errorf("listing the indexes of %s: %w", ns, err)
		}
		if err := cur.All(ctx, &meta.Indexes); err != nil {
			return archive.CollectionMetadata{}, fmt.Errorf("listing the indexes of %s: %w", ns, err)
		}
	}
	text, err := archive.EncodeMetadata(meta)
	if err != nil {
		return archive.CollectionMetadata{}, fmt.Errorf("encoding the metadata of %s: %w", ns, err)
	}
	return archive.CollectionMetadata{Database: ns.db, Collection: ns.info.Name, Metadata: text, Type: ns.info.Type}, nil
}

// dumpCollection streams one collection's documents into the archive as
// they come from the cursor, without decoding them.
func dumpCollection(ctx context.Context, client *mongo.Client, aw *archive.Writer, ns namespace) error {
	nw, err := aw.Namespace(ns.db, ns.info.Name)
	if err != nil {
		return err
	}
	if ns.info.Type == typeView {
		// A view's definition is in the prelude; like mongodump, the body
		// still opens and ends it, as mongorestore expects of every
		// namespace of the prelude.
		return nw.Close()
	}
	cur, err := client.Database(ns.db).Collection(ns.info.Name).Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("reading %s: %w", ns, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var n int64
	for cur.Next(ctx) {
		if err := nw.WriteDocument(cur.Current); err != nil {
			return fmt.Errorf("writing %s, document %d: %w", ns, n, err)
		}
		n++
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("reading %s after %d documents: %w", ns, n, err)
	}
	return nw.Close()
}

// connect opens a client and checks the server answers and takes the
// credentials, so that a wrong password fails before anything is written.
func connect(ctx context.Context, opts *options.ClientOptions) (*mongo.Client, error) {
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to MongoDB: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		disconnect(client)
		return nil, fmt.Errorf("connecting to MongoDB: %w", err)
	}
	return client, nil
}

func disconnect(c *mongo.Client) {
	_ = c.Disconnect(context.Background())
}

func serverVersion(ctx context.Context, client *mongo.Client) (string, error) {
	var info struct {
		Version string `bson:"version"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&info); err != nil {
		return "", fmt.Errorf("asking the server's version: %w", err)
	}
	return info.Version, nil
}
