//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/test/clusterkit"
	"github.com/backflow-dev/backflow/test/envtest"
)

// Namespaces of the scenarios; `make chaos` gives each the workflow
// ServiceAccount through the chart.
const (
	nsController = "chaos-controller"
	nsArgo       = "chaos-argo"
	nsMinIO      = "chaos-minio"
	nsDatabase   = "chaos-database"
	nsDumpExit   = "chaos-dump-exit"
	nsPodDeleted = "chaos-pod-deleted"
	nsFifty      = "chaos-fifty"
	nsSchedule   = "chaos-schedule"
	nsCorrupt    = "chaos-corrupt"
)

// TestFaults runs the schedule scenario, which takes five scheduled
// minutes, beside the others, which run one after the other because each
// fault hits the whole stack.
func TestFaults(t *testing.T) {
	t.Run("schedule", func(t *testing.T) {
		t.Parallel()
		scheduleSharingDirectory(t)
	})
	t.Run("faults", func(t *testing.T) {
		t.Parallel()
		for _, s := range []struct {
			name string
			run  func(*testing.T)
		}{
			{"controller-killed", controllerKilled},
			{"argo-restarted", argoRestarted},
			{"minio-outage", minioOutage},
			{"database-killed", databaseKilled},
			{"dump-exit-1", dumpExits},
			{"dump-pod-deleted", dumpPodDeleted},
			{"fifty-at-once", fiftyAtOnce},
			{"corrupted-object", corruptedObjects},
		} {
			t.Run(s.name, func(t *testing.T) {
				scenario(t, s.name)
				s.run(t)
			})
		}
	})
}

func names(streams []stream) []string {
	var out []string
	for _, s := range streams {
		out = append(out, s.name)
	}
	return out
}

// numbered is n streams of mib MiB each, named run-00, run-01, ...,
// sleeping delay seconds after each MiB.
func numbered(n, mib int, delay string) []stream {
	out := make([]stream, n)
	for i := range out {
		out[i] = stream{name: fmt.Sprintf("run-%02d", i), mib: mib, delay: delay}
	}
	return out
}

// finishStreams waits for the streams' Backups, asserts that every one
// Succeeded and holds what its command wrote, and restores the first one
// through a Restore.
func finishStreams(t *testing.T, ns string, streams []stream, timeout time.Duration) map[string]*v1.Backup {
	t.Helper()
	backups := waitFinished(t, ns, names(streams), timeout)
	for _, s := range streams {
		checkSucceeded(t, backups[s.name], s.rawChecksum())
	}
	if b := backups[streams[0].name]; b.Status.Phase == v1.PhaseSucceeded {
		restoreMatches(t, b, streams[0].sha256())
	}
	checkWorkflows(t, ns)
	return backups
}

// 1. The backflow controller is killed (SIGKILL) while it creates the
// Workflows of 20 new Backups, and again while they run.
func controllerKilled(t *testing.T) {
	ns := nsController
	foreign := setup(t, ns)
	streams := numbered(20, 40, "0.5")
	applyStreams(t, ns, streams)
	workflows := func() int {
		var list v1.BackupList
		if err := st.Kube.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		var n int
		for _, b := range list.Items {
			if b.Status.WorkflowName != "" {
				n++
			}
		}
		return n
	}
	waitUntil(t, "the controller to create a first Workflow", 2*time.Minute, func() bool { return workflows() > 0 })
	t.Logf("kill 1: %d of 20 Backups have a Workflow", workflows())
	killContainer(t, "backflow-system", backflowController)
	waitUntil(t, "10 dumps to run", 5*time.Minute, func() bool { return dumpsRunning(t, ns) >= 10 })
	t.Logf("kill 2: %d dumps running", dumpsRunning(t, ns))
	killContainer(t, "backflow-system", backflowController)
	finishStreams(t, ns, streams, 8*time.Minute)
	checkBucket(t, ns, foreign)
}

