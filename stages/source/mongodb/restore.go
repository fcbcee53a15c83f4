package mongodb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/backflow-dev/backflow/stages/source/mongodb/archive"
)

// RestoreOptions say where an archive goes.
type RestoreOptions struct {
	// Client connects to the server.
	Client *options.ClientOptions
	// Database, when set, receives every collection: a one-database archive
	// keeps the collections' names, a several-database archive names them
	// "<database>.<collection>". Rename rules are applied first.
	Database string
	// Drop each collection (and view) before restoring it.
	Drop bool
	// Rename namespaces on the way in; the first matching rule wins.
	Rename []Rename
}

// RestoredCollection says how many documents went into a collection.
type RestoredCollection struct {
	Database, Collection string
	Documents            int64
}

func (c RestoredCollection) String() string { return c.Database + "." + c.Collection }

// Insert batches: small enough that a restore's memory stays flat whatever
// the archive's size, large enough that round trips do not dominate.
const (
	batchDocuments = 1000
	batchBytes     = 8 << 20
)

// target is where one namespace of the archive is restored.
type target struct {
	RestoredCollection
	source   string // the namespace in the archive
	sourceDB string
	meta     archive.Metadata
	batch    []any
	bytes    int
	indexed  bool
}

// Restore reads a mongodump archive from r and restores its collections,
// with their options, documents and indexes, then its views. A failure
// names the collection and the index of the document (counted from 0 in
// the archive's order) it happened at.
func Restore(ctx context.Context, opts RestoreOptions, r io.Reader) ([]RestoredCollection, error) {
	return restore(ctx, opts, r, nil)
}

// restore is Restore; finish, when set, runs on the same connection once
// the restore ended, whichever way, and has the last word.
func restore(ctx context.Context, opts RestoreOptions, r io.Reader, finish func(*mongo.Client, []RestoredCollection, error) error) ([]RestoredCollection, error) {
	rd, err := archive.NewReader(r)
	if err != nil {
		return nil, err
	}
	targets, order, err := planRestore(rd.Prelude(), opts)
	if err != nil {
		return nil, err
	}
	client, err := connect(ctx, opts.Client)
	if err != nil {
		return nil, err
	}
	defer disconnect(client)
	restored, err := restoreArchive(ctx, client, rd, targets, order, opts.Drop)
	if finish != nil {
		err = finish(client, restored, err)
	}
	return restored, err
}

// restoreArchive restores what the reader has left of an archive: the
// collections, their documents and indexes, then the views.
func restoreArchive(ctx context.Context, client *mongo.Client, rd *archive.Reader, targets map[string]*target, order []string, drop bool) ([]RestoredCollection, error) {
	for _, key := range order {
		t := targets[key]
		if t.meta.Type == typeView {
			continue
		}
		if err := prepareCollection(ctx, client, t, drop); err != nil {
			return nil, err
		}
	}
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		key := ev.Database + "." + ev.Collection
		t := targets[key]
		if t == nil {
			if ev.Database == archive.OplogDatabase && ev.Collection == archive.OplogCollection {
				return nil, errArchiveHasOplog
			}
			return nil, fmt.Errorf("the archive has documents of %s, which its prelude does not list", key)
		}
		if ev.End {
			if err := finishCollection(ctx, client, t); err != nil {
				return nil, err
			}
			continue
		}
		// The reader reuses its buffer: keep a copy until the batch is sent.
		t.batch = append(t.batch, bson.Raw(slices.Clone(ev.Document)))
		t.bytes += len(ev.Document)
		if len(t.batch) >= batchDocuments || t.bytes >= batchBytes {
			if err := flush(ctx, client, t); err != nil {
				return nil, err
			}
		}
	}
	restored := make([]RestoredCollection, 0, len(order))
	for _, key := range order {
		t := targets[key]
		if t.meta.Type == typeView {
			continue
		}
		// An empty collection may have no end marker in the archive.
		if err := finishCollection(ctx, client, t); err != nil {
			return nil, err
		}
		restored = append(restored, t.RestoredCollection)
	}
	for _, key := range order {
		if t := targets[key]; t.meta.Type == typeView {
			if err := createView(ctx, client, t, targets, drop); err != nil {
				return nil, err
			}
		}
	}
	return restored, nil
}

var errArchiveHasOplog = errors.New("the archive holds an oplog (mongodump --oplog), which backflow cannot replay; restore it with mongorestore --oplogReplay")

// planRestore decides where each namespace of the prelude goes: renamed
// first, then, with a Database, moved into it.
func planRestore(prelude []archive.CollectionMetadata, opts RestoreOptions) (map[string]*target, []string, error) {
	type planned struct {
		c        archive.CollectionMetadata
		db, coll string
	}
	var plan []planned
	databases := map[string]bool{}
	for _, c := range prelude {
		if c.Database == archive.OplogDatabase && c.Collection == archive.OplogCollection {
			return nil, nil, errArchiveHasOplog
		}
		db, coll, err := renameNamespace(opts.Rename, c.Database, c.Collection)
		if err != nil {
			return nil, nil, err
		}
		plan = append(plan, planned{c, db, coll})
		databases[db] = true
	}
	targets := map[string]*target{}
	taken := map[string]string{}
	var order []string
	for _, p := range plan {
		source := p.c.Database + "." + p.c.Collection
		meta, err := archive.DecodeMetadata(p.c.Metadata)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the metadata of %s: %w", source, err)
		}
		if meta.Type == "" {
			meta.Type = cmp.Or(p.c.Type, typeCollection)
		}
		db, coll := p.db, p.coll
		if opts.Database != "" {
			if len(databases) > 1 {
				coll = db + "." + coll
			}
			db = opts.Database
		}
		dest := db + "." + coll
		if other, ok := taken[dest]; ok {
			return nil, nil, fmt.Errorf("%s and %s would both be restored into %s", other, source, dest)
		}
		taken[dest] = source
		targets[source] = &target{RestoredCollection: RestoredCollection{Database: db, Collection: coll}, sourceDB: p.c.Database, source: source, meta: meta}
		order = append(order, source)
	}
	return targets, order, nil
}

