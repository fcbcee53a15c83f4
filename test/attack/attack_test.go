// Package attack_test is the attack suite of a shared storage: namespace
// alice owns the BackupStorage "shared" and lists mallory in its
// allowedNamespaces; alice has backups in MinIO. From mallory, every way to
// write into, list, read, rotate or delete alice's backups, or to read
// alice's Secrets, is tried against the real apiserver, the backflow
// controller in this process, the real Argo workflow-controller (KWOK
// plays the node) and a real MinIO with its STS. Each attempt must fail
// with a clear message, and every object under alice's prefix must be
// byte-identical afterwards.
package attack_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/retention"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/servers"
)

const (
	alice, mallory = "alice", "mallory"
	sharedStorage  = "shared"
	aliceSeries    = "db"
)

var (
	stack *argotest.Stack
	s3    *servers.MinIO
	// aliceObjects are the sha256 sums of every object under alice's
	// prefix, taken before any attack.
	aliceObjects map[string]string
	aliceKeys    []string
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if s3, err = servers.StartMinIO(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s3.Stop()
	if stack, err = argotest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stack.Stop()
	stack.Driver.DefaultOutputs = argotest.StepOutputs
	if err := stack.InstallWorkflowTemplates(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	stop, err := stack.StartManager(controller.Options{Compiler: argotest.CompilerOptions(), Workflows: argotest.Workflows(), MetricsAddr: "0", ProbeAddr: "0",
		StorageCheckInterval: 2 * time.Second, StorageTimeout: 3 * time.Second, DeleteTimeout: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	if err := setUp(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// setUp makes alice's storage and backups and mallory's namespace.
func setUp(ctx context.Context) error {
	c := stack.Client
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: alice}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: mallory}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: alice, Name: "minio"}, StringData: map[string]string{
			v1.DefaultAccessKeyIDKey: s3.AccessKey, v1.DefaultSecretAccessKeyKey: s3.SecretKey,
		}},
		&v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: alice, Name: sharedStorage}, Spec: v1.BackupStorageSpec{
			S3: v1.S3Storage{Endpoint: s3.Endpoint, Bucket: s3.Bucket, ForcePathStyle: true,
				Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "minio"}}},
			AllowedNamespaces: []string{mallory},
		}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
	}
	backend, err := storage.NewS3Backend(storage.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, PathStyle: true,
		Credentials: storage.Credentials{AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey}})
	if err != nil {
		return err
	}
	// Three verified backups of alice's series, each with its manifest, as
	// her dump and verify steps leave them.
	for i, day := range []string{"20261101", "20261102", "20261103"} {
		key := fmt.Sprintf("%s/%s/%sT030000Z.bin", alice, aliceSeries, day)
		data := []byte(fmt.Sprintf("alice's backup %d: customer records", i))
		if err := backend.Put(ctx, key, bytes.NewReader(data), nil); err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		checksum := "sha256:" + hex.EncodeToString(sum[:])
		at := time.Date(2026, 11, 1+i, 3, 0, 0, 0, time.UTC)
		m := &stages.Manifest{Key: key, Size: int64(len(data)), Checksum: checksum, RawSize: int64(len(data)), RawChecksum: checksum,
			Encryption: stages.EncryptionNone, Source: "command", Format: "raw", Namespace: alice, Name: fmt.Sprintf("db-%d", i),
			Series: aliceSeries, Storage: alice + "/" + sharedStorage, StartedAt: at, FinishedAt: at, VerifiedAt: &at}
		if err := stages.WriteManifest(ctx, backend, m); err != nil {
			return err
		}
		aliceKeys = append(aliceKeys, key)
	}
	aliceObjects, err = objectSums(ctx, s3.Client(), alice+"/")
	return err
}

