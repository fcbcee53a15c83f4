//go:build e2e

// Package e2e runs backflow end to end on the local stack (test/cluster): a
// real node running the step containers, Argo's workflow-controller and
// executor, backflow installed by its Helm chart, MinIO, PostgreSQL and
// MariaDB. `make e2e` brings the stack up, installs backflow and runs it.
//
// Each test applies manifests as a user would (kubectl apply) in its own
// namespace, and checks what a user would check: the resource's status, the
// objects in the bucket, the restored data.
package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/test/tools"
)

// stack is what test/cluster/cluster.sh wrote into its env file.
type stack struct {
	env     map[string]string
	kube    client.Client
	s3      *minio.Client
	kubectl string
}

var st *stack

func TestMain(m *testing.M) {
	s, err := loadStack()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err, "(run `make e2e`, which brings the stack up)")
		os.Exit(1)
	}
	st = s
	os.Exit(m.Run())
}

func loadStack() (*stack, error) {
	path := os.Getenv("BACKFLOW_CLUSTER_ENV")
	if path == "" {
		path = "/var/lib/backflow-cluster/env"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		return nil, err
	}
	kube, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimPrefix(env["BACKFLOW_CLUSTER_MINIO"], "http://")
	s3, err := minio.New(endpoint, &minio.Options{Creds: credentials.NewStaticV4(env["BACKFLOW_CLUSTER_MINIO_USER"], env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], "")})
	if err != nil {
		return nil, err
	}
	kubectl, err := tools.Binary("kubectl")
	if err != nil {
		return nil, err
	}
	return &stack{env: env, kube: kube, s3: s3, kubectl: kubectl}, nil
}

// kubectlCommand is kubectl against the stack.
func kubectlCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(st.kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+st.env["KUBECONFIG"])
	return cmd
}

