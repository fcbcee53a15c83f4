//go:build chaos

// Package chaos is the fault suite: backflow on the local stack
// (test/cluster), installed by its chart, while its parts fail. Each scenario
// runs Backups, injects a fault (a SIGKILL of the controller, a restart of
// Argo's workflow-controller, MinIO or a database server stopped, a dump
// that fails or loses its pod, a corrupted object) and then asserts the
// promises that must hold whatever happened: every Backup ends in the right
// phase with a message naming the cause, one Workflow per Backup, every
// Succeeded backup decrypts and decompresses to the stream its source wrote
// (and a Restore of it feeds that stream to its target), no object without
// a manifest, no incomplete multipart upload, and nothing deleted that is
// not the series' own.
//
// `make chaos` brings the stack up, installs backflow and runs it; TestMain
// prints one line per scenario, `chaos NAME pass|fail SECONDS`, and the
// totals.
package chaos

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"
	"github.com/zeebo/blake3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/test/clusterkit"
	"github.com/backflow-dev/backflow/test/envtest"
)

// bucket holds every scenario's objects, each under its namespace.
const bucket = "chaos"

var (
	st *clusterkit.Stack
	// identity decrypts every backup of the suite; its Secret is in each
	// scenario's namespace.
	identity *age.X25519Identity
	summary  struct {
		sync.Mutex
		lines []scenarioResult
	}
)

type scenarioResult struct {
	name   string
	failed bool
	took   time.Duration
}

func TestMain(m *testing.M) {
	s, err := clusterkit.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err, "(run `make chaos`, which brings the stack up)")
		os.Exit(1)
	}
	st = s
	if identity, err = age.GenerateX25519Identity(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	start := time.Now()
	code := m.Run()
	summary.Lock()
	var failed int
	for _, r := range summary.lines {
		verdict := "pass"
		if r.failed {
			verdict, failed = "fail", failed+1
		}
		fmt.Printf("chaos %s %s %.0f\n", r.name, verdict, r.took.Seconds())
	}
	fmt.Printf("chaos total: %d scenarios, %d pass, %d fail, %.0f seconds\n", len(summary.lines), len(summary.lines)-failed, failed, time.Since(start).Seconds())
	summary.Unlock()
	os.Exit(code)
}

// scenario makes t one line of the summary.
func scenario(t *testing.T, name string) {
	start := time.Now()
	t.Cleanup(func() {
		summary.Lock()
		defer summary.Unlock()
		summary.lines = append(summary.lines, scenarioResult{name: name, failed: t.Failed(), took: time.Since(start)})
	})
}

// setup clears a scenario's namespace and gives it the storage, the age
// identity's Secret and a file backflow did not write beside the series
// (returned as key -> sha256), which nothing may delete.
func setup(t *testing.T, ns string) map[string]string {
	t.Helper()
	st.Namespace(t, ns, bucket)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: chaos-age}
stringData: {identity.txt: %s}
`, identity))
	foreign := map[string]string{}
	putForeign(t, foreign, ns+"/"+ns+"/NOTES.txt", "not written by backflow: rotate and the finalizer must leave it\n")
	return foreign
}

// putForeign writes an object that backflow did not write and records it.
func putForeign(t *testing.T, foreign map[string]string, key, content string) {
	t.Helper()
	if _, err := st.S3.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign[key] = sha256Hex([]byte(content))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// streamScript writes $2 MiB of AES-128-CTR keystream (key $1, IV 0: the
// same bytes for the same key, and incompressible, so that the upload moves
// every byte), sleeping $3 seconds after each MiB, then exits $4. Its
// parameters are arguments: nothing is pasted into it.
const streamScript = `openssl enc -aes-128-ctr -nosalt -K "$1" -iv 00000000000000000000000000000000 -in /dev/zero 2>/dev/null |
  for i in $(seq "$2"); do dd bs=1048576 count=1 iflag=fullblock status=none; sleep "$3"; done