// objectSums are the sha256 sums of every object under prefix.
func objectSums(ctx context.Context, c *minio.Client, prefix string) (map[string]string, error) {
	out := map[string]string{}
	for obj := range c.ListObjects(ctx, s3.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		r, err := c.GetObject(ctx, s3.Bucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		out[obj.Key] = hex.EncodeToString(sum[:])
	}
	return out, nil
}

// aliceIntact fails the test unless every object under alice's prefix is
// byte-identical to what it was before the attacks, and no other is there.
func aliceIntact(t *testing.T) {
	t.Helper()
	now, err := objectSums(context.Background(), s3.Client(), alice+"/")
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(now, aliceObjects) {
		t.Errorf("alice's objects changed:\nbefore %v\nafter  %v", aliceObjects, now)
	}
}

func ptr[T any](v T) *T { return &v }

// malloryBackup is a Backup in mallory of alice's shared storage.
func malloryBackup(name string) *v1.Backup {
	return &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: name}, Spec: v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: sharedStorage, Namespace: alice}},
	}}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := stack.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// waitFailed waits for a Backup or Restore to finish, fails the test
// unless it failed, and returns its Succeeded condition.
func waitFailed(t *testing.T, obj client.Object, status func() *v1.RunStatus) metav1.Condition {
	t.Helper()
	var cond metav1.Condition
	argotest.WaitFor(t, obj.GetName()+" to finish", 60*time.Second, func() (bool, string) {
		if err := stack.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false, err.Error()
		}
		st := status()
		c := meta.FindStatusCondition(st.Conditions, v1.ConditionSucceeded)
		if c != nil && (st.Phase == v1.PhaseFailed || st.Phase == v1.PhaseSucceeded) {
			cond = *c
			return true, ""
		}
		return false, fmt.Sprintf("phase %q, message %q", st.Phase, st.Message)
	})
	if st := status(); st.Phase != v1.PhaseFailed {
		t.Errorf("%T %s/%s ran: phase %s, key %v", obj, obj.GetNamespace(), obj.GetName(), st.Phase, st.Location)
	}
	return cond
}

// noWorkflow fails the test when a Workflow of that name exists: a refused
// resource must not reach Argo at all.
func noWorkflow(t *testing.T, ns, name string) {
	t.Helper()
	var wf wfv1.Workflow
	err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &wf)
	if !apierrors.IsNotFound(err) {
		t.Errorf("Workflow %s/%s exists (err %v): a resource whose key lies outside its prefix reached Argo", ns, name, err)
	}
}

// Mallory's path template renders into alice's prefix: the controller
// renders it itself, before any Workflow, and refuses it.
func TestPathIntoAlicesPrefix(t *testing.T) {
	for name, path := range map[string]string{
		"plain":    alice + "/" + aliceSeries + "/{{ .Timestamp | date \"20060102T150405Z\" }}{{ .Extension }}",
		"template": `{{ "ali" }}{{ "ce" }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`,
		"top":      "{{ .Series }}-{{ .Timestamp | date \"20060102T150405Z\" }}{{ .Extension }}",
	} {
		t.Run(name, func(t *testing.T) {
			b := malloryBackup("path-" + name)
			b.Spec.Storage.Path = path
			create(t, b)
			cond := waitFailed(t, b, func() *v1.RunStatus { return &b.Status.RunStatus })
			if cond.Reason != string(v1.ReasonKeyOutsidePrefix) || !strings.Contains(cond.Message, mallory+"/") {
				t.Errorf("Succeeded is %s %q, want reason %s and a message naming mallory's prefix %s/", cond.Reason, cond.Message, v1.ReasonKeyOutsidePrefix, mallory)
			}
			noWorkflow(t, mallory, b.Name)
			aliceIntact(t)
		})
	}
}

// A '..' in a path or key is refused at admission.
func TestDotDotRefusedAtAdmission(t *testing.T) {
	b := malloryBackup("dotdot")
	b.Spec.Storage.Path = "../" + alice + "/x{{ .Extension }}"
	err := stack.Client.Create(context.Background(), b)
	if err == nil || !strings.Contains(err.Error(), "spec.storage.path") || !strings.Contains(err.Error(), "'..'") {
		t.Errorf("a path with '..' is not refused naming spec.storage.path: %v", err)
	}
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "dotdot"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: sharedStorage, Namespace: alice}, Key: mallory + "/../" + aliceKeys[0]}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
	}}
	err = stack.Client.Create(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "spec.from.object.key") {
		t.Errorf("a key with '..' is not refused naming spec.from.object.key: %v", err)
	}
	aliceIntact(t)
}

