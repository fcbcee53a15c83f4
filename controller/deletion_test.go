package controller_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/minio/minio-go/v7"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/runstatus"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/argotest"
)

// storeBackup writes an object and its manifest into the test MinIO as the
// dump of Backup namespace/name would, and returns the object's checksum.
func storeBackup(t *testing.T, key, namespace, name string) string {
	t.Helper()
	backend, err := storage.NewS3Backend(storage.S3Config{Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, PathStyle: true,
		Credentials: storage.Credentials{AccessKeyID: minioServer.AccessKey, SecretAccessKey: minioServer.SecretKey}})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("the backup of " + namespace + "/" + name + " at " + key)
	ctx := context.Background()
	if err := backend.Put(ctx, key, bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	checksum := "sha256:" + hex.EncodeToString(sum[:])
	now := time.Now().UTC()
	m := &stages.Manifest{Key: key, Size: int64(len(data)), Checksum: checksum, RawSize: int64(len(data)), RawChecksum: checksum,
		Encryption: stages.EncryptionNone, Source: "command", Format: "raw", Namespace: namespace, Name: name, Series: name,
		StartedAt: now, FinishedAt: now}
	if err := stages.WriteManifest(ctx, backend, m); err != nil {
		t.Fatal(err)
	}
	return checksum
}

// stored reads an object and its manifest from the test MinIO, nil for
// one that does not exist.
func stored(t *testing.T, key string) [2][]byte {
	t.Helper()
	var out [2][]byte
	for i, k := range []string{key, key + stages.ManifestSuffix} {
		obj, err := minioServer.Client().GetObject(context.Background(), minioServer.Bucket, k, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(obj)
		var resp minio.ErrorResponse
		if errors.As(err, &resp) && resp.Code == "NoSuchKey" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[i] = data
	}
	return out
}

// dumpReports makes the dump step of a Workflow report a key and checksum.
func dumpReports(workflow, key, checksum string) {
	out := argotest.StepOutputs("", workflow, compiler.StepDump)
	out[compiler.OutputKey], out[compiler.OutputChecksum] = key, checksum
	stack.Driver.Set(workflow, compiler.StepDump, argotest.Outcome{Outputs: out})
}

// deletingBackup is a Backup whose deletionPolicy is Delete.
func deletingBackup(ns, name string) *v1.Backup {
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}
	b.Spec.DeletionPolicy = v1.DeletionPolicyDelete
	return b
}

// deleteAndWaitGone deletes a Backup and waits until the finalizer let it
// go, returning the Event the finalizer recorded about its object.
func deleteAndWaitGone(t *testing.T, b *v1.Backup) string {
	t.Helper()
	if err := stack.Client.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	return waitGoneWithFinalizerEvent(t, b.Namespace, b.Name)
}

// waitGoneWithFinalizerEvent waits until a Backup is gone and the
// finalizer recorded what it did with the object, and returns that Event
// as "Reason Type: message".
func waitGoneWithFinalizerEvent(t *testing.T, ns, name string) string {
	t.Helper()
	var got string
	argotest.WaitFor(t, "Backup "+name+" to be gone after its finalizer ran", 60*time.Second, func() (bool, string) {
		var b v1.Backup
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &b)
		ev := events(t, ns, name)
		for _, reason := range []v1.EventReason{v1.EventDeleted, v1.EventObjectKept, v1.EventObjectLeft} {
			if e, ok := ev[string(reason)]; ok {
				got = string(reason) + " " + e
			}
		}
		return apierrors.IsNotFound(err) && got != "", fmt.Sprintf("get: %v, finalizers %v, events %v", err, b.Finalizers, ev)
	})
	return got
}

// A person deleting a Backup whose deletionPolicy is Delete deletes its
// object and manifest.
func TestDeletingABackupDeletesItsObject(t *testing.T) {
	ns := newNamespace(t)
	key := ns + "/doomed/20261122T030000Z.bin"
	dumpReports("doomed", key, storeBackup(t, key, ns, "doomed"))
	b := deletingBackup(ns, "doomed")
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "doomed", v1.PhaseSucceeded)
	if b.Status.WorkflowUID == "" || b.Status.WorkflowUID != stack.Workflow(t, ns, "doomed").UID {
		t.Errorf("status.workflowUID %q is not the Workflow's", b.Status.WorkflowUID)
	}
	if ev := deleteAndWaitGone(t, b); !strings.HasPrefix(ev, "Deleted Normal") {
		t.Errorf("event %q, want Deleted", ev)
	}
	if got := stored(t, key); got[0] != nil || got[1] != nil {
		t.Errorf("object or manifest left behind: %q", got)
	}
}