exit "$4"`

// stream is a Backup of a command source that writes the keystream.
type stream struct {
	name  string
	mib   int
	delay string // seconds to sleep after each MiB
	exit  int
	extra string // more YAML of the Backup's spec
}

// key is the AES key of the stream, derived from its Backup's name.
func (s stream) key() string { return sha256Hex([]byte(s.name))[:32] }

// rawChecksum is the BLAKE3 of what the command writes, as
// blake3:<hex>, the plain stream's checksum of a manifest.
func (s stream) rawChecksum() string { return "blake3:" + s.sum(blake3.New()) }

// sha256 is the sha256 of what the command writes, as sha256:<hex>: what
// a restore target can check with sha256sum.
func (s stream) sha256() string { return "sha256:" + s.sum(sha256.New()) }

// sum is the hex digest by h of what the command writes.
func (s stream) sum(h hash.Hash) string {
	key, _ := hex.DecodeString(s.key())
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	ctr := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	zeros, buf := make([]byte, 1<<20), make([]byte, 1<<20)
	for range s.mib {
		ctr.XORKeyStream(buf, zeros)
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (s stream) manifest() string {
	script, _ := json.Marshal(streamScript)
	return fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: %s}
spec:
  source:
    command:
      image: %s
      command: [bash, -c, %s, stream]
      args: [%q, "%d", %q, "%d"]
  storage: {name: minio}
  encryption:
    age:
      recipients: [%s]
      identitySecretRef: {name: chaos-age, key: identity.txt}
%s`, s.name, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"], script, s.key(), s.mib, s.delay, s.exit, identity.Recipient(), s.extra)
}

// applyStreams creates the streams' Backups with one kubectl apply.
func applyStreams(t *testing.T, ns string, streams []stream) {
	t.Helper()
	var all strings.Builder
	for _, s := range streams {
		all.WriteString(s.manifest())
	}
	st.Apply(t, ns, all.String())
}

