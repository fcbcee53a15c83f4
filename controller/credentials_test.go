package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/notifyref"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/argotest"
)

// shareStorage lets namespace other use the storage of namespace owner.
func shareStorage(t *testing.T, owner string, allowed ...string) {
	t.Helper()
	updateStorage(t, owner, func(st *v1.BackupStorage) { st.Spec.AllowedNamespaces = allowed })
}

// updateStorage applies change to the newest version of the namespace's
// storage: the controller updates it too (its finalizer), so a plain
// Get-then-Update races it.
func updateStorage(t *testing.T, ns string, change func(*v1.BackupStorage)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var st v1.BackupStorage
		if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: argotest.StorageName}, &st); err != nil {
			return err
		}
		change(&st)
		return stack.Client.Update(context.Background(), &st)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitForRunSecret waits for the run Secret of a Workflow, once the
// Workflow exists.
func waitForRunSecret(t *testing.T, ns, workflow string) (*wfv1.Workflow, *corev1.Secret) {
	t.Helper()
	var wf wfv1.Workflow
	var secret corev1.Secret
	argotest.WaitFor(t, "the run Secret of "+workflow, 30*time.Second, func() (bool, string) {
		if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: workflow}, &wf); err != nil {
			return false, err.Error()
		}
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: storageref.RunSecretName(wf.UID)}, &secret)
		return err == nil, fmt.Sprint(err)
	})
	return &wf, &secret
}

func waitForSecretGone(t *testing.T, ns, name string) {
	t.Helper()
	argotest.WaitFor(t, "Secret "+name+" to be deleted", 30*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// A Backup in mallory that uses alice's storage runs with a Secret of its
// Workflow's own, written by the controller, owned by the Workflow and
// deleted when it finishes; its credentials, used directly against MinIO,
// write only inside mallory's prefix and cannot read, list or delete
// alice's objects. Nothing is copied into mallory.
func TestRunSecretOfAnotherNamespace(t *testing.T) {
	ctx := context.Background()
	alice, mallory := newNamespace(t), newNamespace(t)
	shareStorage(t, alice, mallory)
	aliceKey := alice + "/nightly/20260101T000000Z.bin.zst"
	bucket := s3As(t, storage.Credentials{AccessKeyID: minioServer.AccessKey, SecretAccessKey: minioServer.SecretKey})
	if err := bucket.Put(ctx, aliceKey, strings.NewReader("alice's backup"), nil); err != nil {
		t.Fatal(err)
	}

	name := "tenant"
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Hold: true})
	spec := backupSpec()
	spec.Storage.Namespace = alice
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: name}, Spec: spec}
	if err := stack.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	wf, secret := waitForRunSecret(t, mallory, name)
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != wf.UID || secret.OwnerReferences[0].Kind != "Workflow" {
		t.Errorf("run Secret owners %+v, want the Workflow %s", secret.OwnerReferences, wf.UID)
	}
	id, key, token := compiler.CredentialKeys(compiler.StepDump)
	if string(secret.Data[id]) == minioServer.AccessKey {
		t.Fatal("mallory's run holds the bucket credentials")
	}
	dump := s3As(t, storage.Credentials{AccessKeyID: string(secret.Data[id]), SecretAccessKey: string(secret.Data[key]), SessionToken: string(secret.Data[token])})
	if err := dump.Put(ctx, mallory+"/"+name+"/x.bin.zst", strings.NewReader("mallory's"), nil); err != nil {
		t.Errorf("the dump's credentials cannot write into its series: %v", err)
	}
	for what, err := range map[string]error{
		"write into alice's prefix": dump.Put(ctx, alice+"/"+name+"/x.bin.zst", strings.NewReader("evil"), nil),
		"overwrite alice's backup":  dump.Put(ctx, aliceKey, strings.NewReader("evil"), nil),
		"delete alice's backup":     dump.Delete(ctx, aliceKey),
		"read alice's backup":       func() error { _, err := dump.Get(ctx, aliceKey); return err }(),
		"list the bucket":           func() error { _, err := dump.List(ctx, ""); return err }(),
	} {
		if !errors.Is(err, storage.ErrAccessDenied) {
			t.Errorf("%s with mallory's dump credentials: %v, want access denied", what, err)
		}
	}
	var copies corev1.SecretList
	if err := stack.Client.List(ctx, &copies, client.InNamespace(mallory), client.HasLabels{storageref.LabelCopiedFrom}); err != nil || len(copies.Items) != 0 {
		t.Errorf("copies of alice's Secret in mallory: %d, %v", len(copies.Items), err)
	}
	if got := testutil.ToFloat64(metrics.CredentialsIssuedTotal.WithLabelValues(mallory, metrics.CredentialsMinted)); got != 2 {
		t.Errorf("backflow_credentials_issued_total{namespace=mallory,kind=minted} = %v, want 2 (dump and verify)", got)
	}
	if ev := events(t, mallory, name)[string(v1.EventCredentialsMinted)]; !strings.Contains(ev, "Minted credentials") || strings.Contains(ev, string(secret.Data[key])) {
		t.Errorf("CredentialsMinted Event: %q", ev)
	}

	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Outputs: argotest.StepOutputs(mallory, name, compiler.StepDump)})
	waitForPhase(t, mallory, name, v1.PhaseSucceeded)
	waitForSecretGone(t, mallory, secret.Name)
	r, err := bucket.Get(ctx, aliceKey)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := io.ReadAll(r); err != nil || string(got) != "alice's backup" {
		t.Errorf("alice's backup is now %q, %v", got, err)
	}
}