// The finalizer deletes only an object its Backup wrote: inside its
// namespace's prefix, with a manifest that names it and its checksum.
func TestFinalizerLeavesWhatTheBackupDidNotWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		// key and owner of the stored object, from the namespace
		key   func(ns string) string
		owner string
		// the checksum the dump reports, when not the stored one
		checksum string
		want     string
	}{
		{name: "manifest of another backup", key: func(ns string) string { return ns + "/other/x.bin" }, owner: "other", want: "its manifest names Backup"},
		// The manifest names this Backup: only the prefix protects the object.
		{name: "outside the namespace prefix", key: func(string) string { return "elsewhere/prefixed/x.bin" }, owner: "prefixed", want: "is not inside"},
		{name: "replaced object", key: func(ns string) string { return ns + "/replaced/x.bin" }, owner: "replaced",
			checksum: "sha256:" + strings.Repeat("ef", 32), want: "the object was replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			name := tc.owner
			key := tc.key(ns)
			sum := storeBackup(t, key, ns, tc.owner)
			if tc.owner == "other" {
				name = "mine"
			}
			if tc.checksum != "" {
				sum = tc.checksum
			}
			before := stored(t, key)
			dumpReports(name, key, sum)
			b := deletingBackup(ns, name)
			if err := stack.Client.Create(context.Background(), b); err != nil {
				t.Fatal(err)
			}
			b = waitForPhase(t, ns, name, v1.PhaseSucceeded)
			ev := deleteAndWaitGone(t, b)
			if !strings.HasPrefix(ev, "ObjectLeft Warning") || !strings.Contains(ev, tc.want) {
				t.Errorf("event %q, want a Warning ObjectLeft saying %q", ev, tc.want)
			}
			if after := stored(t, key); !bytes.Equal(after[0], before[0]) || !bytes.Equal(after[1], before[1]) || before[0] == nil {
				t.Errorf("the object changed: before %q, after %q", before, after)
			}
		})
	}
}

// blackhole accepts connections and never answers; it counts them.
type blackhole struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startBlackhole(t *testing.T) *blackhole {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &blackhole{Listener: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns = append(h.conns, c)
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, c := range h.conns {
			c.Close()
		}
	})
	return h
}

// A storage that is gone, or whose Secret is, or that never answers, does
// not hold a Backup (and its namespace) in deletion: the finalizer gives up
// with a Warning Event and leaves the object.
func TestFinalizerGivesUp(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		breakStorage func(t *testing.T, ns string)
		want         string
	}{
		{"storage deleted", func(t *testing.T, ns string) {
			if err := stack.Client.Delete(ctx, &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: argotest.StorageName}}); err != nil {
				t.Fatal(err)
			}
		}, "BackupStorage " + "%s/minio is gone"},
		{"secret deleted", func(t *testing.T, ns string) {
			if err := stack.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: argotest.StorageName}}); err != nil {
				t.Fatal(err)
			}
		}, "the credentials of BackupStorage %s/minio are gone"},
		{"unreachable", func(t *testing.T, ns string) {
			hole := startBlackhole(t)
			updateStorage(t, ns, func(st *v1.BackupStorage) {
				st.Spec.S3.Endpoint, st.Spec.S3.Region = "http://"+hole.Addr().String(), "us-east-1"
			})
		}, "did not answer within"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			key := ns + "/kept/x.bin"
			dumpReports("kept", key, storeBackup(t, key, ns, "kept"))
			b := deletingBackup(ns, "kept")
			if err := stack.Client.Create(ctx, b); err != nil {
				t.Fatal(err)
			}
			b = waitForPhase(t, ns, "kept", v1.PhaseSucceeded)
			before := stored(t, key)
			tc.breakStorage(t, ns)
			ev := deleteAndWaitGone(t, b)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, ns)
			}
			if !strings.HasPrefix(ev, "ObjectLeft Warning") || !strings.Contains(ev, want) {
				t.Errorf("event %q, want a Warning ObjectLeft saying %q", ev, want)
			}
			if after := stored(t, key); !bytes.Equal(after[0], before[0]) || !bytes.Equal(after[1], before[1]) {
				t.Errorf("the object changed: before %q, after %q", before, after)
			}
		})
	}
}

