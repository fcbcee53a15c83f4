package stages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/source/mongodb"
	"github.com/backflow-dev/backflow/stages/source/mongodb/archive"
)

// mongoSecret is the connection Secret's values for the test server, with
// another password if one is given.
func mongoSecret(password ...string) func(string) string {
	pw := ferret.Password
	if len(password) > 0 {
		pw = password[0]
	}
	return env(map[string]string{source.EnvPort: fmt.Sprint(ferret.Port), source.EnvUsername: ferret.User, source.EnvPassword: pw})
}

func mongoConn(db string) v1.DatabaseConnection {
	return v1.DatabaseConnection{Host: ferret.Host, Database: db, SecretRef: &v1.ConnectionSecretRef{Name: "x"}}
}

// everyType is a document with a value of each BSON type FerretDB stores.
// FerretDB 1.24 stores neither decimal128 (it drops the connection) nor
// arrays directly inside arrays; the engine passes documents through as raw
// bytes, and the archive tests carry both.
func everyType(i int) bson.D {
	return bson.D{
		{Key: "_id", Value: i},
		{Key: "name", Value: fmt.Sprintf("Zoë %d 🚀 \"quoted\" \\ back", i)},
		{Key: "double", Value: float64(i) + 0.25},
		{Key: "int32", Value: int32(i)},
		{Key: "int64", Value: int64(i) << 40},
		{Key: "when", Value: bson.NewDateTimeFromTime(time.UnixMilli(1795000000000 + int64(i)*1000))},
		{Key: "ts", Value: bson.Timestamp{T: uint32(1795000000 + i), I: 1}},
		{Key: "generic", Value: bson.Binary{Subtype: 0x00, Data: []byte{0, 1, 2, 0xff, byte(i)}}},
		{Key: "uuid", Value: bson.Binary{Subtype: 0x04, Data: bytes.Repeat([]byte{byte(i)}, 16)}},
		{Key: "user", Value: bson.Binary{Subtype: 0x80, Data: []byte("user-defined")}},
		{Key: "oid", Value: bson.ObjectID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, byte(i >> 8), byte(i)}},
		{Key: "nested", Value: bson.A{bson.D{{Key: "k", Value: bson.A{1, "two", bson.D{{Key: "deep", Value: bson.A{3.5}}}}}}, bson.D{{Key: "k", Value: nil}}}},
		{Key: "ключ", Value: true},
		{Key: "鍵", Value: bson.D{{Key: "ok", Value: i%2 == 0}, {Key: "re", Value: bson.Regex{Pattern: "^a.c$", Options: "i"}}}},
	}
}

// fillMongo replaces a database's collections with n documents each, padded
// with pad bytes.
func fillMongo(t *testing.T, db string, collections []string, n, pad int) {
	t.Helper()
	ctx := context.Background()
	d := ferret.Client().Database(db)
	if err := d.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, name := range collections {
		docs := make([]any, n)
		for i := range docs {
			doc := everyType(i)
			if pad > 0 {
				doc = append(doc, bson.E{Key: "pad", Value: strings.Repeat("p", pad)})
			}
			docs[i] = doc
		}
		if _, err := d.Collection(name).InsertMany(ctx, docs); err != nil {
			t.Fatalf("filling %s.%s: %v", db, name, err)
		}
	}
}

