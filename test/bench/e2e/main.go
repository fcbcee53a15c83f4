// Command e2e measures what a user waits for on the local cluster
// (test/cluster): the wall time from creating a Backup of a PostgreSQL
// database to its Succeeded, split into the controller's part, Argo's
// scheduling, each step pod's start and its work, against one pod running the
// shell pipeline users write today (`pg_dump | gzip -6 | age -r | mc pipe`)
// on the same cluster, database and MinIO; then 1, 10 and 50 Backups at once:
// backups per minute, and the CPU and peak RSS of backflow's controller and
// Argo's workflow-controller. Run it with `make bench-e2e`, which brings the
// cluster up and installs backflow.
//
// The same pipeline also runs as a Workflow of one step: what Argo alone
// costs a run, beside which backflow's three steps are measured too.
//
// It ends with `ratio NAME VALUE` lines, the shell pod's time over
// backflow's (higher is better, as in bench-stages), and `throughput`,
// `cpu` and `rss` lines for each batch.
//
//	BACKFLOW_BENCH_E2E_LARGE_MB     the large database's pg_dump size (1024)
//	BACKFLOW_BENCH_E2E_ROUNDS       interleaved rounds of each single run (3; 1 for the large one)
//	BACKFLOW_BENCH_E2E_BATCHES      Backups at once, comma-separated (1,10,50)
//	BACKFLOW_BENCH_E2E_ONLY         single or batches: one half alone
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/test/clusterkit"

	"github.com/backflow-dev/backflow/test/bench/procfs"
)

