package mongodb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/backflow-dev/backflow/stages/source/mongodb"
	"github.com/backflow-dev/backflow/stages/source/mongodb/archive"
	"github.com/backflow-dev/backflow/test/servers"
)

// testdata/mongodump.archive was written by the real mongodump (mongo-tools
// 100.18.0-21-g8fa3cfc82) from a FerretDB; testdata/mongodump.json is what
// that database held, read with the Go driver. testdata/README.md says how
// both were made.
const (
	fixtureArchive = "mongodump.archive"
	fixtureContent = "mongodump.json"
	// What mongodump wrote in the archive header.
	fixtureToolVersion   = "100.18.0-21-g8fa3cfc82"
	fixtureServerVersion = "7.0.12" // the MongoDB version FerretDB claims
	fixtureParallel      = 4        // mongodump's default --numParallelCollections
)

// fixture is testdata/mongodump.json: the source database's namespaces,
// sorted by name, as canonical Extended JSON.
type fixture struct {
	Database   string             `json:"database"`
	Namespaces []fixtureNamespace `json:"namespaces"`
}

type fixtureNamespace struct {
	Collection string `json:"collection"`
	Type       string `json:"type"`
	// Options are listCollections' options.
	Options json.RawMessage `json:"options"`
	// Indexes are {name, key, unique}, sorted by name.
	Indexes []json.RawMessage `json:"indexes"`
	// Documents are sorted by _id as the server sorts them.
	Documents []json.RawMessage `json:"documents"`

	options   bson.Raw
	indexes   []string // as indexString has them
	documents []bson.Raw
}

func loadFixture(t *testing.T) *fixture {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", fixtureContent))
	if err != nil {
		t.Fatal(err)
	}
	var fx fixture
	if err := json.Unmarshal(data, &fx); err != nil {
		t.Fatalf("%s: %v", fixtureContent, err)
	}
	if fx.Database == "" || len(fx.Namespaces) == 0 {
		t.Fatalf("%s: no database or no namespaces", fixtureContent)
	}
	fromJSON := func(what string, raw json.RawMessage) bson.Raw {
		var doc bson.Raw
		if err := bson.UnmarshalExtJSON(raw, true, &doc); err != nil {
			t.Fatalf("%s: %s: %v", fixtureContent, what, err)
		}
		return doc
	}
	for i := range fx.Namespaces {
		ns := &fx.Namespaces[i]
		ns.options = fromJSON(ns.Collection+" options", ns.Options)
		for _, raw := range ns.Indexes {
			var ix struct {
				Name   string   `bson:"name"`
				Key    bson.Raw `bson:"key"`
				Unique bool     `bson:"unique"`
			}
			if err := bson.Unmarshal(fromJSON(ns.Collection+" index", raw), &ix); err != nil {
				t.Fatal(err)
			}
			ns.indexes = append(ns.indexes, indexString(ix.Name, ix.Key, ix.Unique))
		}
		for _, raw := range ns.Documents {
			ns.documents = append(ns.documents, fromJSON(ns.Collection+" document", raw))
		}
	}
	return &fx
}

func (fx *fixture) namespace(collection string) *fixtureNamespace {
	for i := range fx.Namespaces {
		if fx.Namespaces[i].Collection == collection {
			return &fx.Namespaces[i]
		}
	}
	return nil
}

func indexString(name string, key bson.Raw, unique bool) string {
	return fmt.Sprintf("%s %s unique=%t", name, extJSON(key), unique)
}

func extJSON(doc bson.Raw) string {
	out, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(out)
}

