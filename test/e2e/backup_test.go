//go:build e2e

package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/zeebo/blake3"
	"go.mongodb.org/mongo-driver/v2/bson"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/test/clusterkit"
	"github.com/backflow-dev/backflow/test/envtest"
	"github.com/backflow-dev/backflow/test/servers"
)

// Namespaces the suite runs in; `make e2e` creates them, and the controller
// provides the workflow's ServiceAccounts in each.
const (
	nsPostgreSQL = "e2e-postgresql"
	nsFailure    = "e2e-failure"
	nsFiles      = "e2e-files"
	nsSchedule   = "e2e-schedule"
	nsWiki       = "wiki" // examples/mariadb-backup.yaml's own
	nsMongoDB    = "e2e-mongodb"
	bucket       = "e2e"
)

func dbSecret(name string) string {
	return fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: %s}
stringData: {username: postgres, password: %s}
`, name, st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
}

// A PostgreSQL Backup with exec hooks and retention runs all five steps,
// its status matches the object in MinIO, and a Restore of it into a fresh
// database yields the same rows.
func TestPostgreSQLBackupAndRestore(t *testing.T) {
	t.Parallel()
	ns := nsPostgreSQL
	st.Namespace(t, ns, bucket)
	appPod(t, ns)
	for _, db := range []string{"e2e_src", "e2e_dst"} {
		st.Psql(t, "postgres", "DROP DATABASE IF EXISTS "+db)
		st.Psql(t, "postgres", "CREATE DATABASE "+db)
	}
	st.Psql(t, "e2e_src", `
CREATE TABLE accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
INSERT INTO accounts SELECT g, g % 10, (g * 7919) % 100000, md5(g::text) FROM generate_series(1, 100000) g;
CREATE TABLE blobs (id int PRIMARY KEY, body bytea, note text);
INSERT INTO blobs SELECT g, sha256(g::text::bytea) || '\x00ff'::bytea, 'naïve ☃ ' || g FROM generate_series(1, 2000) g;`)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+dbSecret("pg-app")+`
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: accounts}
spec:
  source:
    postgresql:
      connection:
        host: postgres.databases.svc
        database: e2e_src
        secretRef: {name: pg-app}
  storage: {name: minio}
  retention: {keepLast: 5}
`+hooks)
	b := &v1.Backup{}
	b.Namespace, b.Name = ns, "accounts"
	seen := clusterkit.WaitForPhase(t, st, b, v1.PhaseSucceeded, 3*time.Minute)
	if !slices.Contains(seen, v1.PhaseRunning) {
		t.Errorf("phases seen %v: never Running", seen)
	}
	st.CheckStoredObject(t, b, bucket)
	if b.Status.Checksum == "" || b.Status.RawChecksum == "" || b.Status.RawSize == nil || *b.Status.RawSize <= *b.Status.Size {
		t.Errorf("status lacks raw size or checksums, or the dump did not compress: %+v", b.Status)
	}
	want := map[string]string{"pre-hook": "Succeeded", "dump": "Succeeded", "verify": "Succeeded", "post-hook": "Succeeded", "rotate": "Succeeded"}
	if got := clusterkit.StagePhases(b.Status.Stages); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("status.stages %v, want %v", got, want)
	}
	steps := st.WorkflowSteps(t, ns, b.Status.WorkflowName)
	for name := range want {
		if steps[name] != "Succeeded" {
			t.Errorf("Workflow step %s is %q (steps %v)", name, steps[name], steps)
		}
	}
	if !hookRan(t, ns, "pre-hook") || !hookRan(t, ns, "post-hook") {
		t.Error("the hooks did not run in the application pod")
	}
	out := st.Kubectl(t, "", "get", "backups", "-n", ns)
	if header := strings.Fields(strings.SplitN(out, "\n", 2)[0]); fmt.Sprint(header) != "[NAME STATUS SIZE AGE]" {
		t.Errorf("kubectl get backups prints columns %v", header)
	}
	if !strings.Contains(out, "accounts") || !strings.Contains(out, "Succeeded") || !strings.Contains(out, b.Status.DisplaySize) {
		t.Errorf("kubectl get backups:\n%s", out)
	}

	st.Apply(t, ns, dbSecret("pg-restore")+`