// Mallory restores (reads) alice's object by its key.
func TestObjectKeyIntoAlicesPrefix(t *testing.T) {
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "read-alice"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: sharedStorage, Namespace: alice}, Key: aliceKeys[0]}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
	}}
	create(t, r)
	cond := waitFailed(t, r, func() *v1.RunStatus { return &r.Status.RunStatus })
	if cond.Reason != string(v1.ReasonKeyOutsidePrefix) || !strings.Contains(cond.Message, aliceKeys[0]) {
		t.Errorf("Succeeded is %s %q, want reason %s naming the key %s", cond.Reason, cond.Message, v1.ReasonKeyOutsidePrefix, aliceKeys[0])
	}
	noWorkflow(t, mallory, r.Name)
	aliceIntact(t)
}

// checksumOf is the checksum alice's manifest records for key.
func checksumOf(t *testing.T, key string) string {
	t.Helper()
	r, err := s3.Client().GetObject(context.Background(), s3.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// events are the Events of an object, reason -> message.
func events(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for reason, e := range stack.Events(t, ns, name) {
		out[reason] = e.Message
	}
	return out
}

// deleteAndWaitLeft deletes a Delete Backup and waits until its finalizer
// let it go, returning the ObjectLeft Event's message ("" when the Backup
// named no object), or the Deleted one when it deleted (only ever
// mallory's own object).
func deleteAndWaitLeft(t *testing.T, b *v1.Backup) string {
	t.Helper()
	if err := stack.Client.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	var left string
	argotest.WaitFor(t, b.Name+" to be gone", 60*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKeyFromObject(b), &v1.Backup{})
		ev := events(t, b.Namespace, b.Name)
		left = ev[string(v1.EventObjectLeft)]
		if _, deleted := ev[string(v1.EventDeleted)]; deleted {
			return true, ""
		}
		return apierrors.IsNotFound(err), fmt.Sprintf("get: %v, events %v", err, ev)
	})
	// The controller may have mirrored the Backup's status from its own
	// Workflow again before the deletion, undoing the forgery: then the
	// finalizer deletes mallory's own object, and only that.
	if deleted, ok := events(t, b.Namespace, b.Name)[string(v1.EventDeleted)]; ok {
		if !strings.Contains(deleted, " "+mallory+"/") || strings.Contains(deleted, alice+"/") {
			t.Errorf("the finalizer of %s deleted what is not mallory's: %s", b.Name, deleted)
		}
		return deleted
	}
	return left
}

func waitSucceeded(t *testing.T, b *v1.Backup) {
	t.Helper()
	argotest.WaitFor(t, b.Name+" to succeed", 60*time.Second, func() (bool, string) {
		if err := stack.Client.Get(context.Background(), client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		return b.Status.Phase == v1.PhaseSucceeded, fmt.Sprintf("%s %s", b.Status.Phase, b.Status.Message)
	})
}

// Mallory's own Backup, deletionPolicy Delete, has its status rewritten to
// alice's key and checksum before she deletes it: the finalizer leaves the
// object, saying why.
func TestFinalizerWithForgedStatusKey(t *testing.T) {
	b := malloryBackup("forged-status")
	b.Spec.DeletionPolicy = v1.DeletionPolicyDelete
	create(t, b)
	waitSucceeded(t, b)
	patch := client.MergeFrom(b.DeepCopy())
	b.Status.Location = &v1.ObjectLocation{Storage: alice + "/" + sharedStorage, Bucket: s3.Bucket, Key: aliceKeys[0]}
	b.Status.Checksum = checksumOf(t, aliceKeys[0])
	if err := stack.Client.Status().Patch(context.Background(), b, patch); err != nil {
		t.Fatal(err)
	}
	left := deleteAndWaitLeft(t, b)
	if !strings.Contains(left, mallory+"/") && !strings.Contains(left, "manifest") {
		t.Errorf("ObjectLeft says %q: it names neither mallory's prefix nor the manifest", left)
	}
	aliceIntact(t)
}

// Mallory's dump step "reports" alice's key and checksum as its output (a
// WorkflowTaskResult, which any pod of her namespace may write, as the
// executor does): her Backup then names alice's object, and neither the
// finalizer nor a Restore of that Backup may touch it.
func TestForgedStepOutputs(t *testing.T) {
	b := malloryBackup("forged-output")
	b.Spec.DeletionPolicy = v1.DeletionPolicyDelete
	out := argotest.StepOutputs(mallory, b.Name, compiler.StepDump)
	out[compiler.OutputKey], out[compiler.OutputChecksum] = aliceKeys[1], checksumOf(t, aliceKeys[1])
	stack.Driver.Set(b.Name, compiler.StepDump, argotest.Outcome{Outputs: out})
	stack.Driver.Set(b.Name, compiler.StepVerify, argotest.Outcome{Outputs: out})
	create(t, b)
	argotest.WaitFor(t, b.Name+" to finish", 60*time.Second, func() (bool, string) {
		if err := stack.Client.Get(context.Background(), client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		return b.Status.Phase == v1.PhaseSucceeded || b.Status.Phase == v1.PhaseFailed, string(b.Status.Phase)
	})
	if loc := b.Status.Location; loc != nil && loc.Key == aliceKeys[1] && b.Status.Phase == v1.PhaseSucceeded {
		t.Logf("the forged output reached the Backup's status: %s", loc.Key)
	}
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "restore-forged-output"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: b.Name}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
	}}
	create(t, r)
	cond := waitFailed(t, r, func() *v1.RunStatus { return &r.Status.RunStatus })
	if cond.Reason != string(v1.ReasonKeyOutsidePrefix) {
		t.Errorf("a Restore of a Backup naming alice's key %s is not refused before it runs: %s %q", aliceKeys[1], cond.Reason, cond.Message)
	}
	noWorkflow(t, mallory, r.Name)
	if left := deleteAndWaitLeft(t, b); b.Status.Location != nil && left == "" {
		t.Errorf("the finalizer left %s without an ObjectLeft Event saying why", b.Status.Location.Key)
	}
	aliceIntact(t)
}