// forgedWorkflow is a finished Workflow named like a Backup, with its
// labels, whose dump step reports key: what anyone who may create
// Workflows in the namespace can write. With asTaskResult the key comes in
// a WorkflowTaskResult, as Argo's executor reports outputs.
func forgedWorkflow(t *testing.T, ns, name, key string, owner *v1.Backup, asTaskResult bool) {
	t.Helper()
	ctx := context.Background()
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			v1.LabelBackup: name, v1.LabelNamespace: ns, "workflows.argoproj.io/completed": "true",
		}},
		Spec: wfv1.WorkflowSpec{Entrypoint: "main", Templates: []wfv1.Template{{Name: "main", Container: &corev1.Container{Image: "busybox"}}}},
	}
	if owner != nil {
		// Forging the controller reference too: only the UID the status
		// recorded tells this one from the Workflow backflow created.
		wf.OwnerReferences = []metav1.OwnerReference{*metav1.NewControllerRef(owner, v1.GroupVersion.WithKind("Backup"))}
	}
	if err := stack.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	outputs := &wfv1.Outputs{Parameters: []wfv1.Parameter{
		{Name: compiler.OutputKey, Value: wfv1.AnyStringPtr(key)},
		{Name: compiler.OutputChecksum, Value: wfv1.AnyStringPtr("sha256:" + strings.Repeat("ab", 32))},
	}}
	now := metav1.Now()
	node := wfv1.NodeStatus{ID: name + "-1", Name: name + ".dump", DisplayName: compiler.StepDump, Type: wfv1.NodeTypePod,
		Phase: wfv1.NodeSucceeded, StartedAt: now, FinishedAt: now, Outputs: outputs}
	if asTaskResult {
		node.Outputs = nil
		result := &wfv1.WorkflowTaskResult{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: node.ID, Labels: map[string]string{"workflows.argoproj.io/workflow": name}},
			NodeResult: wfv1.NodeResult{Outputs: outputs},
		}
		if err := stack.Client.Create(ctx, result); err != nil {
			t.Fatal(err)
		}
	}
	wf.Status = wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, StartedAt: now, FinishedAt: now, Nodes: wfv1.Nodes{node.ID: node}}
	if err := stack.Client.Update(ctx, wf); err != nil {
		t.Fatal(err)
	}
}