---
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: accounts-copy}
spec:
  from: {backupRef: {name: accounts}}
  target:
    postgresql:
      connection:
        host: postgres.databases.svc
        database: e2e_dst
        secretRef: {name: pg-restore}
`)
	r := &v1.Restore{}
	r.Namespace, r.Name = ns, "accounts-copy"
	clusterkit.WaitForPhase(t, st, r, v1.PhaseSucceeded, 3*time.Minute)
	for _, q := range []string{
		"SELECT count(*), md5(string_agg(aid || ':' || bid || ':' || abalance || ':' || filler, ',' ORDER BY aid)) FROM accounts",
		"SELECT count(*), md5(string_agg(id || ':' || encode(body, 'hex') || ':' || note, ',' ORDER BY id)) FROM blobs",
	} {
		if src, dst := st.Psql(t, "e2e_src", q), st.Psql(t, "e2e_dst", q); src != dst {
			t.Errorf("%s: source %s, restored %s", q, src, dst)
		}
	}
}

// A Backup whose dump command fails ends Failed, names the failing step in
// its status and in an Event, leaves nothing in the bucket, and still runs
// its post-hook.
func TestFailingDump(t *testing.T) {
	t.Parallel()
	ns := nsFailure
	st.Namespace(t, ns, bucket)
	appPod(t, ns)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: broken}
spec:
  source:
    command:
      image: %s
      command: [bash, -c, 'head -c 50000000 /dev/urandom; echo "connection lost" >&2; exit 3']
  storage: {name: minio}
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"])+hooks)
	b := &v1.Backup{}
	b.Namespace, b.Name = ns, "broken"
	clusterkit.WaitForPhase(t, st, b, v1.PhaseFailed, 3*time.Minute)
	stages := clusterkit.StagePhases(b.Status.Stages)
	if stages["dump"] != "Failed" || stages["post-hook"] != "Succeeded" {
		t.Errorf("stages %v: want dump Failed and post-hook Succeeded", stages)
	}
	if !strings.Contains(b.Status.Message, "dump") || !strings.Contains(b.Status.Message, "exit") {
		t.Errorf("status.message %q does not name the failed step and exit", b.Status.Message)
	}
	if !hookRan(t, ns, "post-hook") {
		t.Error("the post-hook did not run after the failed dump")
	}
	var warned bool
	for _, e := range st.Events(t, b) {
		warned = warned || strings.HasPrefix(e, "Warning") && strings.Contains(e, "dump")
	}
	if !warned {
		t.Errorf("no Warning event names the dump step: %v", st.Events(t, b))
	}
	if keys := st.Objects(t, bucket, ns+"/"); len(keys) > 0 {
		t.Errorf("the failed dump left objects: %v", keys)
	}
}

// examples/storage-minio.yaml and examples/mariadb-backup.yaml, applied as
// they are, back up two MariaDB databases with utf8mb4 text and binary
// columns; a Restore brings them back row for row.
func TestMariaDBExample(t *testing.T) {
	t.Parallel()
	ns := nsWiki
	st.Namespace(t, ns, "backups")
	st.MariaDB(t, `DROP DATABASE IF EXISTS wiki; DROP DATABASE IF EXISTS wiki_sessions;
CREATE DATABASE wiki CHARACTER SET utf8mb4; CREATE DATABASE wiki_sessions;
USE wiki;
CREATE TABLE wiki.pages (id INT PRIMARY KEY, title VARCHAR(200), body MEDIUMTEXT, thumb VARBINARY(64)) CHARACTER SET utf8mb4;
INSERT INTO wiki.pages SELECT seq, CONCAT('Seite ', seq, ' 🌍 ümlaut'), REPEAT(CONCAT('line ', seq, '\n'), 50), UNHEX(SHA2(seq, 256)) FROM seq_1_to_5000;
CREATE TABLE wiki_sessions.sessions (id INT PRIMARY KEY, data BLOB);
INSERT INTO wiki_sessions.sessions SELECT seq, RANDOM_BYTES(100) FROM seq_1_to_500;
CREATE USER IF NOT EXISTS 'wiki'@'%' IDENTIFIED BY 'wiki-secret';
GRANT ALL ON wiki.* TO 'wiki'@'%'; GRANT ALL ON wiki_sessions.* TO 'wiki'@'%';
GRANT RELOAD, PROCESS, EVENT ON *.* TO 'wiki'@'%';`)
	st.Kubectl(t, `
