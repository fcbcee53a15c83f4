package engines_test

import (
	"cmp"
	"context"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
	_ "github.com/backflow-dev/backflow/stages/source/engines"
	"github.com/backflow-dev/backflow/stages/source/mysql"
	"github.com/backflow-dev/backflow/stages/source/postgresql"
	"github.com/backflow-dev/backflow/stages/source/pvc"
)

var connection = v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}

// sources are a source and a target of every engine.
var sources = map[string]struct {
	src    v1.BackupSource
	target v1.RestoreTarget
}{
	"postgresql": {
		v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Connection: connection}},
		v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Connection: connection}},
	},
	"mysql": {
		v1.BackupSource{MySQL: &v1.MySQLSource{Connection: connection, Flavor: v1.MySQLFlavorMariaDB}},
		v1.RestoreTarget{MySQL: &v1.MySQLTarget{Connection: connection}},
	},
	"mongodb": {
		v1.BackupSource{MongoDB: &v1.MongoDBSource{Connection: connection}, AllowEmpty: true},
		v1.RestoreTarget{MongoDB: &v1.MongoDBTarget{Connection: connection}},
	},
	"pvc": {
		v1.BackupSource{PVC: &v1.PVCSource{ClaimName: "data"}},
		v1.RestoreTarget{PVC: &v1.PVCTarget{ClaimName: "data"}},
	},
	"command": {
		v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat"}}},
		v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
	},
}

// Every engine field of the API has its engine, found by its JSON key,
// and every engine has a field: a field without an engine would fall
// through to "set exactly one of" at run time.
func TestEveryKindHasItsEngine(t *testing.T) {
	for _, spec := range []any{v1.BackupSource{}, v1.RestoreTarget{}} {
		var keys []string
		typ := reflect.TypeOf(spec)
		for i := range typ.NumField() {
			if f := typ.Field(i); f.Type.Kind() == reflect.Pointer {
				keys = append(keys, strings.Split(f.Tag.Get("json"), ",")[0])
			}
		}
		slices.Sort(keys)
		if names := source.Names(); !slices.Equal(keys, names) {
			t.Errorf("the engine fields of %s are %v, the engines %v", typ.Name(), keys, names)
		}
	}
	for name, tc := range sources {
		if e, err := source.ForSource(tc.src); err != nil || e.Name() != name {
			t.Errorf("ForSource(%s) = %v, %v", name, e, err)
		}
		if e, err := source.ForTarget(tc.target); err != nil || e.Name() != name {
			t.Errorf("ForTarget(%s) = %v, %v", name, e, err)
		}
		if e, ok := source.ByName(name); !ok || e.Name() != name {
			t.Errorf("ByName(%s) = %v", name, e)
		}
	}
}

func TestNoneOrTwoKindsFail(t *testing.T) {
	const all = "set exactly one of command, mongodb, mysql, postgresql and pvc"
	two := sources["postgresql"].src
	two.MySQL = sources["mysql"].src.MySQL
	twoTargets := sources["pvc"].target
	twoTargets.Command = sources["command"].target.Command
	for _, tc := range []struct {
		lookup func() (source.Engine, error)
		want   string
	}{
		{func() (source.Engine, error) { return source.ForSource(v1.BackupSource{AllowEmpty: true}) }, "spec.source: " + all},
		{func() (source.Engine, error) { return source.ForSource(two) }, "spec.source: " + all + " (mysql and postgresql are set)"},
		{func() (source.Engine, error) { return source.ForTarget(v1.RestoreTarget{}) }, "spec.target: " + all},
		{func() (source.Engine, error) { return source.ForTarget(twoTargets) }, "spec.target: " + all + " (command and pvc are set)"},
	} {
		if e, err := tc.lookup(); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, %v; want %q", e, err, tc.want)
		}
	}
}

// Register refuses an engine that would answer for what another one does,
// and then registers nothing of it.
func TestRegisterRefusesWhatIsTaken(t *testing.T) {
	names, formats := source.Names(), source.Formats()
	for what, e := range map[string]source.Engine{
		"a taken name":   pvc.Engine{},
		"a taken format": renamed{pvc.Engine{}, "volume"},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s was registered", what)
				}
			}()
			source.Register(e)
		}()
	}
	if !slices.Equal(source.Names(), names) || !slices.Equal(source.Formats(), formats) {
		t.Errorf("a refused engine left %v, %v", source.Names(), source.Formats())
	}
}