// A Workflow named like a Backup that backflow did not create for it never
// makes the finalizer delete the key it reports: here the key of a backup in
// another namespace, with a manifest that names that backup.
func TestForgedWorkflowNeverLeadsToADelete(t *testing.T) {
	ctx := context.Background()
	victim := newNamespace(t)
	victimKey := victim + "/precious/x.bin"
	storeBackup(t, victimKey, victim, "precious")
	before := stored(t, victimKey)
	for _, tc := range []struct {
		name string
		// replaced: the Workflow backflow created is deleted while it runs
		// and the forged one takes its name, with a forged controller
		// reference to the Backup.
		replaced, asTaskResult bool
		want                   string
	}{
		{name: "in the way before the Backup", want: "that backflow did not create for this Backup"},
		{name: "outputs in a task result", asTaskResult: true, want: "that backflow did not create for this Backup"},
		{name: "replacing the Backup's Workflow", replaced: true, want: "deleted before it finished"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t)
			const name = "forged"
			b := deletingBackup(ns, name)
			if !tc.replaced {
				forgedWorkflow(t, ns, name, victimKey, nil, tc.asTaskResult)
				if err := stack.Client.Create(ctx, b); err != nil {
					t.Fatal(err)
				}
			} else {
				stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Hold: true})
				if err := stack.Client.Create(ctx, b); err != nil {
					t.Fatal(err)
				}
				b = waitForPhase(t, ns, name, v1.PhaseRunning)
				if err := stack.Client.Delete(ctx, stack.Workflow(t, ns, name)); err != nil {
					t.Fatal(err)
				}
				argotest.WaitFor(t, "the Workflow to be gone", 20*time.Second, func() (bool, string) {
					err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &wfv1.Workflow{})
					return apierrors.IsNotFound(err), fmt.Sprint(err)
				})
				forgedWorkflow(t, ns, name, victimKey, b, false)
			}
			var got *v1.Backup
			argotest.WaitFor(t, "the Backup to fail", 30*time.Second, func() (bool, string) {
				got = getBackup(t, ns, name)
				return got.Status.Phase == v1.PhaseFailed, fmt.Sprintf("%+v", got.Status)
			})
			if !strings.Contains(got.Status.Message, tc.want) && !strings.Contains(got.Status.Message, "replaced before it finished") {
				t.Errorf("message %q, want one saying %q", got.Status.Message, tc.want)
			}
			if got.Status.Location != nil {
				t.Errorf("the forged key reached the status: %+v", got.Status.Location)
			}
			if err := stack.Client.Delete(ctx, got); err != nil {
				t.Fatal(err)
			}
			argotest.WaitFor(t, "the Backup to be gone", 30*time.Second, func() (bool, string) {
				err := stack.Client.Get(ctx, client.ObjectKeyFromObject(got), &v1.Backup{})
				return apierrors.IsNotFound(err), fmt.Sprint(err)
			})
			if after := stored(t, victimKey); !bytes.Equal(after[0], before[0]) || !bytes.Equal(after[1], before[1]) {
				t.Fatalf("the other namespace's backup changed: before %q, after %q", before, after)
			}
		})
	}
}

// A schedule's history limit removes Backups, never their data, whatever
// the template's deletionPolicy; a person deleting a run still deletes it.
func TestHistoryLimitsKeepStoredObjects(t *testing.T) {
	ctx := context.Background()
	for _, limit := range []int32{0, 1} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			ns := newNamespace(t)
			spec := backupSpec()
			spec.DeletionPolicy = v1.DeletionPolicyDelete
			s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pruned"}, Spec: v1.BackupScheduleSpec{
				Schedule: "0 3 * * *", SuccessfulBackupsHistoryLimit: ptr(limit), Template: v1.BackupTemplate{Spec: spec},
			}}
			if err := stack.Client.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
			runs := int(limit) + 1
			keys := map[string]string{}
			for i := 1; i <= runs; i++ {
				token := fmt.Sprint(i)
				sum := sha256.Sum256([]byte(token))
				run := fmt.Sprintf("%s-manual-%s", s.Name, hex.EncodeToString(sum[:])[:8])
				keys[run] = ns + "/pruned/" + run + ".bin"
				dumpReports(run, keys[run], storeBackup(t, keys[run], ns, run))
				updateSchedule(t, s, func() { s.Annotations = map[string]string{v1.AnnotationTrigger: token} })
				if i < runs {
					// The schedule makes the run's Backup when it sees its Workflow.
					argotest.WaitFor(t, "run "+run+" to succeed", 60*time.Second, func() (bool, string) {
						var b v1.Backup
						err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: run}, &b)
						return err == nil && b.Status.Phase == v1.PhaseSucceeded, fmt.Sprintf("%v %+v", err, b.Status)
					})
				}
			}
			first := fmt.Sprintf("%s-manual-%s", s.Name, func() string { sum := sha256.Sum256([]byte("1")); return hex.EncodeToString(sum[:])[:8] }())
			before := stored(t, keys[first])
			ev := waitGoneWithFinalizerEvent(t, ns, first)
			if !strings.HasPrefix(ev, "ObjectKept Normal") || !strings.Contains(ev, "history limit of BackupSchedule pruned") {
				t.Errorf("event %q, want ObjectKept naming the history limit", ev)
			}
			if after := stored(t, keys[first]); !bytes.Equal(after[0], before[0]) || !bytes.Equal(after[1], before[1]) || before[0] == nil {
				t.Errorf("the pruned run's object changed: before %q, after %q", before, after)
			}
			if limit == 0 {
				return
			}
			// The run the limit keeps: a person deleting it deletes its data.
			var last string
			for run := range keys {
				if run != first {
					last = run
				}
			}
			b := waitForPhase(t, ns, last, v1.PhaseSucceeded)
			if err := stack.Client.Delete(ctx, b); err != nil {
				t.Fatal(err)
			}
			// Not until the Backup is gone: the schedule gives the run's
			// Workflow, which stays, a Backup again.
			argotest.WaitFor(t, "the run's object to be deleted", 30*time.Second, func() (bool, string) {
				ev := events(t, ns, last)
				return strings.Contains(ev[string(v1.EventDeleted)], "Deleted "+keys[last]), fmt.Sprint(ev)
			})
			if got := stored(t, keys[last]); got[0] != nil || got[1] != nil {
				t.Errorf("deleting run %s left its object: %q", last, got)
			}
		})
	}
}