// s3As opens the test's MinIO with the given credentials, as a step would.
func s3As(t *testing.T, creds storage.Credentials) *storage.S3Backend {
	t.Helper()
	b, err := storage.NewS3Backend(storage.S3Config{Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, PathStyle: true, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The storage's own namespace gets copies of the bucket credentials.
func TestRunSecretOfTheStoragesNamespace(t *testing.T) {
	ns := newNamespace(t)
	name := "own"
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Hold: true})
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}); err != nil {
		t.Fatal(err)
	}
	_, secret := waitForRunSecret(t, ns, name)
	for _, step := range []string{compiler.StepDump, compiler.StepVerify} {
		id, key, _ := compiler.CredentialKeys(step)
		if string(secret.Data[id]) != minioServer.AccessKey || string(secret.Data[key]) != minioServer.SecretKey {
			t.Errorf("step %s: not the bucket credentials", step)
		}
	}
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Outputs: argotest.StepOutputs(ns, name, compiler.StepDump)})
	waitForPhase(t, ns, name, v1.PhaseSucceeded)
	waitForSecretGone(t, ns, secret.Name)
}

// A finished run's Secrets are deleted as the controller's cache knows
// them: a restarted controller, which reconciles every finished run, asks
// the API server for neither of them, deletes the run Secret backflow wrote
// and leaves a Secret of the notify Secret's name that backflow did not
// write; a run Secret that reaches the cache after its run finished is
// deleted too.
func TestFinishedRunSecretsAreDeletedFromTheCache(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	name := "finished"
	if err := stack.Client.Create(ctx, &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, name, v1.PhaseSucceeded)
	wf := stack.Workflow(t, ns, name)
	storageSecret, notifySecret := storageref.RunSecretName(wf.UID), notifyref.SecretName(wf.UID)
	waitForSecretGone(t, ns, storageSecret)
	ownedByTheRun := func(name string, labels map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: wfv1.SchemeGroupVersion.String(), Kind: "Workflow", Name: wf.Name, UID: wf.UID,
		}}}}
	}

	// What the controller finds when it starts: the run Secret backflow
	// wrote (as if it had stopped before deleting it), and a Secret of the
	// notify Secret's name without backflow's labels.
	stopManager()
	stopManager = func() {}
	defer func() {
		stopManager()
		stopManager = startManager()
	}()
	for _, s := range []*corev1.Secret{ownedByTheRun(storageSecret, runsecret.Labels(storageref.LabelRunStorage, "some-storage")), ownedByTheRun(notifySecret, nil)} {
		if err := stack.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	reads := map[string]int{}
	runSecretPaths := map[string]bool{"/api/v1/namespaces/" + ns + "/secrets/" + storageSecret: true, "/api/v1/namespaces/" + ns + "/secrets/" + notifySecret: true}
	cfg := rest.CopyConfig(stack.Config)
	cfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && runSecretPaths[req.URL.Path] {
				mu.Lock()
				reads[req.URL.Path]++
				mu.Unlock()
			}
			return next.RoundTrip(req)
		})
	})
	stop, err := stack.StartManagerWithConfig(cfg, managerOptions())
	if err != nil {
		t.Fatal(err)
	}
	stopManager = stop
	waitForSecretGone(t, ns, storageSecret)
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: notifySecret}, &corev1.Secret{}); err != nil {
		t.Errorf("the Secret backflow did not write: %v, want it left", err)
	}

	// A notify Secret of backflow's that reaches the cache now.
	if err := stack.Client.Delete(ctx, ownedByTheRun(notifySecret, nil)); err != nil {
		t.Fatal(err)
	}
	if err := stack.Client.Create(ctx, ownedByTheRun(notifySecret, runsecret.Labels(notifyref.LabelNotifyRun, "true"))); err != nil {
		t.Fatal(err)
	}
	waitForSecretGone(t, ns, notifySecret)
	mu.Lock()
	defer mu.Unlock()
	if len(reads) > 0 {
		t.Errorf("the controller read run Secrets from the API server: %v, want none", reads)
	}
}