func getBackup(t *testing.T, ns, name string) *v1.Backup {
	t.Helper()
	b := &v1.Backup{}
	if err := st.Kube.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFinished waits until every named Backup is Succeeded or Failed.
func waitFinished(t *testing.T, ns string, names []string, timeout time.Duration) map[string]*v1.Backup {
	t.Helper()
	out := map[string]*v1.Backup{}
	deadline := time.Now().Add(timeout)
	for _, name := range names {
		b := &v1.Backup{}
		b.Namespace, b.Name = ns, name
		clusterkit.WaitForFinish(t, st, b, time.Until(deadline))
		out[name] = b
	}
	return out
}

// waitUntil polls cond until it holds, failing the test after timeout.
func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func listBackups(t *testing.T, ns string, opts ...client.ListOption) []v1.Backup {
	t.Helper()
	var list v1.BackupList
	if err := st.Kube.List(context.Background(), &list, append(opts, client.InNamespace(ns))...); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// dumpsRunning counts the Backups whose dump step runs.
func dumpsRunning(t *testing.T, ns string) int {
	var n int
	for _, b := range listBackups(t, ns) {
		if b.Status.Phase == v1.PhaseRunning && clusterkit.StagePhases(b.Status.Stages)["dump"] == string(wfv1.NodeRunning) {
			n++
		}
	}
	return n
}

// --- assertions ---------------------------------------------------------

// readManifest reads the manifest of a bucket key.
func readManifest(key string) (*stages.Manifest, error) {
	obj, err := st.S3.GetObject(context.Background(), bucket, key+stages.ManifestSuffix, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	var m stages.Manifest
	if err := json.NewDecoder(obj).Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", key, err)
	}
	return &m, nil
}

// decode reads an object as a restore would, with this suite's own age and
// zstd/gzip readers rather than backflow's: it returns the sha256 of the
// stored bytes and of the stream they decrypt and decompress to.
func decode(key string, m *stages.Manifest) (stored, raw string, err error) {
	obj, err := st.S3.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", "", err
	}
	defer obj.Close()
	storedHash, rawHash := sha256.New(), blake3.New()
	body := io.TeeReader(obj, storedHash)
	var r io.Reader = body
	if m.Encryption == stages.EncryptionAge {
		if r, err = age.Decrypt(r, identity); err != nil {
			return "", "", fmt.Errorf("decrypting %s: %w", key, err)
		}
	}
	switch m.Compression {
	case pipeline.Zstd:
		d, err := zstd.NewReader(r)
		if err != nil {
			return "", "", err
		}
		defer d.Close()
		r = d
	case pipeline.Gzip:
		if r, err = gzip.NewReader(r); err != nil {
			return "", "", fmt.Errorf("decompressing %s: %w", key, err)
		}
	}
	if _, err := io.Copy(rawHash, r); err != nil {
		return "", "", fmt.Errorf("decoding %s: %w", key, err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return "", "", err
	}
	return "sha256:" + hex.EncodeToString(storedHash.Sum(nil)), "blake3:" + hex.EncodeToString(rawHash.Sum(nil)), nil
}

// checkSucceeded asserts that a Backup Succeeded with a status that says
// so, that its object is what the status and the manifest say, that the
// manifest names the Backup, and that the object decodes to the stream its
// source wrote (wantRaw, when the test knows it, else the manifest's).
func checkSucceeded(t *testing.T, b *v1.Backup, wantRaw string) {
	t.Helper()
	if b.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("%s ended %s, want Succeeded: %s", b.Name, b.Status.Phase, b.Status.Message)
		return
	}
	if b.Status.Message != "" {
		t.Errorf("%s Succeeded with message %q", b.Name, b.Status.Message)
	}
	for _, c := range []string{v1.ConditionSucceeded, v1.ConditionVerified} {
		if cond := meta.FindStatusCondition(b.Status.Conditions, c); cond == nil || cond.Status != "True" {
			t.Errorf("%s: condition %s is %+v, want True", b.Name, c, cond)
		}
	}
	for step, phase := range clusterkit.StagePhases(b.Status.Stages) {
		if phase != string(wfv1.NodeSucceeded) {
			t.Errorf("%s Succeeded but its step %s is %s", b.Name, step, phase)
		}
	}
	key := st.StoredKey(t, b)
	if _, err := st.S3.StatObject(context.Background(), bucket, key, minio.StatObjectOptions{}); err != nil {
		t.Errorf("%s Succeeded, but its object %s is gone: %v", b.Name, key, err)
		return
	}
	st.CheckStoredObject(t, b, bucket)
	m, err := readManifest(key)
	if err != nil {
		t.Errorf("%s: %v", b.Name, err)
		return
	}
	if m.Namespace != b.Namespace || m.Name != b.Name || m.VerifiedAt == nil {
		t.Errorf("%s: manifest names %s/%s, verified at %v", b.Name, m.Namespace, m.Name, m.VerifiedAt)
	}
	if m.Checksum != b.Status.Checksum || m.RawChecksum != b.Status.RawChecksum {
		t.Errorf("%s: status checksums %s, raw %s; manifest %s, raw %s", b.Name, b.Status.Checksum, b.Status.RawChecksum, m.Checksum, m.RawChecksum)
	}
	stored, raw, err := decode(key, m)
	switch {
	case err != nil:
		t.Errorf("%s: %v", b.Name, err)
	case stored != m.Checksum:
		t.Errorf("%s: object's sha256 %s, manifest says %s", b.Name, stored, m.Checksum)
	case raw != m.RawChecksum:
		t.Errorf("%s: object decodes to %s, manifest's raw checksum %s", b.Name, raw, m.RawChecksum)
	case wantRaw != "" && raw != wantRaw:
		t.Errorf("%s: object decodes to %s, the source wrote %s", b.Name, raw, wantRaw)
	}
}

// checkFailed asserts that a Backup Failed, with a message holding each of
// wants, and that its status names no stored object.
func checkFailed(t *testing.T, b *v1.Backup, wants ...string) {
	t.Helper()
	if b.Status.Phase != v1.PhaseFailed {
		t.Errorf("%s ended %s, want Failed", b.Name, b.Status.Phase)
		return
	}
	for _, w := range wants {
		if !strings.Contains(b.Status.Message, w) {
			t.Errorf("%s: message %q does not say %q", b.Name, b.Status.Message, w)
		}
	}
	if cond := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded); cond == nil || cond.Status != "False" {
		t.Errorf("%s Failed but its Succeeded condition is %+v", b.Name, cond)
	}
}