apiVersion: v1
kind: Secret
metadata: {name: wiki-mariadb}
stringData: {MARIADB_USER: wiki, MARIADB_PASSWORD: wiki-secret}
---
apiVersion: v1
kind: Service
metadata: {name: mariadb}
spec:
  type: ExternalName
  externalName: mariadb.databases.svc.cluster.local
`, "apply", "-n", ns, "-f", "-")
	for _, f := range []string{"storage-minio.yaml", "mariadb-backup.yaml"} {
		st.Kubectl(t, "", "apply", "-n", ns, "-f", filepath.Join(envtest.RepoRoot(), "examples", f))
	}
	b := &v1.Backup{}
	b.Namespace, b.Name = ns, "wiki-mariadb"
	clusterkit.WaitForPhase(t, st, b, v1.PhaseSucceeded, 3*time.Minute)
	st.CheckStoredObject(t, b, "backups")
	if !strings.HasSuffix(b.Status.Location.Key, ".sql.gz") {
		t.Errorf("key %s: want the gzip extension", b.Status.Location.Key)
	}

	checksums := "SELECT COUNT(*), MD5(GROUP_CONCAT(id, title, body, HEX(thumb) ORDER BY id SEPARATOR ',')) FROM wiki.pages; " +
		"SELECT COUNT(*), MD5(GROUP_CONCAT(id, HEX(data) ORDER BY id)) FROM wiki_sessions.sessions"
	before := st.MariaDB(t, "SET SESSION group_concat_max_len = 1073741824; "+checksums)
	st.MariaDB(t, "DROP DATABASE wiki; DROP DATABASE wiki_sessions")
	st.Apply(t, ns, `
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: wiki-back}
spec:
  from: {backupRef: {name: wiki-mariadb}}
  target:
    mysql:
      flavor: mariadb
      connection:
        host: mariadb.wiki.svc
        secretRef: {name: wiki-root}
`+fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata: {name: wiki-root}
stringData: {username: root, password: %s}
`, st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"]))
	r := &v1.Restore{}
	r.Namespace, r.Name = ns, "wiki-back"
	clusterkit.WaitForPhase(t, st, r, v1.PhaseSucceeded, 3*time.Minute)
	if after := st.MariaDB(t, "SET SESSION group_concat_max_len = 1073741824; "+checksums); after != before {
		t.Errorf("restored databases differ:\nbefore %s\nafter  %s", before, after)
	}
}

// A MongoDB database (FerretDB on the node) is dumped by backflow's own
// engine in the backflow image, encrypted, restore-tested into a scratch
// database, and restored into a fresh database with the same documents.
func TestMongoDB(t *testing.T) {
	t.Parallel()
	ns := nsMongoDB
	st.Namespace(t, ns, bucket)
	port, _ := strconv.Atoi(st.Env["BACKFLOW_CLUSTER_MONGODB_PORT"])
	mongo, err := servers.ConnectFerretDB(st.Env["BACKFLOW_CLUSTER_NODE_IP"], port, st.Env["BACKFLOW_CLUSTER_MONGODB_USER"], st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
	if err != nil {
		t.Fatal(err)
	}
	defer mongo.Stop()
	var docs strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&docs, `{"_id":%d,"user":"nutzer-%d ünïcödé 🚀","amount":{"$numberDouble":"%d.5"},"at":{"$date":{"$numberLong":"%d"}},`+
			`"payload":{"$binary":{"base64":"AP8nIlwK","subType":"00"}},"tags":["t%d"]}`+"\n", i, i, i, 1795000000000+int64(i), i%5)
	}
	for _, coll := range []string{"clicks", "orders"} {
		if err := mongo.Import("events", coll, docs.String()); err != nil {
			t.Fatal(err)
		}
	}
	key, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	identity, recipient := key.String(), key.Recipient().String()
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: events-mongodb}
stringData: {username: %s, password: %s}
---
apiVersion: v1
kind: Secret
metadata: {name: events-age}
stringData: {identity.txt: %s}
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: events}
spec:
  source:
    mongodb:
      connection:
        host: mongodb.databases.svc
        database: events
        secretRef: {name: events-mongodb}
  storage: {name: minio}
  encryption:
    age:
      recipients: [%s]
      identitySecretRef: {name: events-age, key: identity.txt}
  verify:
    restoreTest:
      connection:
        host: mongodb.databases.svc
        database: events_scratch
        secretRef: {name: events-mongodb}
      checkQuery: '{"collection": "orders", "filter": {"_id": {"$gte": 1999}}}'