func marshal(t *testing.T, v any) bson.Raw {
	t.Helper()
	if d, ok := v.(bson.D); v == nil || ok && d == nil {
		v = bson.D{} // an empty document, not BSON null
	}
	doc, err := bson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// metadataIndexes are a prelude entry's indexes as indexString has them,
// sorted.
func metadataIndexes(t *testing.T, specs []bson.D) []string {
	t.Helper()
	var out []string
	for _, spec := range specs {
		var ix struct {
			Name   string   `bson:"name"`
			Key    bson.Raw `bson:"key"`
			Unique bool     `bson:"unique"`
		}
		if err := bson.Unmarshal(marshal(t, spec), &ix); err != nil {
			t.Fatal(err)
		}
		out = append(out, indexString(ix.Name, ix.Key, ix.Unique))
	}
	slices.Sort(out)
	return out
}

// documentID is a document's _id as canonical Extended JSON.
func documentID(t *testing.T, doc bson.Raw) string {
	t.Helper()
	id, err := doc.LookupErr("_id")
	if err != nil {
		t.Fatalf("document without _id: %s", extJSON(doc))
	}
	return extJSON(marshal(t, bson.D{{Key: "_id", Value: id}}))
}

// sameDocuments compares documents byte for byte, in order.
func sameDocuments(t *testing.T, what string, got, want []bson.Raw) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d documents, want %d", what, len(got), len(want))
		return
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: document %d is\n  %s\nwant\n  %s", what, i, extJSON(got[i]), extJSON(want[i]))
			return
		}
	}
}

// The archive real mongodump wrote reads end to end: its header and
// prelude are mongodump's, every namespace's checksum holds, and it carries
// exactly the documents, indexes and options the source database had.
func TestMongodumpArchiveReads(t *testing.T) {
	fx := loadFixture(t)
	data, err := os.ReadFile(filepath.Join("testdata", fixtureArchive))
	if err != nil {
		t.Fatal(err)
	}
	rd, err := archive.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := archive.Header{ConcurrentCollections: fixtureParallel, Version: archive.FormatVersion, ServerVersion: fixtureServerVersion, ToolVersion: fixtureToolVersion}
	if h := rd.Header(); h != want {
		t.Errorf("header %+v, want %+v", h, want)
	}

	var preludeNames, fixtureNames []string
	for _, ns := range fx.Namespaces {
		fixtureNames = append(fixtureNames, fx.Database+"."+ns.Collection)
	}
	for _, c := range rd.Prelude() {
		name := c.Database + "." + c.Collection
		preludeNames = append(preludeNames, name)
		ns := fx.namespace(c.Collection)
		if c.Database != fx.Database || ns == nil {
			t.Errorf("prelude lists %s, which %s does not have", name, fixtureContent)
			continue
		}
		if c.Type != ns.Type {
			t.Errorf("prelude: %s has type %q, want %q", name, c.Type, ns.Type)
		}
		meta, err := archive.DecodeMetadata(c.Metadata)
		if err != nil {
			t.Errorf("prelude: %s: %v", name, err)
			continue
		}
		if meta.CollectionName != c.Collection || meta.Type != ns.Type {
			t.Errorf("prelude: %s: metadata names collection %q of type %q", name, meta.CollectionName, meta.Type)
		}
		if got := marshal(t, meta.Options); !bytes.Equal(got, ns.options) {
			t.Errorf("prelude: %s: options %s, want %s", name, extJSON(got), extJSON(ns.options))
		}
		if got := metadataIndexes(t, meta.Indexes); !slices.Equal(got, ns.indexes) {
			t.Errorf("prelude: %s: indexes\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(ns.indexes, "\n  "))
		}
	}
	slices.Sort(preludeNames)
	if !slices.Equal(preludeNames, fixtureNames) {
		t.Errorf("prelude lists %v, want %v", preludeNames, fixtureNames)
	}

	// Documents by namespace and _id: mongodump's order is the server's
	// natural order, the fixture's is _id order.
	docs := map[string]map[string]bson.Raw{}
	ended := map[string]int{}
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := ev.Database + "." + ev.Collection
		if ev.End {
			ended[name]++
			continue
		}
		if ended[name] > 0 {
			t.Fatalf("%s has documents after its EOF", name)
		}
		if docs[name] == nil {
			docs[name] = map[string]bson.Raw{}
		}
		id := documentID(t, ev.Document)
		if _, dup := docs[name][id]; dup {
			t.Errorf("%s: _id %s twice", name, id)
		}
		docs[name][id] = bson.Raw(slices.Clone(ev.Document))
	}
	for _, ns := range fx.Namespaces {
		name := fx.Database + "." + ns.Collection
		// An EOF comes only after the namespace's CRC-64 matched.
		if ended[name] != 1 {
			t.Errorf("%s: %d EOFs with a good checksum, want 1", name, ended[name])
		}
		got := make([]bson.Raw, 0, len(ns.documents))
		for _, want := range ns.documents {
			id := documentID(t, want)
			doc, ok := docs[name][id]
			if !ok {
				t.Errorf("%s: the archive has no document with _id %s", name, id)
				continue
			}
			got = append(got, doc)
			delete(docs[name], id)
		}
		for id := range docs[name] {
			t.Errorf("%s: the archive has a document with _id %s that the source did not", name, id)
		}
		sameDocuments(t, name, got, ns.documents)
	}

	// The checksums are really checked: a byte changed inside a string of
	// the fixture fails its namespace.
	at := bytes.Index(data, []byte("Rue de l'"))
	if at < 0 {
		t.Fatal("no 'Rue de l'' in the fixture")
	}
	bad := slices.Clone(data)
	bad[at] = 'r'
	rd, err = archive.NewReader(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := rd.Next()
		if err == io.EOF {
			t.Fatal("an archive with a changed document read without error")
		}
		if err != nil {
			if !strings.Contains(err.Error(), "CRC mismatch in namespace "+fx.Database+".people") {
				t.Errorf("changed document: %v, want a CRC mismatch in %s.people", err, fx.Database)
			}
			break
		}
	}
}

