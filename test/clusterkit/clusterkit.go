// Package clusterkit is what the suites that run on the local stack
// (test/cluster) share: the stack's addresses and clients, kubectl, waiting
// for a run to finish, and reading what MinIO holds. The end-to-end suite
// (test/e2e) and the fault suite (test/chaos) are built on it.
package clusterkit

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

// Stack is what test/cluster/cluster.sh wrote into its env file, with
// clients for the cluster and MinIO.
type Stack struct {
	// Env holds the env file's variables (BACKFLOW_CLUSTER_*, KUBECONFIG).
	Env     map[string]string
	Kube    client.Client
	S3      *minio.Client
	kubectl string
}

// Load reads the env file of a running stack ($BACKFLOW_CLUSTER_ENV, by
// default the one cluster.sh up writes).
func Load() (*Stack, error) {
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
	// The fault suite creates dozens of resources at once.
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		return nil, err
	}
	s3, err := minio.New(strings.TrimPrefix(env["BACKFLOW_CLUSTER_MINIO"], "http://"), &minio.Options{Creds: credentials.NewStaticV4(env["BACKFLOW_CLUSTER_MINIO_USER"], env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], "")})
	if err != nil {
		return nil, err
	}
	kubectl, err := tools.Binary("kubectl")
	if err != nil {
		return nil, err
	}
	return &Stack{Env: env, Kube: kube, S3: s3, kubectl: kubectl}, nil
}

// Command is kubectl against the stack.
func (s *Stack) Command(args ...string) *exec.Cmd {
	cmd := exec.Command(s.kubectl, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+s.Env["KUBECONFIG"])
	return cmd
}