`, st.Env["BACKFLOW_CLUSTER_MONGODB_USER"], st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"], identity, recipient))
	b := &v1.Backup{}
	b.Namespace, b.Name = ns, "events"
	clusterkit.WaitForPhase(t, st, b, v1.PhaseSucceeded, 3*time.Minute)
	st.CheckStoredObject(t, b, bucket)
	if !strings.HasSuffix(b.Status.Location.Key, ".archive.zst.age") {
		t.Errorf("key %s: want a zstd-compressed, age-encrypted archive", b.Status.Location.Key)
	}
	st.Apply(t, ns, `
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: events-back}
spec:
  from: {backupRef: {name: events}}
  target:
    mongodb:
      drop: true
      rename: [{from: "events.*", to: "events_restored.*"}]
      connection:
        host: mongodb.databases.svc
        secretRef: {name: events-mongodb}
`)
	r := &v1.Restore{}
	r.Namespace, r.Name = ns, "events-back"
	clusterkit.WaitForPhase(t, st, r, v1.PhaseSucceeded, 3*time.Minute)
	for _, coll := range []string{"clicks", "orders"} {
		want, err := mongo.Export("events", coll)
		if err != nil {
			t.Fatal(err)
		}
		got, err := mongo.Export("events_restored", coll)
		if err != nil {
			t.Fatal(err)
		}
		if got != want || strings.Count(got, "\n")+1 != 2000 {
			t.Errorf("%s: restored documents differ (%d bytes, want %d)", coll, len(got), len(want))
		}
	}
	// The restore test dropped its scratch database.
	if names, err := mongo.Client().Database("events_scratch").ListCollectionNames(context.Background(), bson.D{}); err != nil || len(names) > 0 {
		t.Errorf("the scratch database is left with %v (%v)", names, err)
	}
}

// A PVC's paths are backed up and restored into another PVC; a command's
// stdout is backed up and restored into another command's stdin.
func TestPVCAndCommand(t *testing.T) {
	t.Parallel()
	ns := nsFiles
	st.Namespace(t, ns, bucket)
	root := filepath.Join(os.TempDir(), "backflow-e2e-volumes")
	_ = os.RemoveAll(root)
	src, dst := filepath.Join(root, "src"), filepath.Join(root, "dst")
	for _, d := range []string{filepath.Join(src, "uploads", "2026"), filepath.Join(src, "cache"), dst} {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"uploads/2026/report.csv": strings.Repeat("id,value\n1,2\n", 20000),
		"uploads/readme.txt":      "hello from the volume ☃\n",
		"cache/skip.bin":          "not backed up",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st.Kubectl(t, "", "delete", "pvc", "src", "dst", "-n", ns, "--ignore-not-found")
	st.Kubectl(t, "", "delete", "pv", "e2e-files-src", "e2e-files-dst", "--ignore-not-found")
	var pvs strings.Builder
	for _, v := range []struct{ name, path string }{{"src", src}, {"dst", dst}} {
		fmt.Fprintf(&pvs, `
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-files-%[1]s}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: %[2]s}
  claimRef: {namespace: %[3]s, name: %[1]s}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: %[1]s, namespace: %[3]s}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: ""
  volumeName: e2e-files-%[1]s
  resources: {requests: {storage: 1Gi}}