// kubectl runs kubectl against the stack with stdin, failing the test on error.
func kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := kubectlCommand(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func apply(t testing.TB, namespace, manifest string) {
	t.Helper()
	kubectl(t, manifest, "apply", "-n", namespace, "-f", "-")
}

// namespace makes sure a namespace exists (`make e2e` creates them with the
// workflow ServiceAccount through the chart) and holds a BackupStorage named
// minio whose prefix is the namespace, in a bucket of its own.
func namespace(t testing.TB, name, bucket string) {
	t.Helper()
	ctx := context.Background()
	if ok, err := st.s3.BucketExists(ctx, bucket); err != nil {
		t.Fatal(err)
	} else if !ok {
		if err := st.s3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil && !strings.Contains(err.Error(), "already own it") {
			t.Fatal(err)
		}
	}
	kubectl(t, "", "get", "namespace", name)
	// Objects of an earlier run of the suite would confuse the counts.
	for o := range st.s3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: name + "/", Recursive: true}) {
		if o.Err == nil {
			_ = st.s3.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	for _, kind := range []string{"restores", "backupschedules", "backups"} {
		kubectl(t, "", "delete", kind, "--all", "-n", name, "--wait=true", "--timeout=60s")
	}
}

func storageManifest(namespace, bucket string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: minio-credentials}
stringData:
  AWS_ACCESS_KEY_ID: %s
  AWS_SECRET_ACCESS_KEY: %s
---
apiVersion: backflow.dev/v1alpha1
kind: BackupStorage
metadata: {name: minio}
spec:
  s3:
    endpoint: http://minio.minio.svc:9000
    bucket: %s
    prefix: %s
    forcePathStyle: true
    credentials: {secretRef: {name: minio-credentials}}
`, st.env["BACKFLOW_CLUSTER_MINIO_USER"], st.env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], bucket, namespace)
}

// waitForPhase waits until a Backup or Restore finishes, recording every
// phase it was seen in.
func waitForPhase[T interface {
	client.Object
	*v1.Backup | *v1.Restore
}](t testing.TB, obj T, want v1.RunPhase, timeout time.Duration) []v1.RunPhase {
	t.Helper()
	var seen []v1.RunPhase
	deadline := time.Now().Add(timeout)
	for {
		if err := st.kube.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		var phase v1.RunPhase
		var message string
		switch o := any(obj).(type) {
		case *v1.Backup:
			phase, message = o.Status.Phase, o.Status.Message
		case *v1.Restore:
			phase, message = o.Status.Phase, o.Status.Message
		}
		if len(seen) == 0 || seen[len(seen)-1] != phase {
			seen = append(seen, phase)
		}
		if phase == v1.PhaseSucceeded || phase == v1.PhaseFailed {
			if phase != want {
				t.Fatalf("%s ended %s, want %s: %s\n%s", obj.GetName(), phase, want, message, workflowLogs(t, obj))
			}
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %q after %s (want %s)\n%s", obj.GetName(), phase, timeout, want, workflowLogs(t, obj))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// workflowLogs are the step pods' logs, for a failure message.
func workflowLogs(t testing.TB, obj client.Object) string {
	out, _ := kubectlCommand("logs", "-n", obj.GetNamespace(), "-l", "workflows.argoproj.io/workflow", "--all-containers", "--tail=20", "--prefix").CombinedOutput()
	return string(out)
}

// objectChecksum streams an object and returns its size and sha256.
func objectChecksum(t testing.TB, bucket, key string) (int64, string) {
	t.Helper()
	obj, err := st.s3.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return n, hex.EncodeToString(h.Sum(nil))
}

// checkStoredObject asserts that the Backup's status names an object whose
// size and sha256 are what the bucket holds.
func checkStoredObject(t testing.TB, b *v1.Backup, bucket string) {
	t.Helper()
	if b.Status.Location == nil || b.Status.Size == nil {
		t.Fatalf("status has no location or size: %+v", b.Status)
	}
	// The key is relative to the BackupStorage's prefix.
	var storage v1.BackupStorage
	if err := st.kube.Get(context.Background(), client.ObjectKey{Namespace: b.Namespace, Name: b.Spec.Storage.Name}, &storage); err != nil {
		t.Fatal(err)
	}
	size, sum := objectChecksum(t, bucket, path.Join(storage.Spec.S3.Prefix, b.Status.Location.Key))
	if size != *b.Status.Size {
		t.Errorf("status.size %d, object is %d bytes", *b.Status.Size, size)
	}
	if got := strings.TrimPrefix(b.Status.Checksum, "sha256:"); got != sum {
		t.Errorf("status.checksum %s, object's sha256 is %s", b.Status.Checksum, sum)
	}
}

// objects lists the keys under a prefix, and fails on pending multipart
// uploads there.
func objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for o := range st.s3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	for u := range st.s3.ListIncompleteUploads(ctx, bucket, prefix, true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		t.Errorf("pending multipart upload of %s", u.Key)
	}
	return keys
}

func stagePhases(stages []v1.StageStatus) map[string]string {
	m := map[string]string{}
	for _, s := range stages {
		m[s.Name] = s.Phase
	}
	return m
}

// workflowSteps are the display names of the DAG tasks Argo ran or skipped.
func workflowSteps(t testing.TB, namespace, name string) map[string]wfv1.NodePhase {
	t.Helper()
	var wf wfv1.Workflow
	if err := st.kube.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &wf); err != nil {
		t.Fatal(err)
	}
	steps := map[string]wfv1.NodePhase{}
	for _, n := range wf.Status.Nodes {
		// A step's retry node is named after the task, its pods "task(N)".
		if n.Type == wfv1.NodeTypeRetry || n.Type == wfv1.NodeTypeSkipped {
			steps[n.DisplayName] = n.Phase
		}
	}
	return steps
}

// psql runs SQL on the stack's PostgreSQL as its superuser.
func psql(t testing.TB, db, sql string) string {
	t.Helper()
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", st.env["BACKFLOW_CLUSTER_NODE_IP"],
		"-p", st.env["BACKFLOW_CLUSTER_POSTGRES_PORT"], "-U", "postgres", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+st.env["BACKFLOW_CLUSTER_DB_PASSWORD"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// mariadb runs SQL on the stack's MariaDB as root.
func mariadb(t testing.TB, sql string) string {
	t.Helper()
	cmd := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", st.env["BACKFLOW_CLUSTER_NODE_IP"], "-P", st.env["BACKFLOW_CLUSTER_MARIADB_PORT"],
		"-uroot", "-p"+st.env["BACKFLOW_CLUSTER_DB_PASSWORD"], "-N", "-B", "-e", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// events are the Events of one object, as "Type Reason: Message" lines.
func events(t testing.TB, obj client.Object) []string {
	t.Helper()
	var list corev1.EventList
	if err := st.kube.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == obj.GetName() {
			out = append(out, e.Type+" "+e.Reason+": "+e.Message)
		}
	}
	return out
}

// appPod runs an application pod the hooks exec into; its hooks leave marker
// files behind.
func appPod(t testing.TB, namespace string) {
	t.Helper()
	apply(t, namespace, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: worker, labels: {app: worker}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: worker
    image: %s
    imagePullPolicy: Never
    command: [sleep, infinity]
`, st.env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]))
	kubectl(t, "", "wait", "-n", namespace, "--for=condition=Ready", "pod/worker", "--timeout=60s")
	kubectl(t, "", "exec", "-n", namespace, "worker", "--", "rm", "-f", "/tmp/pre-hook", "/tmp/post-hook")
}

func hookRan(t testing.TB, namespace, marker string) bool {
	return kubectlCommand("exec", "-n", namespace, "worker", "--", "test", "-f", "/tmp/"+marker).Run() == nil
}

const hooks = `
  hooks:
    pre:
      exec:
        podSelector: {matchLabels: {app: worker}}
        container: worker
        command: [touch, /tmp/pre-hook]
    post:
      exec:
        podSelector: {matchLabels: {app: worker}}
        container: worker
        command: [touch, /tmp/post-hook]
`

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
