package mongodb

import (
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/backflow-dev/backflow/stages/source/mongodb/archive"
)

func TestRenameNamespace(t *testing.T) {
	rules := []Rename{{From: "shop.orders", To: "archive.orders_2026"}, {From: "shop.*", To: "shop_copy.*"}, {From: "*.logs_*", To: "*_logs.*"}}
	cases := []struct{ db, coll, want string }{
		{"shop", "orders", "archive.orders_2026"},
		{"shop", "customers", "shop_copy.customers"},
		{"shop", "a.b", "shop_copy.a.b"},
		{"app", "logs_2026", "app_logs.2026"},
		{"app", "users", "app.users"},
	}
	for _, c := range cases {
		db, coll, err := renameNamespace(rules, c.db, c.coll)
		if err != nil || db+"."+coll != c.want {
			t.Errorf("%s.%s: %s.%s (%v), want %s", c.db, c.coll, db, coll, err, c.want)
		}
	}
	if _, _, err := renameNamespace([]Rename{{From: "shop.*", To: "*"}}, "shop", "orders"); err == nil {
		t.Error("a rename to a name without a database was accepted")
	}
}

func TestSelected(t *testing.T) {
	ns := func(db, coll string) namespace { return namespace{db: db, info: collectionInfo{Name: coll}} }
	cases := []struct {
		ns               namespace
		include, exclude []string
		want             bool
	}{
		{ns("shop", "orders"), nil, nil, true},
		{ns("shop", "orders"), []string{"orders"}, nil, true},
		{ns("shop", "orders"), []string{"shop.orders"}, nil, true},
		{ns("shop", "orders"), []string{"other.orders"}, nil, false},
		{ns("shop", "orders"), []string{"ord*"}, []string{"orders"}, false},
		{ns("shop", "audit_1"), nil, []string{"audit_*"}, false},
		{ns("shop", "audit_1"), nil, []string{"shop.audit_*"}, false},
		{ns("shop", "a.b"), []string{"a.b"}, nil, true},
	}
	for _, c := range cases {
		if got := selected(c.ns, c.include, c.exclude); got != c.want {
			t.Errorf("%s with include %v exclude %v: %t", c.ns, c.include, c.exclude, got)
		}
	}
}

func TestPlanRestore(t *testing.T) {
	meta := func(name, typ string) string {
		s, err := archive.EncodeMetadata(archive.Metadata{CollectionName: name, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	prelude := []archive.CollectionMetadata{
		{Database: "shop", Collection: "orders", Metadata: meta("orders", "collection")},
		{Database: "crm", Collection: "people", Metadata: meta("people", "collection")},
	}
	dests := func(opts RestoreOptions) ([]string, error) {
		targets, order, err := planRestore(prelude, opts)
		var out []string
		for _, k := range order {
			out = append(out, targets[k].String())
		}
		return out, err
	}
	if got, _ := dests(RestoreOptions{}); !slices.Equal(got, []string{"shop.orders", "crm.people"}) {
		t.Errorf("names kept: %v", got)
	}
	if got, _ := dests(RestoreOptions{Database: "copy"}); !slices.Equal(got, []string{"copy.shop.orders", "copy.crm.people"}) {
		t.Errorf("several databases into one: %v", got)
	}
	if got, _ := dests(RestoreOptions{Database: "copy", Rename: []Rename{{From: "crm.*", To: "shop.*"}}}); !slices.Equal(got, []string{"copy.orders", "copy.people"}) {
		t.Errorf("renamed into one database first: %v", got)
	}
	if _, err := dests(RestoreOptions{Rename: []Rename{{From: "shop.orders", To: "x.y"}, {From: "crm.people", To: "x.y"}}}); err == nil || !strings.Contains(err.Error(), "would both be restored into x.y") {
		t.Errorf("two namespaces into one: %v", err)
	}
	withOplog := append(slices.Clone(prelude), archive.OplogCollectionMetadata())
	if _, _, err := planRestore(withOplog, RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "oplog") {
		t.Errorf("an archive with an oplog: %v", err)
	}
}

// Options a test server here does not implement (validators, collation,
// views) reach the create command as mongodump recorded them.
func TestCreateCommandKeepsOptions(t *testing.T) {
	meta, err := archive.DecodeMetadata(`{"options":{"validator":{"$jsonSchema":{"bsonType":"object","required":["sku"]}},` +
		`"validationLevel":"strict","collation":{"locale":"de","strength":{"$numberInt":"2"}}},"indexes":[],"collectionName":"items","type":"collection"}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bson.MarshalExtJSON(createCommand("items_copy", meta.Options), true, false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"create":"items_copy","validator":{"$jsonSchema":{"bsonType":"object","required":["sku"]}},` +
		`"validationLevel":"strict","collation":{"locale":"de","strength":{"$numberInt":"2"}}}`
	if string(got) != want {
		t.Errorf("create command\n%s\nwant\n%s", got, want)
	}
	view, err := archive.DecodeMetadata(`{"options":{"viewOn":"orders","pipeline":[{"$match":{"paid":true}}]},"indexes":[],"collectionName":"paid","type":"view"}`)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]*target{"shop.orders": {RestoredCollection: RestoredCollection{Database: "copy", Collection: "orders_2026"}}}
	paid := &target{RestoredCollection: RestoredCollection{Database: "copy", Collection: "paid"}, sourceDB: "shop", meta: view}
	opts, err := viewOptions(paid, targets)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = bson.MarshalExtJSON(createCommand("paid", opts), true, false)
	if want := `{"create":"paid","viewOn":"orders_2026","pipeline":[{"$match":{"paid":true}}]}`; string(got) != want {
		t.Errorf("view\n%s\nwant\n%s", got, want)
	}
	paid.Database = "elsewhere"
	if _, err := viewOptions(paid, targets); err == nil {
		t.Error("a view restored into another database than its collection was accepted")
	}
}