`, v.name, v.path, ns)
	}
	st.Apply(t, ns, pvs.String())
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: uploads}
spec:
  source:
    pvc: {claimName: src, paths: [uploads]}
  storage: {name: minio}
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: numbers}
spec:
  source:
    command:
      image: %[1]s
      command: [seq, "1", "300000"]
  storage: {name: minio}
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]))
	uploads, numbers := &v1.Backup{}, &v1.Backup{}
	uploads.Namespace, uploads.Name = ns, "uploads"
	numbers.Namespace, numbers.Name = ns, "numbers"
	clusterkit.WaitForPhase(t, st, uploads, v1.PhaseSucceeded, 3*time.Minute)
	clusterkit.WaitForPhase(t, st, numbers, v1.PhaseSucceeded, 3*time.Minute)
	st.CheckStoredObject(t, uploads, bucket)
	st.CheckStoredObject(t, numbers, bucket)
	seq, err := exec.Command("seq", "1", "300000").Output()
	if err != nil {
		t.Fatal(err)
	}
	if sum := blake3.Sum256(seq); numbers.Status.RawChecksum != "blake3:"+hex.EncodeToString(sum[:]) {
		t.Errorf("the command's stream has the checksum %s, seq printed blake3:%x", numbers.Status.RawChecksum, sum)
	}

	st.Apply(t, ns, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: uploads-copy}
spec:
  from: {backupRef: {name: uploads}}
  target:
    pvc: {claimName: dst}
---
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: numbers-count}
spec:
  from: {backupRef: {name: numbers}}
  target:
    command:
      image: %s
      command: [bash, -c, 'test "$(wc -l)" = 300000']
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]))
	for _, name := range []string{"uploads-copy", "numbers-count"} {
		r := &v1.Restore{}
		r.Namespace, r.Name = ns, name
		clusterkit.WaitForPhase(t, st, r, v1.PhaseSucceeded, 3*time.Minute)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if strings.HasPrefix(name, "cache/") {
			if err == nil {
				t.Errorf("%s was restored but is not in the backup's paths", name)
			}
			continue
		}
		if err != nil || string(got) != content {
			t.Errorf("restored %s: %v (%d bytes, want %d)", name, err, len(got), len(content))
		}
	}
}

// A BackupSchedule that runs every minute creates Backups, and rotate and
// the history limit keep only the newest.
func TestSchedule(t *testing.T) {
	t.Parallel()
	ns := nsSchedule
	st.Namespace(t, ns, bucket)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: BackupSchedule
metadata: {name: minutely}
spec:
  schedule: "* * * * *"
  successfulBackupsHistoryLimit: 2
  template:
    spec:
      source:
        command:
          image: %s
          command: [date, --iso-8601=ns]
      storage: {name: minio}
      retention: {keepLast: 2}
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]))
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Minute)
	succeeded := map[string]bool{}
	for len(succeeded) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d successful runs after 5 minutes", len(succeeded))
		}
		var list v1.BackupList
		if err := st.Kube.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "minutely"}); err != nil {
			t.Fatal(err)
		}
		for _, b := range list.Items {
			if b.Status.Phase == v1.PhaseSucceeded && clusterkit.StagePhases(b.Status.Stages)["rotate"] == "Succeeded" {
				succeeded[b.Name] = true
			}
		}
		time.Sleep(2 * time.Second)
	}
	st.Kubectl(t, "", "patch", "backupschedule", "minutely", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	// The history limit is applied on the schedule's next reconciles.
	var done []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		var list v1.BackupList
		if err := st.Kube.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "minutely"}); err != nil {
			t.Fatal(err)
		}
		done = nil
		for _, b := range list.Items {
			if b.Status.Phase == v1.PhaseSucceeded {
				done = append(done, b.Name)
			}
		}
		if len(done) <= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(done) > 2 {
		t.Errorf("%d succeeded Backups kept a minute after the last run, history limit is 2: %v", len(done), done)
	}
	var backups []string
	for _, k := range st.Objects(t, bucket, ns+"/") {
		if !strings.HasSuffix(k, stages.ManifestSuffix) {
			backups = append(backups, k)
		}
	}
	if len(backups) != 2 {
		t.Errorf("%d backups in the series after 3 runs with keepLast 2: %v", len(backups), backups)
	}
	var sched v1.BackupSchedule
	if err := st.Kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: "minutely"}, &sched); err != nil {
		t.Fatal(err)
	}
	if sched.Status.LastSuccessfulTime == nil {
		t.Errorf("schedule status has no last success: %+v", sched.Status)
	}
}