// prepareCollection drops the collection when asked to, and creates it with
// the options it had, unless it exists.
func prepareCollection(ctx context.Context, client *mongo.Client, t *target, drop bool) error {
	db := client.Database(t.Database)
	if drop {
		if err := db.Collection(t.Collection).Drop(ctx); err != nil {
			return fmt.Errorf("dropping %s: %w", t, err)
		}
	}
	exists, err := collectionExists(ctx, db, t.Collection)
	if err != nil {
		return fmt.Errorf("restoring %s: %w", t, err)
	}
	if exists {
		return nil
	}
	if err := db.RunCommand(ctx, createCommand(t.Collection, t.meta.Options)).Err(); err != nil {
		return fmt.Errorf("creating %s with the options it had (%s): %w", t, optionNames(t.meta.Options), err)
	}
	return nil
}

// createCommand creates a collection or view with the options
// listCollections reported for it (capped, size, max, validator,
// validationLevel, collation, viewOn, pipeline, ...), passed as they were.
func createCommand(name string, options bson.D) bson.D {
	return append(bson.D{{Key: "create", Value: name}}, options...)
}

func collectionExists(ctx context.Context, db *mongo.Database, name string) (bool, error) {
	names, err := db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}

func optionNames(opts bson.D) string {
	if len(opts) == 0 {
		return "none"
	}
	names := make([]string, len(opts))
	for i, e := range opts {
		names[i] = e.Key
	}
	return strings.Join(names, ", ")
}

// flush inserts a collection's batch, in order, so that the first failing
// document is the one reported.
func flush(ctx context.Context, client *mongo.Client, t *target) error {
	if len(t.batch) == 0 {
		return nil
	}
	_, err := client.Database(t.Database).Collection(t.Collection).InsertMany(ctx, t.batch, options.InsertMany().SetOrdered(true))
	if err != nil {
		index := t.Documents
		var bulk mongo.BulkWriteException
		if errors.As(err, &bulk) && len(bulk.WriteErrors) > 0 {
			index += int64(bulk.WriteErrors[0].Index)
			return fmt.Errorf("restoring %s, document %d of %s: %s", t, index, t.source, bulk.WriteErrors[0].Message)
		}
		return fmt.Errorf("restoring %s, documents %d to %d of %s: %w", t, index, index+int64(len(t.batch))-1, t.source, err)
	}
	t.Documents += int64(len(t.batch))
	t.batch, t.bytes = t.batch[:0], 0
	return nil
}

// finishCollection sends what is left of the batch and builds the
// collection's indexes, once, after its documents: building them at the end
// is faster than keeping them up to date while inserting.
func finishCollection(ctx context.Context, client *mongo.Client, t *target) error {
	if t.indexed {
		return nil
	}
	if err := flush(ctx, client, t); err != nil {
		return err
	}
	t.indexed = true
	var indexes bson.A
	for _, spec := range t.meta.Indexes {
		if name, _ := lookup(spec, "name").(string); name == "_id_" {
			continue
		}
		// ns is a leftover of old servers and v is chosen by the server
		// that builds the index; some servers refuse either.
		indexes = append(indexes, without(spec, "ns", "v"))
	}
	if len(indexes) == 0 {
		return nil
	}
	cmd := bson.D{{Key: "createIndexes", Value: t.Collection}, {Key: "indexes", Value: indexes}}
	if err := client.Database(t.Database).RunCommand(ctx, cmd).Err(); err != nil {
		return fmt.Errorf("building the indexes of %s: %w", t, err)
	}
	return nil
}

// createView creates a view on the restored name of its collection.
func createView(ctx context.Context, client *mongo.Client, t *target, targets map[string]*target, drop bool) error {
	db := client.Database(t.Database)
	if drop {
		if err := db.Collection(t.Collection).Drop(ctx); err != nil {
			return fmt.Errorf("dropping %s: %w", t, err)
		}
	}
	opts, err := viewOptions(t, targets)
	if err != nil {
		return err
	}
	if err := db.RunCommand(ctx, createCommand(t.Collection, opts)).Err(); err != nil {
		return fmt.Errorf("creating view %s: %w", t, err)
	}
	return nil
}

// viewOptions are a view's options with viewOn naming its collection as
// restored: a view follows its collection when namespaces are renamed.
func viewOptions(t *target, targets map[string]*target) (bson.D, error) {
	viewOn, _ := lookup(t.meta.Options, "viewOn").(string)
	on := targets[t.sourceDB+"."+viewOn]
	if on == nil {
		return t.meta.Options, nil
	}
	if on.Database != t.Database {
		return nil, fmt.Errorf("restoring view %s: it is on %s, which is restored into another database (%s)", t, viewOn, on.Database)
	}
	return with(t.meta.Options, "viewOn", on.Collection), nil
}

func lookup(d bson.D, key string) any {
	for _, e := range d {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func without(d bson.D, keys ...string) bson.D {
	out := make(bson.D, 0, len(d))
	for _, e := range d {
		if !slices.Contains(keys, e.Key) {
			out = append(out, e)
		}
	}
	return out
}

func with(d bson.D, key string, value any) bson.D {
	out := slices.Clone(d)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = value
			return out
		}
	}
	return append(out, bson.E{Key: key, Value: value})
}