// renamed is an engine under another name.
type renamed struct {
	pvc.Engine
	name string
}

func (r renamed) Name() string { return r.name }

// The formats are what manifests in storage say and what keys end with:
// they never change, each has one extension and one engine that writes it,
// and an engine's source writes one of its own formats, which it restores.
func TestFormats(t *testing.T) {
	want := map[string]string{
		"pg-plain": ".sql", "pg-custom": ".pgdump", "pg-tar": ".pgdump.tar", "mysql": ".sql",
		"mongodb-archive": ".archive", "tar": ".tar", "raw": ".bin",
	}
	got := map[string]string{}
	for _, f := range source.Formats() {
		if _, dup := got[f.Name]; dup {
			t.Errorf("format %s twice", f.Name)
		}
		got[f.Name] = f.Extension
		writer, ok := source.WriterOf(f.Name)
		if !ok || !slices.Contains(writer.Formats(), f) {
			t.Errorf("format %s: writer %v", f.Name, writer)
		}
		if !writer.Accepts(f.Name) {
			t.Errorf("%s does not restore its own format %s", writer.Name(), f.Name)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("formats %v, want %v", got, want)
	}
	for name, tc := range sources {
		e, _ := source.ByName(name)
		if f := e.Format(tc.src); !slices.Contains(e.Formats(), f) {
			t.Errorf("%s writes %v, not one of its formats", name, f)
		}
	}
	for _, format := range []v1.PostgreSQLDumpFormat{"", v1.PostgreSQLFormatPlain, v1.PostgreSQLFormatCustom, v1.PostgreSQLFormatTar} {
		src := v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Format: format}}
		if got, want := (postgresql.Engine{}).Format(src).Name, "pg-"+string(cmp.Or(format, v1.PostgreSQLFormatCustom)); got != want {
			t.Errorf("pg_dump --format=%s writes %s, want %s", format, got, want)
		}
	}
}

// A target refuses a backup of a format it cannot restore before anything
// starts; pvc and command take any stream.
func TestRestoreRefusesAForeignFormat(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ target, format, want string }{
		{"postgresql", "mysql", "a mysql backup cannot be restored into PostgreSQL"},
		{"mysql", "pg-custom", "a pg-custom backup cannot be restored into MySQL"},
		{"mongodb", "tar", "a tar backup cannot be restored into MongoDB"},
	} {
		target := sources[tc.target].target
		_, err := source.StartRestore(ctx, target, tc.format, source.Options{}, io.Discard, io.Discard)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s into %s: %v", tc.format, tc.target, err)
		}
		_, err = source.StartRestoreTest(ctx, &target, tc.format, "", source.Options{}, io.Discard)
		if err == nil || err.Error() != tc.want {
			t.Errorf("restore test of %s into %s: %v", tc.format, tc.target, err)
		}
	}
	for _, name := range []string{"pvc", "command"} {
		e, _ := source.ByName(name)
		for _, f := range source.Formats() {
			if !e.Accepts(f.Name) {
				t.Errorf("%s refuses %s", name, f.Name)
			}
		}
	}
}