// roundTripperFunc is a function as an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// When alice's storage stops admitting mallory, the run Secrets of
// mallory's runs on it go (a scheduled run's too), and mallory's schedule
// on it is suspended with Ready=False StorageForbidden; admitting mallory
// again resumes it.
func TestUnallowedNamespaceLosesCredentials(t *testing.T) {
	ctx := context.Background()
	alice, mallory := newNamespace(t), newNamespace(t)
	shareStorage(t, alice, mallory)
	spec := backupSpec()
	spec.Storage.Namespace = alice
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "hourly", Annotations: map[string]string{v1.AnnotationTrigger: "1"}},
		Spec: v1.BackupScheduleSpec{Schedule: "0 * * * *", Template: v1.BackupTemplate{Spec: spec}}}
	// The trigger's run is named after the token (schedule reconciler).
	var run string
	argotest.WaitFor(t, "the CronWorkflow", 20*time.Second, func() (bool, string) {
		if s.UID == "" {
			if err := stack.Client.Create(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		var wfs wfv1.WorkflowList
		_ = stack.Client.List(ctx, &wfs, client.InNamespace(mallory), client.MatchingLabels{v1.LabelSchedule: "hourly"})
		for _, wf := range wfs.Items {
			run = wf.Name
			stack.Driver.Set(run, compiler.StepDump, argotest.Outcome{Hold: true})
		}
		return run != "", "no run yet"
	})
	_, secret := waitForRunSecret(t, mallory, run)

	shareStorage(t, alice)
	waitForSecretGone(t, mallory, secret.Name)
	argotest.WaitFor(t, "the schedule to be suspended", 30*time.Second, func() (bool, string) {
		var cron wfv1.CronWorkflow
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: mallory, Name: "hourly"}, &cron); err != nil {
			return false, err.Error()
		}
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			return false, err.Error()
		}
		ready := meta.FindStatusCondition(s.Status.Conditions, v1.ConditionReady)
		return cron.Spec.Suspend && ready != nil && ready.Status == metav1.ConditionFalse && ready.Reason == string(v1.ReasonStorageForbidden),
			fmt.Sprintf("suspend %v, ready %+v", cron.Spec.Suspend, ready)
	})

	shareStorage(t, alice, mallory)
	argotest.WaitFor(t, "the schedule to resume", 30*time.Second, func() (bool, string) {
		var cron wfv1.CronWorkflow
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: mallory, Name: "hourly"}, &cron); err != nil {
			return false, err.Error()
		}
		return !cron.Spec.Suspend, "still suspended"
	})
	stack.Driver.Set(run, compiler.StepDump, argotest.Outcome{Fail: true, Message: "done"})
}