// checkWorkflows asserts one Workflow per Backup and per Restore of the
// namespace, the one its status names.
func checkWorkflows(t *testing.T, ns string) {
	t.Helper()
	var list wfv1.WorkflowList
	if err := st.Kube.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	owners, exists := map[string][]string{}, map[string]bool{}
	for _, wf := range list.Items {
		exists[wf.Name] = true
		for _, l := range []string{v1.LabelBackup, v1.LabelRestore} {
			if name := wf.Labels[l]; name != "" {
				owners[l+"="+name] = append(owners[l+"="+name], wf.Name)
			}
		}
	}
	for owner, wfs := range owners {
		if len(wfs) > 1 {
			t.Errorf("%s has %d Workflows: %v", owner, len(wfs), wfs)
		}
	}
	// A scheduled run's Workflow is the CronWorkflow's (labelled with the
	// schedule, the Backup made after it); a one-shot Backup's is labelled
	// with the Backup.
	for _, b := range listBackups(t, ns) {
		wfs := owners[v1.LabelBackup+"="+b.Name]
		if b.Status.WorkflowName == "" || !exists[b.Status.WorkflowName] || len(wfs) > 0 && !slices.Contains(wfs, b.Status.WorkflowName) {
			t.Errorf("%s: status names Workflow %q, its Workflows are %v", b.Name, b.Status.WorkflowName, wfs)
		}
	}
}

// checkBucket asserts what the namespace's prefix holds: no incomplete
// multipart upload, no object without a manifest (but the foreign ones,
// which are all there, unchanged), no manifest without its object, and
// every object what its manifest says, down to the stream it decodes to.
func checkBucket(t *testing.T, ns string, foreign map[string]string) {
	t.Helper()
	keys := st.Objects(t, bucket, ns+"/")
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	for key, sum := range foreign {
		if !have[key] {
			t.Errorf("%s, which backflow did not write, was deleted", key)
		} else if _, got := st.ObjectChecksum(t, bucket, key); got != sum {
			t.Errorf("%s, which backflow did not write, was changed", key)
		}
	}
	for _, key := range keys {
		switch {
		case foreign[key] != "":
		case stages.IsManifestKey(key):
			object := strings.TrimSuffix(key, stages.ManifestSuffix)
			if !have[object] {
				t.Errorf("manifest %s without its object", key)
				continue
			}
			m, err := readManifest(object)
			if err != nil {
				t.Error(err)
				continue
			}
			if stored, raw, err := decode(object, m); err != nil {
				t.Errorf("%s looks like a backup but does not decode: %v", object, err)
			} else if stored != m.Checksum || raw != m.RawChecksum {
				t.Errorf("%s looks like a backup but is not what its manifest says: sha256 %s (manifest %s), raw %s (manifest %s)", object, stored, m.Checksum, raw, m.RawChecksum)
			}
		case !have[key+stages.ManifestSuffix]:
			t.Errorf("object %s has no manifest", key)
		}
	}
}