// Kubectl runs kubectl against the stack with stdin, failing the test on
// error.
func (s *Stack) Kubectl(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	cmd := s.Command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Apply applies a manifest in a namespace.
func (s *Stack) Apply(t testing.TB, namespace, manifest string) {
	t.Helper()
	s.Kubectl(t, manifest, "apply", "-n", namespace, "-f", "-")
}

// Namespace makes sure a namespace exists (the controller provides the
// workflow's ServiceAccounts there once a backflow resource appears) and that a
// bucket exists, and clears what an earlier run left: objects under the
// namespace's prefix, Restores, BackupSchedules and Backups.
func (s *Stack) Namespace(t testing.TB, name, bucket string) {
	t.Helper()
	ctx := context.Background()
	if ok, err := s.S3.BucketExists(ctx, bucket); err != nil {
		t.Fatal(err)
	} else if !ok {
		if err := s.S3.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil && !strings.Contains(err.Error(), "already own it") {
			t.Fatal(err)
		}
	}
	s.Kubectl(t, "", "get", "namespace", name)
	for o := range s.S3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: name + "/", Recursive: true}) {
		if o.Err == nil {
			_ = s.S3.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	for _, u := range s.IncompleteUploads(t, bucket, name+"/") {
		_ = s.S3.RemoveIncompleteUpload(ctx, bucket, u.Key)
	}
	for _, kind := range []string{"restores", "backupschedules", "backups"} {
		s.Kubectl(t, "", "delete", kind, "--all", "-n", name, "--wait=true", "--timeout=120s")
	}
}

// StorageManifest is a credentials Secret and a BackupStorage named minio
// whose prefix is the namespace, in bucket.
func (s *Stack) StorageManifest(namespace, bucket string) string {
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
`, s.Env["BACKFLOW_CLUSTER_MINIO_USER"], s.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], bucket, namespace)
}

// Run is a Backup or a Restore.
type Run interface {
	client.Object
	*v1.Backup | *v1.Restore
}

// RunStatusOf is the run status of a Backup or Restore.
func RunStatusOf(obj client.Object) *v1.RunStatus {
	switch o := obj.(type) {
	case *v1.Backup:
		return &o.Status.RunStatus
	case *v1.Restore:
		return &o.Status.RunStatus
	}
	panic(fmt.Sprintf("%T is not a run", obj))
}

// WaitForFinish waits until a Backup or Restore is Succeeded or Failed,
// and returns every phase it was seen in. It fails the test after timeout.
func WaitForFinish[T Run](t testing.TB, s *Stack, obj T, timeout time.Duration) []v1.RunPhase {
	t.Helper()
	var seen []v1.RunPhase
	deadline := time.Now().Add(timeout)
	for {
		if err := s.Kube.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			t.Fatal(err)
		}
		phase := RunStatusOf(obj).Phase
		if len(seen) == 0 || seen[len(seen)-1] != phase {
			seen = append(seen, phase)
		}
		if phase == v1.PhaseSucceeded || phase == v1.PhaseFailed {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s still %q after %s\n%s", obj.GetNamespace(), obj.GetName(), phase, timeout, s.WorkflowLogs(obj))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// WaitForPhase waits until a Backup or Restore finishes and fails the test
// unless it ended in want.
func WaitForPhase[T Run](t testing.TB, s *Stack, obj T, want v1.RunPhase, timeout time.Duration) []v1.RunPhase {
	t.Helper()
	seen := WaitForFinish(t, s, obj, timeout)
	if status := RunStatusOf(obj); status.Phase != want {
		t.Fatalf("%s ended %s, want %s: %s\n%s", obj.GetName(), status.Phase, want, status.Message, s.WorkflowLogs(obj))
	}
	return seen
}

// WorkflowLogs are the step pods' logs in the object's namespace, for a
// failure message.
func (s *Stack) WorkflowLogs(obj client.Object) string {
	out, _ := s.Command("logs", "-n", obj.GetNamespace(), "-l", "workflows.argoproj.io/workflow", "--all-containers", "--tail=20", "--prefix").CombinedOutput()
	return string(out)
}

// ObjectChecksum streams an object and returns its size and sha256.
func (s *Stack) ObjectChecksum(t testing.TB, bucket, key string) (int64, string) {
	t.Helper()
	obj, err := s.S3.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
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

// StoredKey is the bucket key of a Backup's object: its status key below
// its storage's prefix.
func (s *Stack) StoredKey(t testing.TB, b *v1.Backup) string {
	t.Helper()
	if b.Status.Location == nil {
		t.Fatalf("%s: status has no location: %+v", b.Name, b.Status)
	}
	var storage v1.BackupStorage
	if err := s.Kube.Get(context.Background(), client.ObjectKey{Namespace: b.Spec.Storage.StorageNamespace(b.Namespace), Name: b.Spec.Storage.Name}, &storage); err != nil {
		t.Fatal(err)
	}
	return path.Join(storage.Spec.S3.Prefix, b.Status.Location.Key)
}

// CheckStoredObject asserts that the Backup's status names an object whose
// size and sha256 are what the bucket holds.
func (s *Stack) CheckStoredObject(t testing.TB, b *v1.Backup, bucket string) {
	t.Helper()
	if b.Status.Location == nil || b.Status.Size == nil {
		t.Fatalf("%s: status has no location or size: %+v", b.Name, b.Status)
	}
	size, sum := s.ObjectChecksum(t, bucket, s.StoredKey(t, b))
	if size != *b.Status.Size {
		t.Errorf("%s: status.size %d, object is %d bytes", b.Name, *b.Status.Size, size)
	}
	if got := strings.TrimPrefix(b.Status.Checksum, "sha256:"); got != sum {
		t.Errorf("%s: status.checksum %s, object's sha256 is %s", b.Name, b.Status.Checksum, sum)
	}
}

// Objects lists the keys under a prefix, and fails on pending multipart
// uploads there.
func (s *Stack) Objects(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for o := range s.S3.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	for _, u := range s.IncompleteUploads(t, bucket, prefix) {
		t.Errorf("pending multipart upload of %s (upload %s, started %s)", u.Key, u.UploadID, u.Initiated.Format(time.RFC3339))
	}
	return keys
}

// IncompleteUploads lists the multipart uploads under a prefix that were
// neither completed nor aborted. MinIO lists the uploads of one exact key
// when given a prefix (a prefix of a directory lists none), so all of the
// bucket's are listed and filtered here.
func (s *Stack) IncompleteUploads(t testing.TB, bucket, prefix string) []minio.ObjectMultipartInfo {
	t.Helper()
	var out []minio.ObjectMultipartInfo
	for u := range s.S3.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		if strings.HasPrefix(u.Key, prefix) {
			out = append(out, u)
		}
	}
	return out
}

// StagePhases maps each step of a run's status to its phase.
func StagePhases(stages []v1.StageStatus) map[string]string {
	m := map[string]string{}
	for _, s := range stages {
		m[s.Name] = s.Phase
	}
	return m
}

// WorkflowSteps are the display names of the DAG tasks Argo ran or skipped.
func (s *Stack) WorkflowSteps(t testing.TB, namespace, name string) map[string]wfv1.NodePhase {
	t.Helper()
	var wf wfv1.Workflow
	if err := s.Kube.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: name}, &wf); err != nil {
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

// Psql runs SQL on the stack's PostgreSQL as its superuser.
func (s *Stack) Psql(t testing.TB, db, sql string) string {
	t.Helper()
	cmd := exec.Command("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", s.Env["BACKFLOW_CLUSTER_NODE_IP"],
		"-p", s.Env["BACKFLOW_CLUSTER_POSTGRES_PORT"], "-U", "postgres", "-d", db, "-c", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+s.Env["BACKFLOW_CLUSTER_DB_PASSWORD"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// MariaDB runs SQL on the stack's MariaDB as root.
func (s *Stack) MariaDB(t testing.TB, sql string) string {
	t.Helper()
	cmd := exec.Command("mariadb", "--no-defaults", "--default-character-set=utf8mb4", "-h", s.Env["BACKFLOW_CLUSTER_NODE_IP"], "-P", s.Env["BACKFLOW_CLUSTER_MARIADB_PORT"],
		"-uroot", "-p"+s.Env["BACKFLOW_CLUSTER_DB_PASSWORD"], "-N", "-B", "-e", sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb %s: %v\n%s", sql, err, out)
	}
	return strings.TrimSpace(string(out))
}

// Events are the Events of one object, as "Type Reason: Message" lines.
func (s *Stack) Events(t testing.TB, obj client.Object) []string {
	t.Helper()
	var list corev1.EventList
	if err := s.Kube.List(context.Background(), &list, client.InNamespace(obj.GetNamespace())); err != nil {
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