// 2. Argo's workflow-controller is killed and restarted by the kubelet
// while five dumps stream.
func argoRestarted(t *testing.T) {
	ns := nsArgo
	foreign := setup(t, ns)
	streams := numbered(5, 48, "0.4")
	applyStreams(t, ns, streams)
	waitUntil(t, "five dumps to run", 5*time.Minute, func() bool { return dumpsRunning(t, ns) == 5 })
	killContainer(t, "argo", argoController)
	finishStreams(t, ns, streams, 8*time.Minute)
	checkBucket(t, ns, foreign)
}

// 3. MinIO is stopped for 30 s while two dumps upload, then started: Argo
// retries the dumps (exit code 75, transient) and they succeed; no attempt
// leaves an upload behind.
func minioOutage(t *testing.T) {
	ns := nsMinIO
	foreign := setup(t, ns)
	streams := []stream{{name: "upload-a", mib: 96, delay: "0.1"}, {name: "upload-b", mib: 96, delay: "0.1"}}
	applyStreams(t, ns, streams)
	waitUntil(t, "a part of the upload to be stored", 5*time.Minute, func() bool { return uploadInProgress(t, ns+"/") })
	stopServer(t, "minio", "TERM")
	for _, b := range listBackups(t, ns) {
		if b.Status.Phase == v1.PhaseSucceeded || b.Status.Phase == v1.PhaseFailed {
			t.Errorf("%s had ended %s before MinIO stopped: the outage is not mid-upload", b.Name, b.Status.Phase)
		}
	}
	time.Sleep(30 * time.Second) // the outage itself
	clusterScript(t, "start-service", "minio")
	finishStreams(t, ns, streams, 10*time.Minute)
	checkBucket(t, ns, foreign)
}