// A Workflow mallory wrote herself, named and labelled like her Backup and
// reporting alice's key: the Backup fails, its status never takes the
// Workflow's outputs, and deleting it deletes nothing.
func TestHandWrittenWorkflowNamedLikeABackup(t *testing.T) {
	name := "handmade"
	out := argotest.StepOutputs(mallory, name, compiler.StepDump)
	out[compiler.OutputKey], out[compiler.OutputChecksum] = aliceKeys[2], checksumOf(t, aliceKeys[2])
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Outputs: out})
	wf := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: name, Labels: map[string]string{v1.LabelBackup: name, v1.LabelNamespace: mallory}},
		Spec: wfv1.WorkflowSpec{Entrypoint: "main", ServiceAccountName: "backflow-workflow", Templates: []wfv1.Template{
			{Name: "main", DAG: &wfv1.DAGTemplate{Tasks: []wfv1.DAGTask{{Name: compiler.StepDump, Template: "dump"}}}},
			{Name: "dump", Container: &corev1.Container{Image: "busybox", Command: []string{"true"}},
				Outputs: wfv1.Outputs{Parameters: []wfv1.Parameter{{Name: compiler.OutputKey, ValueFrom: &wfv1.ValueFrom{Path: "/tmp/key"}}}}},
		}},
	}
	create(t, wf)
	b := malloryBackup(name)
	b.Spec.DeletionPolicy = v1.DeletionPolicyDelete
	create(t, b)
	cond := waitFailed(t, b, func() *v1.RunStatus { return &b.Status.RunStatus })
	if cond.Reason != string(v1.ReasonInvalidSpec) {
		t.Errorf("Succeeded is %s %q, want %s: a Workflow backflow did not create is in the way", cond.Reason, cond.Message, v1.ReasonInvalidSpec)
	}
	if b.Status.Location != nil && b.Status.Location.Key != "" {
		t.Errorf("the Backup took the hand-written Workflow's output %q", b.Status.Location.Key)
	}
	deleteAndWaitLeft(t, b)
	aliceIntact(t)
}

// runCredentials waits for the Secret with the credentials minted for a
// Workflow's steps and returns it.
func runCredentials(t *testing.T, ns, workflow string) *corev1.Secret {
	t.Helper()
	var wf wfv1.Workflow
	argotest.WaitFor(t, "Workflow "+workflow, 30*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: workflow}, &wf)
		return err == nil, fmt.Sprint(err)
	})
	var s corev1.Secret
	name := storageref.RunSecretName(wf.UID)
	argotest.WaitFor(t, "the run Secret "+name, 30*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s)
		return err == nil, fmt.Sprint(err)
	})
	return &s
}