// Without a scratch database only the archives an engine can check without
// one pass: PostgreSQL's custom and tar formats.
func TestArchiveCheckWithoutAScratchDatabase(t *testing.T) {
	var checkable []string
	for _, f := range source.Formats() {
		writer, _ := source.WriterOf(f.Name)
		if c, ok := writer.(source.ArchiveChecker); ok && c.ChecksArchive(f.Name) {
			checkable = append(checkable, f.Name)
		}
	}
	if !slices.Equal(checkable, []string{"pg-custom", "pg-tar"}) {
		t.Errorf("checkable without a database: %v", checkable)
	}
	_, err := source.StartRestoreTest(context.Background(), nil, "pg-plain", "", source.Options{}, io.Discard)
	if want := "a restore test without a scratch database needs a pg-custom or pg-tar backup, not pg-plain"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// The verify step's --engine names every engine with a restore test and
// flavor, and its target belongs to the engine of the source.
func TestScratchEngines(t *testing.T) {
	if got := source.ScratchEngineNames(); !slices.Equal(got, []string{"mariadb", "mongodb", "mysql", "postgresql"}) {
		t.Errorf("scratch engines %v", got)
	}
	for name, tc := range sources {
		e, _ := source.ByName(name)
		tester, ok := e.(source.RestoreTester)
		if !ok {
			continue
		}
		scratch := tester.ScratchEngine(tc.src)
		target, err := source.ScratchTarget(scratch, connection)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := source.ForTarget(target); err != nil || got.Name() != name {
			t.Errorf("the scratch target of %s (%s) is %v, %v", name, scratch, got, err)
		}
	}
	target, _ := source.ScratchTarget("mariadb", connection)
	if target.MySQL.Flavor != v1.MySQLFlavorMariaDB {
		t.Errorf("mariadb scratch target: %+v", target.MySQL)
	}
	if _, err := source.ScratchTarget("sqlite", connection); err == nil ||
		err.Error() != `the engine of a scratch database must be mariadb, mongodb, mysql or postgresql, not "sqlite"` {
		t.Errorf("unknown scratch engine: %v", err)
	}
}

// Client images: the engines with client tools name a default for each
// flavor, and each step names one of those, unless the spec names its own.
func TestClientImages(t *testing.T) {
	images := source.ClientImages()
	if got := slices.Sorted(maps.Keys(images)); !slices.Equal(got, []string{"mariadb", "mysql", "postgresql"}) {
		t.Errorf("client images %v", images)
	}
	for name, tc := range sources {
		e, _ := source.ByName(name)
		for _, pod := range []source.Pod{e.DumpPod(tc.src), e.RestorePod(tc.target)} {
			if _, ok := e.ClientImages()[pod.ClientImage]; pod.ClientImage != "" && !ok {
				t.Errorf("%s names client image %q, which it has no default for", name, pod.ClientImage)
			}
		}
	}
	if pod := (mysql.Engine{}).DumpPod(sources["mysql"].src); pod.ClientImage != "mariadb" {
		t.Errorf("the mariadb flavor runs in %q", pod.ClientImage)
	}
}

const secret = "s3cr3t-p@ss:word/\"'"

func secretEnv(name string) string {
	return map[string]string{
		source.EnvHost: "db.internal", source.EnvPort: "6543", source.EnvUsername: "app", source.EnvPassword: secret, source.EnvDatabase: "shop",
	}[name]
}

// No password or URI ever appears on a command line; the MySQL clients read
// them from a quoted option file.
func TestSecretsStayOffTheCommandLine(t *testing.T) {
	opts := source.Options{Namespace: "shop", Getenv: secretEnv}
	cases := map[string]struct {
		proc  func() (source.Process, error)
		words []string
	}{
		"pg_dump": {func() (source.Process, error) {
			return postgresql.DumpProcess(&v1.PostgreSQLSource{Connection: connection}, opts)
		}, []string{secret}},
		"mariadb-dump": {func() (source.Process, error) {
			return mysql.DumpProcess(&v1.MySQLSource{Connection: connection, Flavor: v1.MySQLFlavorMariaDB}, opts)
		}, []string{secret}},
		"pg_restore": {func() (source.Process, error) {
			return postgresql.RestoreProcess(&v1.PostgreSQLTarget{Connection: connection}, "pg-custom", opts)
		}, []string{secret, "shop"}},
		"mysql": {func() (source.Process, error) {
			return mysql.RestoreProcess(&v1.MySQLTarget{Connection: connection}, opts)
		}, []string{secret, "shop"}},
	}
	for name, tc := range cases {
		p, err := tc.proc()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		args := strings.Join(p.Args, " ")
		for _, w := range tc.words {
			if strings.Contains(args, w) {
				t.Errorf("%s: %q on the command line: %s", name, w, args)
			}
		}
		if name == "mysql" {
			for _, want := range []string{`host="db.internal"`, "port=6543", `user="app"`, `password="s3cr3t-p@ss:word/\"'"`, `database="shop"`} {
				if !strings.Contains(p.Files["my.cnf"], want) {
					t.Errorf("my.cnf lacks %s:\n%s", want, p.Files["my.cnf"])
				}
			}
		}
	}
}