// 4. The database server is killed (SIGKILL of every process) while pg_dump
// and mariadb-dump read a 200 MB table of random hex (stored as more than one 16 MiB part), then started again. The Backup fails
// naming its dump, or is retried and succeeds; it never leaves a partial
// object that looks like a backup.
func databaseKilled(t *testing.T) {
	ns := nsDatabase
	foreign := setup(t, ns)
	freshPostgreSQL(t, "chaos_big", "CREATE TABLE big AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) AS filler FROM generate_series(1, 1500000) g")
	st.MariaDB(t, "DROP DATABASE IF EXISTS chaos_big; CREATE DATABASE chaos_big; USE chaos_big; "+
		"CREATE TABLE big (id INT PRIMARY KEY, filler VARCHAR(200)) ENGINE=InnoDB; "+
		"INSERT INTO big SELECT seq, REPEAT(MD5(seq), 4) FROM seq_1_to_600000")
	st.Apply(t, ns, databaseSecret("postgres", "postgres")+databaseSecret("mariadb", "root"))
	for _, c := range []struct {
		server, name, tool, source string
		dumping                    func() bool
	}{
		{"postgresql", "postgresql", "pg_dump", `
    postgresql:
      connection: {host: postgres.databases.svc, database: chaos_big, secretRef: {name: postgres}}`,
			func() bool {
				out, err := psqlQuiet("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump' AND query LIKE 'COPY %'")
				return err == nil && out != "0" || uploadInProgress(t, ns+"/")
			}},
		{"mariadb", "mariadb", "mariadb-dump", `
    mysql:
      flavor: mariadb
      databases: [chaos_big]
      connection: {host: mariadb.databases.svc, secretRef: {name: mariadb}}`,
			func() bool {
				out, err := mariadbQuiet("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT /*!40001 SQL_NO_CACHE */%'")
				return err == nil && out != "0" || uploadInProgress(t, ns+"/")
			}},
	} {
		st.Apply(t, ns, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: %s}
spec:
  source:%s
  storage: {name: minio}
  encryption:
    age:
      recipients: [%s]
      identitySecretRef: {name: chaos-age, key: identity.txt}
`, c.name, c.source, identity.Recipient()))
		// Mid-dump: the server is seen sending the table, or a part of the
		// dump is stored already (a sample of the server may miss a fast
		// COPY on a busy machine).
		waitUntil(t, c.server+"'s dump to read the table", 5*time.Minute, c.dumping)
		stopServer(t, c.server, "KILL")
		if b := getBackup(t, ns, c.name); b.Status.Phase == v1.PhaseSucceeded || b.Status.Phase == v1.PhaseFailed {
			t.Errorf("%s had ended %s before %s was killed: the kill is not mid-dump", b.Name, b.Status.Phase, c.server)
		}
		clusterScript(t, "start-service", c.server)
		b := waitFinished(t, ns, []string{c.name}, 8*time.Minute)[c.name]
		t.Logf("%s: %s %q", c.name, b.Status.Phase, b.Status.Message)
		if b.Status.Phase == v1.PhaseFailed {
			checkFailed(t, b, "step dump failed", c.tool)
		} else {
			checkSucceeded(t, b, "")
		}
	}
	checkWorkflows(t, ns)
	checkBucket(t, ns, foreign)
}

// freshPostgreSQL makes an empty database db, then runs sql in it.
func freshPostgreSQL(t *testing.T, db, sql string) {
	t.Helper()
	st.Psql(t, "postgres", "DROP DATABASE IF EXISTS "+db)
	st.Psql(t, "postgres", "CREATE DATABASE "+db)
	if sql != "" {
		st.Psql(t, db, sql)
	}
}

// databaseSecret is a Secret named name with a user of the stack's
// databases and their password.
func databaseSecret(name, user string) string {
	return fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: %s}
stringData: {username: %s, password: %s}
`, name, user, st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
}

// psqlQuiet and mariadbQuiet run a query and return its output, for probes
// that poll while the server may be gone.
func psqlQuiet(sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-h", st.Env["BACKFLOW_CLUSTER_NODE_IP"], "-p", st.Env["BACKFLOW_CLUSTER_POSTGRES_PORT"], "-U", "postgres", "-d", "postgres", "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func mariadbQuiet(sql string) (string, error) {
	out, err := exec.Command("mariadb", "--no-defaults", "-h", st.Env["BACKFLOW_CLUSTER_NODE_IP"], "-P", st.Env["BACKFLOW_CLUSTER_MARIADB_PORT"],
		"-uroot", "-p"+st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"], "-N", "-B", "-e", sql).Output()
	return strings.TrimSpace(string(out)), err
}

// 5a. A dump writes 200 MiB and exits 1: the Backup fails at once (a
// permanent failure is not retried) naming the dump's exit, and nothing is
// left in the bucket.
func dumpExits(t *testing.T) {
	ns := nsDumpExit
	foreign := setup(t, ns)
	applyStreams(t, ns, []stream{{name: "exits", mib: 200, delay: "0", exit: 1}})
	b := waitFinished(t, ns, []string{"exits"}, 5*time.Minute)["exits"]
	// The root cause, as the dump step printed it, not only Argo's "exit
	// code 1" of the step's container.
	checkFailed(t, b, "step dump failed", "bash failed: exit code 1")
	if steps := st.WorkflowSteps(t, ns, b.Status.WorkflowName); steps["dump"] != "Failed" {
		t.Errorf("dump step %q, want Failed", steps["dump"])
	}
	if n := dumpAttempts(t, ns, b.Status.WorkflowName); n != 1 {
		t.Errorf("the dump ran %d times; a command that exits 1 is not retried", n)
	}
	checkWorkflows(t, ns)
	checkBucket(t, ns, foreign)
}

// dumpAttempts counts the pods Argo ran for a Workflow's dump step: the
// scheduled pods by UID, as Argo may run a deleted pod again under the same
// name within one attempt of the step as well as in a retry. Events of an
// earlier run of the suite, whose Workflow had the same name and so its pods
// too, are older than this Workflow.
func dumpAttempts(t *testing.T, ns, workflow string) int {
	t.Helper()
	created := st.Kubectl(t, "", "get", "workflow", "-n", ns, workflow, "-o", "jsonpath={.metadata.creationTimestamp}")
	out := st.Kubectl(t, "", "get", "events", "-n", ns, "--field-selector", "reason=Scheduled,involvedObject.kind=Pod",
		"-o", `jsonpath={range .items[*]}{.involvedObject.name} {.involvedObject.uid} {.metadata.creationTimestamp}{"\n"}{end}`)
	pods := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		// RFC 3339 times in UTC compare as strings.
		if f := strings.Fields(line); len(f) == 3 && strings.HasPrefix(f[0], workflow+"-dump-") && f[2] >= strings.TrimSpace(created) {
			pods[f[1]] = true
		}
	}
	return len(pods)
}

// 5b. The dump's pod is deleted while it streams: Argo runs the step again
// and the Backup succeeds with the whole stream; the lost attempt leaves no
// upload behind.
func dumpPodDeleted(t *testing.T) {
	ns := nsPodDeleted
	foreign := setup(t, ns)
	streams := []stream{{name: "loses-pod", mib: 96, delay: "0.1"}}
	applyStreams(t, ns, streams)
	waitUntil(t, "a part of the upload to be stored", 5*time.Minute, func() bool { return uploadInProgress(t, ns+"/") })
	st.Kubectl(t, "", "delete", "pod", "-n", ns, "-l", "workflows.argoproj.io/workflow", "--wait=false")
	backups := finishStreams(t, ns, streams, 8*time.Minute)
	if b := backups["loses-pod"]; b.Status.WorkflowName != "" {
		if n := dumpAttempts(t, ns, b.Status.WorkflowName); n < 2 {
			t.Errorf("the dump ran %d times after its pod was deleted", n)
		}
	}
	checkBucket(t, ns, foreign)
}

// 6. 50 Backups created at once all succeed, each with its own status.
func fiftyAtOnce(t *testing.T) {
	ns := nsFifty
	foreign := setup(t, ns)
	streams := numbered(50, 2, "0")
	applyStreams(t, ns, streams)
	backups := finishStreams(t, ns, streams, 12*time.Minute)
	keys := map[string]string{}
	for _, b := range backups {
		if b.Status.Location == nil {
			continue
		}
		if other, dup := keys[b.Status.Location.Key]; dup {
			t.Errorf("%s and %s both name %s", b.Name, other, b.Status.Location.Key)
		}
		keys[b.Status.Location.Key] = b.Name
	}
	checkBucket(t, ns, foreign)
}

// 7. A BackupSchedule every minute with keepLast 2 shares its directory
// with another schedule's backup and a file backflow did not write; after
// five runs, rotate kept at most the two newest (and the newest verified)
// of its own series, and deleted neither of the others.
func scheduleSharingDirectory(t *testing.T) {
	scenario(t, "schedule-shared-directory")
	ns := nsSchedule
	foreign := setup(t, ns)
	putForeign(t, foreign, ns+"/shared/inventory.csv", "id,item\n1,not a backup\n")
	schedule := func(name, cron, extra string) string {
		return fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: BackupSchedule
metadata: {name: %s}
spec:
  schedule: %q
  successfulBackupsHistoryLimit: 20
  failedBackupsHistoryLimit: 20
  template:
    spec:
      source:
        command:
          image: %s
          command: [bash, -c, 'head -c "$1" /dev/urandom', random]
          args: ["3000000"]
      storage:
        name: minio
        path: '{{ .Namespace }}/shared/{{ .Series }}-{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}'
      encryption:
        age:
          recipients: [%s]
          identitySecretRef: {name: chaos-age, key: identity.txt}
%s`, name, cron, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"], identity.Recipient(), extra)
	}
	// The neighbour runs once, now, and keeps its backup.
	st.Apply(t, ns, schedule("neighbour", "0 0 1 1 *", ""))
	st.Kubectl(t, "", "annotate", "-n", ns, "backupschedule", "neighbour", v1.AnnotationTrigger+"=once", "--overwrite")
	var neighbour *v1.Backup
	waitUntil(t, "the neighbour's run", 5*time.Minute, func() bool {
		for _, b := range listBackups(t, ns, client.MatchingLabels{v1.LabelSchedule: "neighbour"}) {
			if b.Status.Phase == v1.PhaseSucceeded || b.Status.Phase == v1.PhaseFailed {
				neighbour = &b
				return true
			}
		}
		return false
	})
	checkSucceeded(t, neighbour, "")
	st.Apply(t, ns, schedule("rotating", "* * * * *", "      retention: {keepLast: 2}\n"))
	finished := func() []v1.Backup {
		var out []v1.Backup
		for _, b := range listBackups(t, ns, client.MatchingLabels{v1.LabelSchedule: "rotating"}) {
			if b.Status.Phase == v1.PhaseSucceeded || b.Status.Phase == v1.PhaseFailed {
				out = append(out, b)
			}
		}
		return out
	}
	waitUntil(t, "five runs of the rotating schedule", 9*time.Minute, func() bool { return len(finished()) >= 5 })
	st.Kubectl(t, "", "patch", "backupschedule", "rotating", "-n", ns, "--type=merge", "-p", `{"spec":{"suspend":true}}`)
	waitUntil(t, "the rotating schedule's last run", 5*time.Minute, func() bool {
		return len(finished()) == len(listBackups(t, ns, client.MatchingLabels{v1.LabelSchedule: "rotating"}))
	})
	runs := finished()
	t.Logf("%d runs of the rotating schedule", len(runs))
	// Newest first.
	slices.SortFunc(runs, func(a, b v1.Backup) int { return b.CreationTimestamp.Compare(a.CreationTimestamp.Time) })
	// keepLast 2 keeps the two newest backups of the series, which are the
	// two newest successful runs (each verified: verify is on); a failed run
	// stored nothing.
	allowed := map[string]bool{}
	for _, b := range runs {
		if b.Status.Phase != v1.PhaseSucceeded {
			t.Errorf("run %s ended %s: %s", b.Name, b.Status.Phase, b.Status.Message)
			continue
		}
		if len(allowed) < 2 {
			allowed[b.Name] = true
		}
		if clusterkit.StagePhases(b.Status.Stages)["rotate"] != "Succeeded" {
			t.Errorf("run %s: rotate %q", b.Name, clusterkit.StagePhases(b.Status.Stages)["rotate"])
		}
	}
	var kept []string
	for i := range runs {
		b := &runs[i]
		if b.Status.Location == nil {
			continue
		}
		key := st.StoredKey(t, b)
		_, err := st.S3.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{})
		switch {
		case err == nil && allowed[b.Name]:
			kept = append(kept, b.Name)
			checkSucceeded(t, b, "")
		case err == nil:
			kept = append(kept, b.Name)
			t.Errorf("run %s is older than the two newest backups and was not rotated", b.Name)
		case allowed[b.Name]:
			t.Errorf("run %s, one of the two newest backups, was deleted: %v", b.Name, err)
		}
	}
	t.Logf("kept %v of the rotating series", kept)
	// The neighbour's backup is another series in the same directory.
	checkSucceeded(t, getBackup(t, ns, neighbour.Name), "")
	checkWorkflows(t, ns)
	checkBucket(t, ns, foreign)
}

// 8. A stored object with one flipped byte, and one cut short: backflow
// verify and a Restore both fail naming the mismatch, and the Restore's
// target database stays empty.
func corruptedObjects(t *testing.T) {
	ns := nsCorrupt
	foreign := setup(t, ns)
	freshPostgreSQL(t, "chaos_small", "CREATE TABLE items AS SELECT g AS id, md5(g::text) AS name FROM generate_series(1, 200000) g")
	st.Apply(t, ns, databaseSecret("postgres", "postgres"))
	damages := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1000] }},
	}
	for _, d := range damages {
		st.Apply(t, ns, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: %s}
spec:
  source:
    postgresql:
      connection: {host: postgres.databases.svc, database: chaos_small, secretRef: {name: postgres}}
  storage: {name: minio}
  encryption:
    age:
      recipients: [%s]
      identitySecretRef: {name: chaos-age, key: identity.txt}
`, d.name, identity.Recipient()))
	}
	identityFile := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(identityFile, []byte(identity.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range damages {
		b := waitFinished(t, ns, []string{d.name}, 5*time.Minute)[d.name]
		checkSucceeded(t, b, "")
		if b.Status.Phase != v1.PhaseSucceeded {
			continue
		}
		key := st.StoredKey(t, b)
		obj, err := st.S3.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		damaged := d.damage(data)
		if _, err := st.S3.PutObject(context.Background(), bucket, key, bytes.NewReader(damaged), int64(len(damaged)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}

		verify := exec.Command(filepath.Join(envtest.RepoRoot(), "bin/backflow"), "verify",
			"--storage", fmt.Sprintf("s3://%s/%s?endpoint=%s&pathStyle=true", bucket, ns, st.Env["BACKFLOW_CLUSTER_MINIO"]),
			"--key", b.Status.Location.Key, "--identity-file", identityFile)
		verify.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+st.Env["BACKFLOW_CLUSTER_MINIO_USER"], "AWS_SECRET_ACCESS_KEY="+st.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"])
		out, err := verify.CombinedOutput()
		if err == nil {
			t.Errorf("%s: backflow verify of the %s object succeeded:\n%s", d.name, d.name, out)
		} else if !mentionsMismatch(string(out)) {
			t.Errorf("%s: backflow verify failed without naming the mismatch:\n%s", d.name, out)
		}
		t.Logf("%s: backflow verify: %s", d.name, strings.TrimSpace(string(out)))

		target := "chaos_restored_" + d.name
		freshPostgreSQL(t, target, "")
		st.Apply(t, ns, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: restore-%s}
spec:
  from: {backupRef: {name: %s}}
  target:
    postgresql:
      connection: {host: postgres.databases.svc, database: %s, secretRef: {name: postgres}}
`, d.name, d.name, target))
		r := &v1.Restore{}
		r.Namespace, r.Name = ns, "restore-"+d.name
		clusterkit.WaitForFinish(t, st, r, 5*time.Minute)
		if r.Status.Phase != v1.PhaseFailed {
			t.Errorf("%s: the Restore of the %s object ended %s", d.name, d.name, r.Status.Phase)
		} else if !mentionsMismatch(r.Status.Message) {
			t.Errorf("%s: the Restore failed without naming the mismatch: %q", d.name, r.Status.Message)
		}
		t.Logf("%s: Restore %s: %s", d.name, r.Status.Phase, r.Status.Message)
		if n := st.Psql(t, target, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"); n != "0" {
			t.Errorf("%s: the failed Restore left %s relations in %s", d.name, n, target)
		}
		// The damaged object is what the test made; it is not checked as a
		// backup below.
		foreign[key] = sha256Hex(damaged)
		foreign[key+stages.ManifestSuffix] = manifestChecksum(t, key)
	}
	checkWorkflows(t, ns)
	checkBucket(t, ns, foreign)
}

// mentionsMismatch says whether a message names a checksum or size
// mismatch.
func mentionsMismatch(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "mismatch") || strings.Contains(s, "checksum") && strings.Contains(s, "match") || strings.Contains(s, "size") && strings.Contains(s, "match")
}

func manifestChecksum(t *testing.T, key string) string {
	_, sum := st.ObjectChecksum(t, bucket, key+stages.ManifestSuffix)
	return sum
}