// withStorageCA gives the namespace's storage a CA bundle, from a Secret
// (the test's MinIO speaks http, so nothing verifies it: the test follows
// where the bundle goes).
func withStorageCA(t *testing.T, ns, pem string) {
	t.Helper()
	ctx := context.Background()
	if err := stack.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, StringData: map[string]string{"bundle.pem": pem}}); err != nil {
		t.Fatal(err)
	}
	updateStorage(t, ns, func(st *v1.BackupStorage) {
		st.Spec.S3.TLS = &v1.StorageTLS{CASecretRef: &v1.SecretKeySelector{Name: "ca", Key: "bundle.pem"}}
	})
}

// The steps' pods, as Argo makes them from the compiled Workflow, read their
// own keys of their Workflow's run Secret, and mount the CA bundle from it;
// the run Secret holds the bundle.
func TestStepPodsReadTheRunSecret(t *testing.T) {
	ns := newNamespace(t)
	withStorageCA(t, ns, "CA BUNDLE")
	name := "refs"
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Hold: true})
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}); err != nil {
		t.Fatal(err)
	}
	wf, secret := waitForRunSecret(t, ns, name)
	if string(secret.Data[compiler.RunCAKey]) != "CA BUNDLE" {
		t.Errorf("run Secret %s: %q, want the storage's CA bundle", compiler.RunCAKey, secret.Data[compiler.RunCAKey])
	}
	id, key, token := compiler.CredentialKeys(compiler.StepDump)
	want := []string{
		"env AWS_ACCESS_KEY_ID: " + secret.Name + "/" + id,
		"env AWS_SECRET_ACCESS_KEY: " + secret.Name + "/" + key,
		"env AWS_SESSION_TOKEN: " + secret.Name + "/" + token + " (optional)",
		"volume storage-ca: " + secret.Name + "/" + compiler.RunCAKey,
	}
	if got := argotest.SecretReferences(stack.StepPod(t, ns, wf.Name, compiler.StepDump)); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the dump pod reads\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Outputs: argotest.StepOutputs(ns, name, compiler.StepDump)})
	waitForPhase(t, ns, name, v1.PhaseSucceeded)
}

// A Restore in mallory from alice's storage gets credentials that read only
// the object it restores; one that names alice's object gets none and
// waits, CredentialsNotMinted, with no Workflow.
func TestRestoreFromAnotherNamespace(t *testing.T) {
	ctx := context.Background()
	alice, mallory := newNamespace(t), newNamespace(t)
	shareStorage(t, alice, mallory)
	bucket := s3As(t, storage.Credentials{AccessKeyID: minioServer.AccessKey, SecretAccessKey: minioServer.SecretKey})
	own, aliceKey := mallory+"/old/20261101T030000Z.bin.zst", alice+"/old/20261101T030000Z.bin.zst"
	for _, key := range []string{own, aliceKey} {
		if err := bucket.Put(ctx, key, strings.NewReader("backup of "+key), nil); err != nil {
			t.Fatal(err)
		}
	}
	restore := func(name, key string) {
		stack.Driver.Set(name, compiler.StepRestore, argotest.Outcome{Hold: true})
		if err := stack.Client.Create(ctx, &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: name}, Spec: v1.RestoreSpec{
			From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: argotest.StorageName, Namespace: alice}, Key: key}},
			Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	restore("mine", own)
	_, secret := waitForRunSecret(t, mallory, "mine")
	id, key, token := compiler.CredentialKeys(compiler.StepRestore)
	step := s3As(t, storage.Credentials{AccessKeyID: string(secret.Data[id]), SecretAccessKey: string(secret.Data[key]), SessionToken: string(secret.Data[token])})
	if r, err := step.Get(ctx, own); err != nil {
		t.Errorf("the restore's credentials cannot read its object: %v", err)
	} else {
		_ = r.Close()
	}
	if _, err := step.Get(ctx, aliceKey); !errors.Is(err, storage.ErrAccessDenied) {
		t.Errorf("the restore's credentials read alice's object: %v", err)
	}
	stack.Driver.Set("mine", compiler.StepRestore, argotest.Outcome{Outputs: argotest.StepOutputs(mallory, "mine", compiler.StepRestore)})
	waitForSecretGone(t, mallory, secret.Name)

	restore("theirs", aliceKey)
	// Refused before any credentials are asked for: the key lies outside
	// mallory's prefix (RestoreGrants would mint none for it either).
	argotest.WaitFor(t, "the Restore of alice's object to fail", 30*time.Second, func() (bool, string) {
		var rs v1.Restore
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: mallory, Name: "theirs"}, &rs); err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(rs.Status.Conditions, v1.ConditionSucceeded)
		return c != nil && c.Reason == string(v1.ReasonKeyOutsidePrefix) && rs.Status.WorkflowName == "", fmt.Sprintf("%+v", rs.Status)
	})
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: mallory, Name: "theirs"}, &wfv1.Workflow{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Workflow for the Restore of alice's object: %v", err)
	}
}