// A Backup or Restore whose Workflow was created but whose status patch
// never happened adopts that Workflow: one Workflow, the right phase, its UID
// and (for the Restore) what it restores recorded.
func TestRunsAdoptTheirWorkflowAfterALostStatusPatch(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	key := ns + "/adopted/x.bin"
	storeBackup(t, key, ns, "adopted")
	stopManager()
	restarted := false
	defer func() {
		if !restarted {
			stopManager = startManager()
		}
	}()
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted"}, Spec: backupSpec()}
	rs := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopting"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: argotest.StorageName}, Key: key}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}},
	}}
	for _, obj := range []client.Object{b, rs} {
		if err := stack.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	// What the reconcilers did before their status patch failed.
	accounts := &namespace.Accounts{Client: stack.Client, APIReader: stack.Client, Config: argotest.Workflows()}
	if err := accounts.Provide(ctx, ns); err != nil {
		t.Fatal(err)
	}
	access, err := storageref.Resolve(ctx, stack.Client, v1.StorageReference{Name: argotest.StorageName}, ns)
	if err != nil {
		t.Fatal(err)
	}
	backupWf, err := compiler.Backup(compiler.BackupInput{Backup: b, Storage: access}, argotest.CompilerOptions())
	if err != nil {
		t.Fatal(err)
	}
	restoreWf, err := compiler.Restore(compiler.RestoreInput{Restore: rs, Storage: access, Key: key}, argotest.CompilerOptions())
	if err != nil {
		t.Fatal(err)
	}
	for owner, wf := range map[client.Object]*wfv1.Workflow{b: backupWf, rs: restoreWf} {
		if created, err := runstatus.CreateWorkflow(ctx, stack.Client, owner, wf); err != nil || !created {
			t.Fatalf("creating Workflow %s: %v %v", wf.Name, created, err)
		}
	}
	stopManager = startManager()
	restarted = true

	got := waitForPhase(t, ns, "adopted", v1.PhaseSucceeded)
	if got.Status.WorkflowName != backupWf.Name || got.Status.WorkflowUID != backupWf.UID {
		t.Errorf("Backup status names Workflow %s (%s), want %s (%s)", got.Status.WorkflowName, got.Status.WorkflowUID, backupWf.Name, backupWf.UID)
	}
	argotest.WaitFor(t, "the Restore to succeed", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(rs), rs)
		if rs.Status.Phase == v1.PhaseFailed {
			t.Fatalf("Restore failed: %+v", rs.Status)
		}
		return rs.Status.Phase == v1.PhaseSucceeded, fmt.Sprintf("%+v", rs.Status)
	})
	if rs.Status.WorkflowUID != restoreWf.UID || rs.Status.Location == nil || rs.Status.Location.Key != key || rs.Status.Location.Bucket != minioServer.Bucket {
		t.Errorf("Restore status: workflow %s (%s), location %+v", rs.Status.WorkflowName, rs.Status.WorkflowUID, rs.Status.Location)
	}
	argotest.WaitFor(t, "the Restored event", 10*time.Second, func() (bool, string) {
		ev := events(t, ns, "adopting")
		return strings.Contains(ev[string(v1.EventRestored)], key), fmt.Sprint(ev)
	})
	var wfs wfv1.WorkflowList
	if err := stack.Client.List(ctx, &wfs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(wfs.Items) != 2 {
		var names []string
		for _, wf := range wfs.Items {
			names = append(names, wf.Name)
		}
		t.Errorf("Workflows %v, want exactly the two adopted", names)
	}
}