// restoreMatches restores a Backup into a command that checks that the
// sha256 of what it reads is want (sha256:<hex>; the manifest's raw
// checksum is BLAKE3, which the client image has no tool for), and asserts
// the Restore Succeeded.
func restoreMatches(t *testing.T, b *v1.Backup, want string) {
	t.Helper()
	name := "restore-" + b.Name
	st.Apply(t, b.Namespace, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: %s}
spec:
  from: {backupRef: {name: %s}}
  target:
    command:
      image: %s
      command: [bash, -c, 'sum=$(sha256sum); test "sha256:${sum%%%% *}" = "$1"', restore-check]
      args: [%q]
`, name, b.Name, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"], want))
	r := &v1.Restore{}
	r.Namespace, r.Name = b.Namespace, name
	clusterkit.WaitForFinish(t, st, r, 5*time.Minute)
	if r.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("Restore of %s ended %s: %s", b.Name, r.Status.Phase, r.Status.Message)
	}
}

// --- faults ---------------------------------------------------------------

// clusterScript runs test/cluster/cluster.sh.
func clusterScript(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(filepath.Join(envtest.RepoRoot(), "test/cluster/cluster.sh"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("cluster.sh %s: %s", strings.Join(args, " "), bytes.TrimSpace(out))
}

// stopServer stops a server on the node (minio, postgresql, mariadb) with a
// signal; it is started again at the latest when the test ends, so that a
// failed scenario does not take the next ones down with it.
func stopServer(t *testing.T, name, signal string) {
	t.Helper()
	clusterScript(t, "kill-service", name, signal)
	t.Cleanup(func() { clusterScript(t, "start-service", name) })
}

// onlyPod is the one pod matching a label selector.
func onlyPod(t *testing.T, ns string, labels client.MatchingLabels) *corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := st.Kube.List(context.Background(), &pods, client.InNamespace(ns), labels); err != nil {
		t.Fatal(err)
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 || len(live[0].Status.ContainerStatuses) != 1 {
		t.Fatalf("want one pod of one container for %v in %s, have %d", labels, ns, len(live))
	}
	return &live[0]
}

// killContainer sends SIGKILL to the process of the one container of the
// pod a selector matches, through containerd (as the kernel's OOM killer
// or a crash would end it), and waits until the kubelet restarted it and
// it is Ready.
func killContainer(t *testing.T, ns string, labels client.MatchingLabels) {
	t.Helper()
	pod := onlyPod(t, ns, labels)
	status := pod.Status.ContainerStatuses[0]
	id := strings.TrimPrefix(status.ContainerID, "containerd://")
	out, err := exec.Command("ctr", "--address", st.Env["BACKFLOW_CLUSTER_CONTAINERD"], "--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", id).CombinedOutput()
	if err != nil {
		t.Fatalf("SIGKILL of %s/%s: %v\n%s", ns, pod.Name, err, out)
	}
	t.Logf("SIGKILL sent to %s/%s (container %s, restarts %d)", ns, pod.Name, id[:12], status.RestartCount)
	waitUntil(t, pod.Name+" to be restarted and Ready", 3*time.Minute, func() bool {
		p := onlyPod(t, ns, labels)
		s := p.Status.ContainerStatuses[0]
		return s.RestartCount > status.RestartCount && s.Ready
	})
}

var (
	backflowController = client.MatchingLabels{"app.kubernetes.io/name": "backflow", "app.kubernetes.io/component": "controller"}
	argoController     = client.MatchingLabels{"app": "workflow-controller"}
)

// uploadInProgress says whether a multipart upload under prefix has stored
// at least one part: the dump is streaming into MinIO.
func uploadInProgress(t *testing.T, prefix string) bool {
	core := minio.Core{Client: st.S3}
	for _, u := range st.IncompleteUploads(t, bucket, prefix) {
		parts, err := core.ListObjectParts(context.Background(), bucket, u.Key, u.UploadID, 0, 1000)
		if err == nil && len(parts.ObjectParts) > 0 {
			return true
		}
	}
	return false
}