// A Workflow named and labelled like a Backup that backflow did not create
// for it gets no credentials: the Backup fails and no run Secret is written
// for the look-alike.
func TestLookAlikeWorkflowGetsNoCredentials(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	const name = "lookalike"
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{Hold: true})
	forged := &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1.LabelBackup: name, v1.LabelNamespace: ns}},
		Spec:       wfv1.WorkflowSpec{Entrypoint: compiler.StepDump, Templates: []wfv1.Template{{Name: compiler.StepDump, Container: &corev1.Container{Image: "busybox"}}}},
	}
	if err := stack.Client.Create(ctx, forged); err != nil {
		t.Fatal(err)
	}
	if err := stack.Client.Create(ctx, &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}); err != nil {
		t.Fatal(err)
	}
	b := waitForPhase(t, ns, name, v1.PhaseFailed)
	if !strings.Contains(b.Status.Message, "did not create") {
		t.Errorf("message %q", b.Status.Message)
	}
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: storageref.RunSecretName(forged.UID)}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("run Secret of the look-alike: %v, want none", err)
	}
	stack.Driver.Set(name, compiler.StepDump, argotest.Outcome{})
}

// A storage whose STS refuses to mint (here: it does not know the bucket
// credentials) holds a Backup of another namespace before it starts,
// pending with CredentialsNotMinted and a message for the storage's owner.
func TestBackupWaitsForCredentials(t *testing.T) {
	ctx := context.Background()
	alice, mallory := newNamespace(t), newNamespace(t)
	shareStorage(t, alice, mallory)
	var bucket corev1.Secret
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: alice, Name: argotest.StorageName}, &bucket); err != nil {
		t.Fatal(err)
	}
	bucket.Data["AWS_SECRET_ACCESS_KEY"] = []byte("not-the-key")
	if err := stack.Client.Update(ctx, &bucket); err != nil {
		t.Fatal(err)
	}
	spec := backupSpec()
	spec.Storage.Namespace = alice
	if err := stack.Client.Create(ctx, &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "waits"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "CredentialsNotMinted", 30*time.Second, func() (bool, string) {
		b := getBackup(t, mallory, "waits")
		c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
		return b.Status.Phase == v1.PhasePending && c != nil && c.Reason == string(v1.ReasonCredentialsNotMinted) &&
			strings.Contains(c.Message, "spec.sharing: BucketCredentials") && b.Status.WorkflowName == "", fmt.Sprintf("%+v", b.Status)
	})
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: mallory, Name: "waits"}, &wfv1.Workflow{}); !apierrors.IsNotFound(err) {
		t.Errorf("a Workflow without credentials: %v", err)
	}
}