const (
	namespace = "bench-e2e"
	// shellAccount runs the one-step Workflow of the shell pipeline: what
	// Argo's executor needs, and nothing else.
	shellAccount = "shell-workflow"
	// shellStep names the shell pipeline's container, and the template of
	// its one-step Workflow.
	shellStep = "pipeline"
	bucket    = "bench"
	small     = "bench_10m"
	large     = "bench_large"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func run() error {
	st, err := clusterkit.Load()
	if err != nil {
		return fmt.Errorf("%w (make bench-e2e brings the cluster up)", err)
	}
	shellImage := os.Getenv("BACKFLOW_BENCH_SHELL_IMAGE")
	if shellImage == "" {
		return fmt.Errorf("set BACKFLOW_BENCH_SHELL_IMAGE (make bench-e2e does)")
	}
	largeMB := envInt("BACKFLOW_BENCH_E2E_LARGE_MB", 1024)
	rounds := envInt("BACKFLOW_BENCH_E2E_ROUNDS", 3)
	var batches []int
	for _, f := range strings.Split(cmp(os.Getenv("BACKFLOW_BENCH_E2E_BATCHES"), "1,10,50"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("BACKFLOW_BENCH_E2E_BATCHES: %q is not a count", f)
		}
		batches = append(batches, n)
	}
	only := os.Getenv("BACKFLOW_BENCH_E2E_ONLY")

	b, err := newBench(st, shellImage)
	if err != nil {
		return err
	}
	defer b.stop()
	fmt.Printf("machine: %d cores; load average %s\n", runtime.NumCPU(), procfs.LoadAverage())
	if err := b.setup(map[string]int{small: 10, large: largeMB}); err != nil {
		return err
	}

	if only == "" || only == "single" {
		type times struct{ backflow, shell, shellWorkflow []float64 }
		results := map[string]*times{}
		for _, c := range []struct {
			db     string
			label  string
			rounds int
		}{{small, "10m", rounds}, {large, sizeLabel(largeMB), 1}} {
			p := &times{}
			results[c.label] = p
			for r := 1; r <= c.rounds; r++ {
				// Interleaved, so that both see the same machine.
				s, err := b.shellRun(c.db, fmt.Sprintf("shell-%s-%d", c.label, r))
				if err != nil {
					return err
				}
				p.shell = append(p.shell, s.Seconds())
				w, err := b.shellWorkflowRun(c.db, fmt.Sprintf("shell-wf-%s-%d", c.label, r))
				if err != nil {
					return err
				}
				p.shellWorkflow = append(p.shellWorkflow, w.Seconds())
				d, err := b.backupRun(c.db, fmt.Sprintf("e2e-%s-%d", c.label, r))
				if err != nil {
					return err
				}
				p.backflow = append(p.backflow, d.Seconds())
			}
		}
		for _, label := range []string{"10m", sizeLabel(largeMB)} {
			p := results[label]
			bf, sh, shw := median(p.backflow), median(p.shell), median(p.shellWorkflow)
			fmt.Printf("time e2e_%s_seconds %.1f\ntime shell_pod_%s_seconds %.1f\ntime shell_workflow_%s_seconds %.1f\n", label, bf, label, sh, label, shw)
			fmt.Printf("ratio e2e_%s_vs_shell_pod %.2f\n", label, sh/bf)
			// What Argo alone costs against the bare pod, and backflow's three
			// steps against Argo's one.
			fmt.Printf("ratio shell_workflow_%s_vs_shell_pod %.2f\n", label, sh/shw)
			fmt.Printf("ratio e2e_%s_vs_shell_workflow %.2f\n", label, shw/bf)
		}
	}
	if only == "" || only == "batches" {
		for _, n := range batches {
			if err := b.batch(n); err != nil {
				return err
			}
		}
	}
	fmt.Printf("load average at the end %s\n", procfs.LoadAverage())
	return nil
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func sizeLabel(mb int) string {
	if mb%1024 == 0 {
		return fmt.Sprintf("%dg", mb/1024)
	}
	return fmt.Sprintf("%dm", mb)
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	return s[len(s)/2]
}

type bench struct {
	st         *clusterkit.Stack
	shellImage string
	recipient  string
	watch      *watcher
}

func newBench(st *clusterkit.Stack, shellImage string) (*bench, error) {
	w, err := startWatcher(st.Env["KUBECONFIG"], namespace)
	if err != nil {
		return nil, err
	}
	return &bench{st: st, shellImage: shellImage, watch: w}, nil
}

func (b *bench) stop() { b.watch.stop() }

func (b *bench) kubectl(stdin string, args ...string) error {
	cmd := b.st.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (b *bench) psql(db, sql string) (string, error) {
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", b.st.Env["BACKFLOW_CLUSTER_NODE_IP"],
		"-p", b.st.Env["BACKFLOW_CLUSTER_POSTGRES_PORT"], "-U", "postgres", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+b.st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// rowBytes is about what one row of the bench table takes in pg_dump's
// plain output.
const rowBytes = 150

// setup fills the databases (kept between runs: filling 1 GB takes minutes),
// and writes the storage, the database Secret and an age key pair, and
// clears the namespace's runs and objects.
func (b *bench) setup(sizesMB map[string]int) error {
	ctx := context.Background()
	for db, mb := range sizesMB {
		rows := mb << 20 / rowBytes
		want := fmt.Sprintf("rows %d", rows)
		have, _ := b.psql(db, "SELECT obj_description('bench'::regclass)")
		if have == want {
			continue
		}
		fmt.Printf("filling %s with %d rows (about %d MB of pg_dump output; once)\n", db, rows, mb)
		start := time.Now()
		if _, err := b.psql("postgres", "DROP DATABASE IF EXISTS "+db); err != nil {
			return err
		}
		if _, err := b.psql("postgres", "CREATE DATABASE "+db); err != nil {
			return err
		}
		if _, err := b.psql(db, fmt.Sprintf(`
CREATE TABLE bench AS SELECT g AS id, md5(g::text) AS name, (g * 7919) %% 100000 AS amount,
  timestamptz '2026-01-01' + g * interval '1 second' AS at, md5((g * 3)::text) || md5((g * 5)::text) AS filler
FROM generate_series(1::bigint, %d) g;
ALTER TABLE bench ADD PRIMARY KEY (id);
COMMENT ON TABLE bench IS '%s'`, rows, want)); err != nil {
			return err
		}
		fmt.Printf("  filled in %s\n", time.Since(start).Round(time.Second))
	}

	id, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	b.recipient = id.Recipient().String()
	if ok, err := b.st.S3.BucketExists(ctx, bucket); err != nil {
		return err
	} else if !ok {
		if err := b.st.S3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
			return err
		}
	}
	if err := b.clear(); err != nil {
		return err
	}
	return b.kubectl(b.st.StorageManifest(namespace, bucket)+fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: pg}
stringData: {username: postgres, password: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: age}
stringData: {identity: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: shell}
stringData:
  PGPASSWORD: %[1]s
  MC_HOST_bench: http://%[3]s:%[4]s@minio.minio.svc:9000
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: %[5]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: %[5]s}
rules:
- {apiGroups: [argoproj.io], resources: [workflowtaskresults], verbs: [create, patch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: %[5]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: %[5]s}
subjects:
- {kind: ServiceAccount, name: %[5]s}
`, b.st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"], id.String(), b.st.Env["BACKFLOW_CLUSTER_MINIO_USER"], b.st.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], shellAccount), "apply", "-n", namespace, "-f", "-")
}

// clear deletes the namespace's Backups (waiting for their Workflows and
// pods to go), pods and objects, so that a run sees an idle namespace.
func (b *bench) clear() error {
	for _, kind := range []string{"backups", "pods"} {
		if err := b.kubectl("", "delete", kind, "--all", "-n", namespace, "--wait=true", "--timeout=300s"); err != nil {
			return err
		}
	}
	ctx := context.Background()
	for o := range b.st.S3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: namespace + "/", Recursive: true}) {
		if o.Err == nil {
			_ = b.st.S3.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	// Until the Workflows' pods are gone too.
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var pods corev1.PodList
		if err := b.st.Kube.List(ctx, &pods, client.InNamespace(namespace)); err != nil {
			return err
		}
		var wfs wfv1.WorkflowList
		if err := b.st.Kube.List(ctx, &wfs, client.InNamespace(namespace)); err != nil {
			return err
		}
		if len(pods.Items) == 0 && len(wfs.Items) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d pods and %d Workflows left in %s", len(pods.Items), len(wfs.Items), namespace)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// backupSpec is a Backup of db as a user writes one: encrypted, verified
// (the checksums, read back and decrypted) and rotated.
func (b *bench) backup(name, db string) *v1.Backup {
	keep := int32(3)
	return &v1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: v1.BackupSpec{
			Source: v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Connection: v1.DatabaseConnection{
				Host: "postgres.databases.svc", Database: db, SecretRef: &v1.ConnectionSecretRef{Name: "pg"},
			}}},
			Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
			Encryption: &v1.Encryption{Age: &v1.AgeEncryption{
				Recipients:        []string{b.recipient},
				IdentitySecretRef: &v1.SecretKeySelector{Name: "age", Key: "identity"},
			}},
			Retention: &v1.Retention{KeepLast: &keep},
		},
	}
}

// backupRun creates one Backup and waits for it, printing where its time
// went.
func (b *bench) backupRun(db, name string) (time.Duration, error) {
	ctx := context.Background()
	bk := b.backup(name, db)
	start := time.Now()
	if err := b.st.Kube.Create(ctx, bk); err != nil {
		return 0, err
	}
	end, err := b.watch.waitBackup(name, 30*time.Minute)
	if err != nil {
		return 0, err
	}
	total := end.Sub(start)
	if err := b.st.Kube.Get(ctx, client.ObjectKeyFromObject(bk), bk); err != nil {
		return 0, err
	}
	fmt.Printf("%s: backflow %s of %s in %.1f s (load %s)\n", name, db, bk.Status.DisplaySize, total.Seconds(), procfs.LoadAverage())
	b.watch.breakdown(start, bk.Status.WorkflowName, end, true)
	return total, b.clear()
}

// shellContainer runs the pipeline users write today, storing db under the
// key of the run name.
func (b *bench) shellContainer(db, name string) corev1.Container {
	script := `set -euo pipefail
pg_dump -h postgres.databases.svc -U postgres -d "$DB" | gzip -6 | age -r "$RECIPIENT" | mc pipe --quiet "bench/$BUCKET/$KEY"`
	return corev1.Container{
		Name: shellStep, Image: b.shellImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"bash", "-c", script},
		Env: []corev1.EnvVar{
			{Name: "DB", Value: db}, {Name: "RECIPIENT", Value: b.recipient}, {Name: "BUCKET", Value: bucket},
			{Name: "KEY", Value: shellKey(name)}, {Name: "MC_CONFIG_DIR", Value: "/tmp/mc"},
		},
		EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "shell"}}}},
	}
}

func shellKey(name string) string { return namespace + "/shell/" + name + ".sql.gz.age" }

// shellStored says how much the shell pipeline of run name stored.
func (b *bench) shellStored(name string) float64 {
	info, _ := b.st.S3.StatObject(context.Background(), bucket, shellKey(name), minio.StatObjectOptions{})
	return float64(info.Size) / 1e6
}

// shellRun runs the one-pod pipeline and waits for the pod to succeed.
func (b *bench) shellRun(db, name string) (time.Duration, error) {
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: new(int64),
			AutomountServiceAccountToken:  new(bool),
			Containers:                    []corev1.Container{b.shellContainer(db, name)},
		},
	}
	start := time.Now()
	if err := b.st.Kube.Create(ctx, pod); err != nil {
		return 0, err
	}
	end, err := b.watch.waitPod(name, 30*time.Minute)
	if err != nil {
		out, _ := b.st.Command("logs", "-n", namespace, name).CombinedOutput()
		return 0, fmt.Errorf("%w\n%s", err, out)
	}
	total := end.Sub(start)
	fmt.Printf("%s: shell pod %s (%.1f MB stored) in %.1f s (load %s)\n", name, db, b.shellStored(name), total.Seconds(), procfs.LoadAverage())
	p := b.watch.pod(name)
	fmt.Printf("  %-28s %6.1f s\n", "pod start", p.running.Sub(start).Seconds())
	fmt.Printf("  %-28s %6.1f s\n", "pipeline", p.terminated.Sub(p.running).Seconds())
	fmt.Printf("  %-28s %6.1f s\n", "pod end", end.Sub(p.terminated).Seconds())
	return total, b.clear()
}

// shellWorkflowRun runs the same pipeline as a Workflow of one step, which
// is what Argo alone costs a run: its init and wait containers, its
// scheduling of the pod and its noticing the end, with nothing of
// backflow's.
func (b *bench) shellWorkflowRun(db, name string) (time.Duration, error) {
	ctx := context.Background()
	c := b.shellContainer(db, name)
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: wfv1.WorkflowSpec{
			Entrypoint:         shellStep,
			ServiceAccountName: shellAccount,
			PodGC:              &wfv1.PodGC{Strategy: wfv1.PodGCOnPodSuccess},
			Templates:          []wfv1.Template{{Name: shellStep, Container: &c}},
		},
	}
	start := time.Now()
	if err := b.st.Kube.Create(ctx, wf); err != nil {
		return 0, err
	}
	end, err := b.watch.waitWorkflow(name, 30*time.Minute)
	if err != nil {
		return 0, err
	}
	total := end.Sub(start)
	fmt.Printf("%s: shell Workflow %s (%.1f MB stored) in %.1f s (load %s)\n", name, db, b.shellStored(name), total.Seconds(), procfs.LoadAverage())
	b.watch.breakdown(start, name, end, false)
	if err := b.kubectl("", "delete", "workflows", name, "-n", namespace, "--wait=true", "--timeout=300s"); err != nil {
		return 0, err
	}
	return total, b.clear()
}

// batch creates n Backups of the small database at once and waits for all,
// measuring both controllers' CPU and peak RSS meanwhile.
func (b *bench) batch(n int) error {
	ctx := context.Background()
	procs, err := b.controllerProcesses(ctx)
	if err != nil {
		return err
	}
	for _, p := range procs {
		if err := p.begin(); err != nil {
			return err
		}
	}
	start := time.Now()
	var names []string
	for i := range n {
		name := fmt.Sprintf("batch-%d-%d", n, i)
		names = append(names, name)
		if err := b.st.Kube.Create(ctx, b.backup(name, small)); err != nil {
			return err
		}
	}
	var end time.Time
	for _, name := range names {
		e, err := b.watch.waitBackup(name, 60*time.Minute)
		if err != nil {
			return err
		}
		if e.After(end) {
			end = e
		}
	}
	elapsed := end.Sub(start)
	fmt.Printf("%d Backups at once: %.1f s, %.1f backups/min (load %s)\n", n, elapsed.Seconds(), float64(n)/elapsed.Minutes(), procfs.LoadAverage())
	fmt.Printf("throughput batch_%d_backups_per_minute %.1f\n", n, float64(n)/elapsed.Minutes())
	for _, p := range procs {
		cpu, peak, err := p.end()
		if err != nil {
			return err
		}
		fmt.Printf("cpu %s_batch_%d_seconds %.1f\nrss %s_batch_%d %.0f\n", p.name, n, cpu, p.name, n, peak)
	}
	return b.clear()
}

// controllerProcesses are backflow's controller and Argo's
// workflow-controller, found on this node by their containers' ids.
func (b *bench) controllerProcesses(ctx context.Context) ([]*process, error) {
	var out []*process
	for _, c := range []struct{ name, namespace, label string }{
		{"backflow_controller", "backflow-system", "app.kubernetes.io/name=backflow"},
		{"argo_workflow_controller", "argo", "app=workflow-controller"},
	} {
		var pods corev1.PodList
		sel, err := metav1.ParseToLabelSelector(c.label)
		if err != nil {
			return nil, err
		}
		selector, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return nil, err
		}
		if err := b.st.Kube.List(ctx, &pods, client.InNamespace(c.namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
			return nil, err
		}
		var running []corev1.Pod
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running = append(running, p)
			}
		}
		if len(running) != 1 || len(running[0].Status.ContainerStatuses) == 0 {
			return nil, fmt.Errorf("%d running pods of %s in %s", len(running), c.label, c.namespace)
		}
		id := running[0].Status.ContainerStatuses[0].ContainerID
		_, id, _ = strings.Cut(id, "://")
		pid, err := pidOfContainer(id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.name, err)
		}
		out = append(out, &process{name: c.name, pid: pid})
	}
	return out, nil
}