// The archive real mongodump wrote restores with backflow's engine into
// another database, with the source's documents, indexes and collection
// options.
func TestMongodumpArchiveRestores(t *testing.T) {
	fx := loadFixture(t)
	ferret, err := servers.StartFerretDB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ferret.Stop)
	ctx := context.Background()
	const db = "mongodump_restored"
	f, err := os.Open(filepath.Join("testdata", fixtureArchive))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	client := options.Client().ApplyURI(fmt.Sprintf("mongodb://%s:%d/", ferret.Host, ferret.Port)).
		SetAuth(options.Credential{Username: ferret.User, Password: ferret.Password, AuthSource: "admin"})
	restored, err := mongodb.Restore(ctx, mongodb.RestoreOptions{Client: client, Rename: []mongodb.Rename{{From: fx.Database + ".*", To: db + ".*"}}}, f)
	if err != nil {
		t.Fatal(err)
	}

	var got, want []string
	for _, r := range restored {
		got = append(got, fmt.Sprintf("%s: %d", r, r.Documents))
	}
	for _, ns := range fx.Namespaces {
		want = append(want, fmt.Sprintf("%s.%s: %d", db, ns.Collection, len(ns.documents)))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}

	d := ferret.Client().Database(db)
	cur, err := d.ListCollections(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var infos []struct {
		Name    string   `bson:"name"`
		Type    string   `bson:"type"`
		Options bson.Raw `bson:"options"`
	}
	if err := cur.All(ctx, &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(fx.Namespaces) {
		t.Errorf("%s has %d collections, want %d", db, len(infos), len(fx.Namespaces))
	}
	for _, info := range infos {
		ns := fx.namespace(info.Name)
		if ns == nil {
			t.Errorf("%s has collection %s, which the source did not", db, info.Name)
			continue
		}
		name := db + "." + info.Name
		if info.Type != ns.Type {
			t.Errorf("%s is a %q, want %q", name, info.Type, ns.Type)
		}
		if len(info.Options) == 0 {
			info.Options = marshal(t, nil)
		}
		if !bytes.Equal(info.Options, ns.options) {
			t.Errorf("%s has options %s, want %s", name, extJSON(info.Options), extJSON(ns.options))
		}

		icur, err := d.Collection(info.Name).Indexes().List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var specs []bson.D
		if err := icur.All(ctx, &specs); err != nil {
			t.Fatal(err)
		}
		if got := metadataIndexes(t, specs); !slices.Equal(got, ns.indexes) {
			t.Errorf("%s has indexes\n  %s\nwant\n  %s", name, strings.Join(got, "\n  "), strings.Join(ns.indexes, "\n  "))
		}

		dcur, err := d.Collection(info.Name).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatal(err)
		}
		var docs []bson.Raw
		for dcur.Next(ctx) {
			docs = append(docs, slices.Clone(dcur.Current))
		}
		if err := dcur.Err(); err != nil {
			t.Fatal(err)
		}
		dcur.Close(ctx)
		sameDocuments(t, name, docs, ns.documents)
	}
}