// The credentials minted for mallory's run, used with minio-go directly:
// every step's may neither list, read, write nor delete alice's objects,
// nor rotate alice's series with a forged namespace.
func TestMintedCredentialsAgainstAlice(t *testing.T) {
	b := malloryBackup("minted")
	b.Spec.Retention = &v1.Retention{KeepLast: ptr(int32(1))}
	stack.Driver.Set(b.Name, compiler.StepDump, argotest.Outcome{Hold: true})
	create(t, b)
	secret := runCredentials(t, mallory, b.Name)
	ctx := context.Background()
	steps := 0
	for _, step := range []string{compiler.StepDump, compiler.StepVerify, compiler.StepRestore, compiler.StepRotate} {
		idKey, secretKey, tokenKey := compiler.CredentialKeys(step)
		id, key, token := string(secret.Data[idKey]), string(secret.Data[secretKey]), string(secret.Data[tokenKey])
		if id == "" {
			continue
		}
		steps++
		if id == s3.AccessKey || key == s3.SecretKey {
			t.Errorf("the %s step of a run in mallory holds the bucket's own credentials", step)
		}
		c, err := minio.New(strings.TrimPrefix(s3.Endpoint, "http://"), &minio.Options{
			Creds: credentials.NewStaticV4(id, key, token)})
		if err != nil {
			t.Fatal(err)
		}
		for obj := range c.ListObjects(ctx, s3.Bucket, minio.ListObjectsOptions{Prefix: alice + "/", Recursive: true}) {
			if obj.Err == nil {
				t.Errorf("%s credentials list alice's %s", step, obj.Key)
				continue
			}
			denied(t, step+" list", obj.Err)
		}
		r, err := c.GetObject(ctx, s3.Bucket, aliceKeys[0], minio.GetObjectOptions{})
		if err == nil {
			_, err = io.ReadAll(r)
		}
		denied(t, step+" get", err)
		_, err = c.PutObject(ctx, s3.Bucket, alice+"/"+aliceSeries+"/evil.bin", strings.NewReader("evil"), 4, minio.PutObjectOptions{})
		denied(t, step+" put", err)
		denied(t, step+" delete", c.RemoveObject(ctx, s3.Bucket, aliceKeys[0], minio.RemoveObjectOptions{}))
		if step == "rotate" {
			backend, err := storage.NewS3Backend(storage.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, PathStyle: true,
				Credentials: storage.Credentials{AccessKeyID: id, SecretAccessKey: key, SessionToken: token}})
			if err != nil {
				t.Fatal(err)
			}
			// The rotate step run by hand with alice's namespace and
			// series: the manifests name them, the credentials do not
			// reach them.
			_, err = stages.Rotate(ctx, stages.RotateConfig{Storage: backend, Scope: alice + "/" + aliceSeries + "/", Namespace: alice,
				Series: aliceSeries, StorageID: alice + "/" + sharedStorage, Rules: retention.Rules{KeepLast: ptr(1)}})
			if err == nil {
				t.Error("rotate with mallory's credentials ran over alice's series")
			}
		}
	}
	if steps == 0 {
		t.Errorf("the run Secret %s holds no step's credentials: %v", secret.Name, slices.Sorted(maps.Keys(secret.Data)))
	}
	stack.Driver.Set(b.Name, compiler.StepDump, argotest.Outcome{})
	aliceIntact(t)
}

// denied fails the test unless err is S3's AccessDenied.
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s of alice's objects succeeded", what)
		return
	}
	if minio.ToErrorResponse(err).Code != "AccessDenied" {
		t.Errorf("%s of alice's objects failed with %v, want AccessDenied", what, err)
	}
}