func exportMongo(t *testing.T, db, coll string) string {
	t.Helper()
	out, err := ferret.Export(db, coll)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// indexesOf lists a collection's indexes as name: key, unique.
func indexesOf(t *testing.T, db, coll string) []string {
	t.Helper()
	cur, err := ferret.Client().Database(db).Collection(coll).Indexes().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var specs []struct {
		Name   string `bson:"name"`
		Key    bson.D `bson:"key"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(context.Background(), &specs); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range specs {
		out = append(out, fmt.Sprintf("%s: %v unique=%t", s.Name, s.Key, s.Unique))
	}
	slices.Sort(out)
	return out
}

func collectionOptions(t *testing.T, db, coll string) bson.M {
	t.Helper()
	cur, err := ferret.Client().Database(db).ListCollections(context.Background(), bson.D{{Key: "name", Value: coll}})
	if err != nil {
		t.Fatal(err)
	}
	var infos []struct {
		Options bson.M `bson:"options"`
	}
	if err := cur.All(context.Background(), &infos); err != nil || len(infos) != 1 {
		t.Fatalf("listCollections %s.%s: %v %v", db, coll, infos, err)
	}
	return infos[0].Options
}

// A MongoDB database goes through backflow's own engine (mongodump's archive
// format), zstd, age and S3, and comes back into a fresh database with the
// same documents of every BSON type, a 15 MiB document, its indexes and its
// capped collection's options.
func TestMongoDBRoundTrip(t *testing.T) {
	ctx := context.Background()
	fillMongo(t, "shop", []string{"orders", "customers"}, 3000, 0)
	shop := ferret.Client().Database("shop")
	big := bson.D{{Key: "_id", Value: "big"}, {Key: "blob", Value: bson.Binary{Data: bytes.Repeat([]byte("0123456789abcdef"), 15<<16)}}}
	if _, err := shop.Collection("files").InsertOne(ctx, big); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Collection("orders").Indexes().CreateMany(ctx, []mongo.IndexModel{
		{Keys: bson.D{{Key: "name", Value: 1}}, Options: options.Index().SetUnique(true).SetName("name_unique")},
		{Keys: bson.D{{Key: "int64", Value: -1}, {Key: "double", Value: 1}}, Options: options.Index().SetName("by_size")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := shop.CreateCollection(ctx, "recent", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20).SetMaxDocuments(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.Collection("recent").InsertOne(ctx, everyType(1)); err != nil {
		t.Fatal(err)
	}

	id, recipients, names := newIdentity(t)
	backend := s3(t)
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source:        v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("shop")}},
		SourceOptions: source.Options{Getenv: mongoSecret()},
		Storage:       backend, PathTemplate: "{{ .Database }}/{{ .Name }}{{ .Extension }}", Name: "shop-1",
		Recipients: recipients, RecipientNames: names, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Key != "shop/shop-1.archive.zst.age" || m.Source != "mongodb" || m.Format != mongodb.FormatArchive.Name {
		t.Errorf("manifest %+v", m)
	}
	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}}); err != nil {
		t.Fatal(err)
	}
	restore := func(target v1.MongoDBTarget) error {
		_, err := stages.Restore(ctx, stages.RestoreConfig{
			Storage: backend, Key: m.Key, Identities: []age.Identity{id}, VerifyFirst: true,
			Target: v1.RestoreTarget{MongoDB: &target}, SourceOptions: source.Options{Getenv: mongoSecret()},
		})
		return err
	}
	check := func(t *testing.T, db string) {
		t.Helper()
		for _, coll := range []string{"orders", "customers", "files", "recent"} {
			if got, want := exportMongo(t, db, coll), exportMongo(t, "shop", coll); got != want {
				t.Errorf("%s.%s: restored documents differ (%d bytes, want %d)", db, coll, len(got), len(want))
			}
		}
		if got, want := indexesOf(t, db, "orders"), indexesOf(t, "shop", "orders"); !slices.Equal(got, want) || len(got) != 3 {
			t.Errorf("indexes of %s.orders: %v, want %v", db, got, want)
		}
		if o := collectionOptions(t, db, "recent"); o["capped"] != true || fmt.Sprint(o["size"]) != "1048576" || fmt.Sprint(o["max"]) != "100" {
			t.Errorf("options of %s.recent: %v", db, o)
		}
	}

	t.Run("renamed", func(t *testing.T) {
		if err := restore(v1.MongoDBTarget{Connection: mongoConn(""), Rename: []v1.NamespaceRename{{From: "shop.*", To: "shop_renamed.*"}}}); err != nil {
			t.Fatal(err)
		}
		check(t, "shop_renamed")
	})
	t.Run("into the connection's database", func(t *testing.T) {
		if err := restore(v1.MongoDBTarget{Connection: mongoConn("shop_copy")}); err != nil {
			t.Fatal(err)
		}
		check(t, "shop_copy")
		// Again without drop: the first duplicate _id fails the restore,
		// naming the collection and the document.
		err := restore(v1.MongoDBTarget{Connection: mongoConn("shop_copy")})
		if err == nil || !strings.Contains(err.Error(), "shop_copy.") || !strings.Contains(err.Error(), "document 0 of shop.") {
			t.Errorf("restoring over existing documents: %v", err)
		}
		// With drop it replaces them.
		if err := restore(v1.MongoDBTarget{Connection: mongoConn("shop_copy"), Drop: true}); err != nil {
			t.Fatal(err)
		}
		check(t, "shop_copy")
	})

	t.Run("restore test", func(t *testing.T) {
		verify := func(query string) error {
			_, err := stages.Verify(ctx, stages.VerifyConfig{
				Storage: backend, Key: m.Key, Identities: []age.Identity{id},
				RestoreTest:   &stages.RestoreTestConfig{Target: &v1.RestoreTarget{MongoDB: &v1.MongoDBTarget{Connection: mongoConn("scratch"), Drop: true}}, CheckQuery: query},
				SourceOptions: source.Options{Getenv: mongoSecret()},
			})
			return err
		}
		scratchDropped := func() {
			t.Helper()
			names, err := ferret.Client().Database("scratch").ListCollectionNames(ctx, bson.D{})
			if err != nil || len(names) != 0 {
				t.Errorf("the scratch database is left with %v (%v)", names, err)
			}
		}
		if err := verify(""); err != nil {
			t.Fatal(err)
		}
		scratchDropped()
		if err := verify(`{"collection": "orders", "filter": {"int32": {"$gte": 2999}}}`); err != nil {
			t.Fatal(err)
		}
		scratchDropped()
		if err := verify(`{"collection": "orders", "filter": {"int32": {"$gt": 5000}}}`); err == nil || !strings.Contains(err.Error(), "matched no document of orders") {
			t.Errorf("a check that matches nothing: %v", err)
		}
		scratchDropped()
		if err := verify(`SELECT 1`); err == nil || !strings.Contains(err.Error(), "checkQuery for MongoDB must be") {
			t.Errorf("an SQL check query for MongoDB: %v", err)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		// The dump fails with the server's own message and leaves nothing.
		empty := s3(t)
		_, err := stages.Dump(ctx, stages.DumpConfig{
			Source:        v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("shop")}},
			SourceOptions: source.Options{Getenv: mongoSecret("wrong")},
			Storage:       empty, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "bad",
		})
		if err == nil || !strings.Contains(err.Error(), "Authentication failed") || strings.Contains(err.Error(), "wrong") {
			t.Errorf("dump with a wrong password: %v", err)
		}
		assertBucketEmpty(t, empty)
	})

	t.Run("no such database", func(t *testing.T) {
		// An archive of nothing is no backup: a misspelt database fails.
		empty := s3(t)
		_, err := stages.Dump(ctx, stages.DumpConfig{
			Source:        v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("shpo")}},
			SourceOptions: source.Options{Getenv: mongoSecret()},
			Storage:       empty, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "typo",
		})
		if err == nil || !strings.Contains(err.Error(), "no collection of shpo was selected") {
			t.Errorf("dump of a database that does not exist: %v", err)
		}
		assertBucketEmpty(t, empty)
	})

	t.Run("oplog", func(t *testing.T) {
		// Refused before anything connects or moves.
		empty := s3(t)
		_, err := stages.Dump(ctx, stages.DumpConfig{
			Source:        v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("shop"), Oplog: true}},
			SourceOptions: source.Options{Getenv: mongoSecret()},
			Storage:       empty, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "oplog",
		})
		if err == nil || !strings.Contains(err.Error(), "oplog capture is not available") {
			t.Errorf("dump with oplog: %v", err)
		}
		assertBucketEmpty(t, empty)
	})
}

// A connection cut in the middle of a dump fails it and leaves nothing in
// the bucket.
func TestMongoDBConnectionCutMidDump(t *testing.T) {
	ctx := context.Background()
	fillMongo(t, "cut", []string{"a", "b"}, 500, 4096)
	proxy := cutAfter(t, fmt.Sprintf("%s:%d", ferret.Host, ferret.Port), 1<<20)
	empty := s3(t)
	conn := mongoConn("cut")
	conn.Host, conn.Port = "127.0.0.1", ptr(int32(proxy.Port))
	_, err := stages.Dump(ctx, stages.DumpConfig{
		Source:        v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: conn}},
		SourceOptions: source.Options{Getenv: mongoSecret()},
		Storage:       empty, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "cut",
	})
	if err == nil || !strings.Contains(err.Error(), "reading cut.") {
		t.Errorf("dump through a cut connection: %v", err)
	}
	if proxy.cut.Load() == 0 {
		t.Error("the proxy never cut the connection")
	}
	assertBucketEmpty(t, empty)
}

// parallelCollections reads that many collections at once: their segments
// interleave in the archive, which records the setting for mongorestore.
func TestMongoDBParallelCollections(t *testing.T) {
	ctx := context.Background()
	colls := []string{"c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"}
	fillMongo(t, "par", append(slices.Clone(colls), "audit_1"), 400, 4096)
	backend := s3(t)
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source: v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: mongoConn("par"), ParallelCollections: ptr(int32(4)),
			ExcludeCollections: []string{"par.audit_*"}}},
		SourceOptions: source.Options{Getenv: mongoSecret()},
		Storage:       backend, PathTemplate: "{{ .Name }}{{ .Extension }}", Name: "par", Compression: pipeline.Gzip,
	})
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: m.Key,
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Command: []string{"cat"}}}, Stdout: &plain}); err != nil {
		t.Fatal(err)
	}
	rd, err := archive.NewReader(&plain)
	if err != nil {
		t.Fatal(err)
	}
	if h := rd.Header(); h.ConcurrentCollections != 4 || h.ToolVersion == "" {
		t.Errorf("header %+v", h)
	}
	var prelude []string
	for _, c := range rd.Prelude() {
		prelude = append(prelude, c.Collection)
	}
	if !slices.Equal(prelude, colls) {
		t.Errorf("prelude %v, want c1..c8 (audit_1 excluded)", prelude)
	}
	// Count the namespaces that had documents while others were still
	// open: with four readers, several are.
	open, maxOpen := map[string]bool{}, 0
	docs := map[string]int{}
	for {
		ev, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.End {
			delete(open, ev.Collection)
			continue
		}
		docs[ev.Collection]++
		open[ev.Collection] = true
		maxOpen = max(maxOpen, len(open))
	}
	if maxOpen < 2 || maxOpen > 4 {
		t.Errorf("at most %d collections were read at once, want 2 to 4", maxOpen)
	}
	for _, c := range colls {
		if docs[c] != 400 {
			t.Errorf("%s: %d documents in the archive", c, docs[c])
		}
	}
}

func ptr[T any](v T) *T { return &v }

// cutProxy forwards TCP connections to a server and cuts them all once
// more than limit bytes went through.
type cutProxy struct {
	Port int
	cut  atomic.Int64
}

func cutAfter(t *testing.T, target string, limit int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{Port: ln.Addr().(*net.TCPAddr).Port}
	var total atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	cutAll := func() {
		mu.Lock()
		defer mu.Unlock()
		p.cut.Add(1)
		for _, c := range conns {
			_ = c.Close()
		}
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						if total.Add(int64(n)) > limit {
							cutAll()
							return
						}
						if _, err := dst.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}
			go pipe(server, client)
			go pipe(client, server)
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); cutAll() })
	return p
}