// The pods of mallory's run reference only Secrets of mallory's namespace,
// none of which holds the bucket's own secret key, and no environment
// value of theirs is a key: a command source that reads its environment
// or mounts Secrets finds nothing of alice's.
func TestMallorysPodsHoldNoBucketKey(t *testing.T) {
	b := malloryBackup("pod-refs")
	b.Spec.Source.Command.Env = []corev1.EnvVar{{Name: "STEAL", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "minio"}, Key: v1.DefaultSecretAccessKeyKey}}}}
	stack.Driver.Set(b.Name, compiler.StepDump, argotest.Outcome{Hold: true})
	defer stack.Driver.Set(b.Name, compiler.StepDump, argotest.Outcome{})
	create(t, b)
	var pod corev1.Pod
	argotest.WaitFor(t, "the dump pod", 60*time.Second, func() (bool, string) {
		var pods corev1.PodList
		if err := stack.Client.List(context.Background(), &pods, client.InNamespace(mallory),
			client.MatchingLabels{"workflows.argoproj.io/workflow": b.Name}); err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			if argotest.StepOfNode(b.Name, p.Annotations["workflows.argoproj.io/node-name"]) == compiler.StepDump {
				pod = p
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d pods", len(pods.Items))
	})
	if pod.Namespace != mallory {
		t.Fatalf("the dump pod runs in %s", pod.Namespace)
	}
	var refs []string
	for _, ctr := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, e := range ctr.Env {
			if e.Value == s3.SecretKey || e.Value == s3.AccessKey {
				t.Errorf("container %s has the bucket's key in its environment (%s)", ctr.Name, e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				refs = append(refs, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			refs = append(refs, v.Secret.SecretName)
		}
	}
	for _, name := range slices.Compact(slices.Sorted(slices.Values(refs))) {
		var s corev1.Secret
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: mallory, Name: name}, &s)
		if apierrors.IsNotFound(err) {
			continue // a reference to nothing: the pod cannot start, nothing leaks
		}
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Data {
			if string(v) == s3.SecretKey {
				t.Errorf("the dump pod references Secret %s/%s, whose %s is the bucket's own secret key", mallory, name, k)
			}
		}
	}
	aliceIntact(t)
}

// No Secret in mallory's namespace holds alice's bucket credentials: not a
// copy of alice's Secret, not a run Secret.
func TestNoCopyOfAlicesSecretInMallory(t *testing.T) {
	// Mallory uses the storage, so that the controller provides what her
	// runs need.
	b := malloryBackup("uses-shared")
	create(t, b)
	argotest.WaitFor(t, b.Name+" to start", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(context.Background(), client.ObjectKeyFromObject(b), b)
		return b.Status.WorkflowUID != "" || b.Status.Phase == v1.PhaseFailed, string(b.Status.Phase)
	})
	var secrets corev1.SecretList
	if err := stack.Client.List(context.Background(), &secrets, client.InNamespace(mallory)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			if string(v) == s3.SecretKey {
				t.Errorf("Secret %s/%s key %s holds alice's bucket secret key", mallory, s.Name, k)
			}
		}
	}
}

// Mallory's Backup takes alice's series name, and its rotate step is run as
// mallory's pod would run it (namespace mallory, the storage's ID), over
// the directory of alice's series, even with the bucket's own credentials:
// rotate deletes only backups whose manifests name mallory's series.
func TestRotateAlicesSeries(t *testing.T) {
	ctx := context.Background()
	backend, err := storage.NewS3Backend(storage.S3Config{Endpoint: s3.Endpoint, Bucket: s3.Bucket, PathStyle: true,
		Credentials: storage.Credentials{AccessKeyID: s3.AccessKey, SecretAccessKey: s3.SecretKey}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", aliceKeys[2]} {
		res, err := stages.Rotate(ctx, stages.RotateConfig{Storage: backend, Scope: alice + "/" + aliceSeries + "/", Namespace: mallory,
			Series: aliceSeries, StorageID: alice + "/" + sharedStorage, Key: key, Rules: retention.Rules{KeepLast: ptr(1)}})
		switch {
		case key == "" && err != nil:
			t.Fatalf("rotate of mallory's (empty) series: %v", err)
		case key != "" && err == nil:
			t.Errorf("rotate accepted alice's %s as the backup mallory's series just wrote", key)
		case res != nil && res.Foreign == 0:
			t.Errorf("rotate saw none of alice's objects below %s/%s/: the test proves nothing", alice, aliceSeries)
		case res != nil && res.Deleted > 0:
			t.Errorf("rotate as mallory deleted %d of alice's objects", res.Deleted)
		}
	}
	aliceIntact(t)
}
