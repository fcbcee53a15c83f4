package storageref

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/internal/runsecret"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/envtest"
	"github.com/backflow-dev/backflow/test/servers"
)

// These tests run the Issuer against a real kube-apiserver and a real MinIO,
// whose STS mints the credentials and enforces their session policies.
var (
	cluster     *envtest.Cluster
	minioServer *servers.MinIO
)

func TestMain(m *testing.M) {
	var err error
	if minioServer, err = servers.StartMinIO(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer minioServer.Stop()
	if cluster, err = envtest.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		minioServer.Stop()
		os.Exit(1)
	}
	code := m.Run()
	_ = cluster.Stop()
	minioServer.Stop()
	os.Exit(code)
}

// tenants makes the namespaces alice and mallory (named uniquely per test)
// and alice's storage, which allows mallory, under the storage prefix
// "tenants", with the bucket credentials in alice's Secret.
func tenants(t *testing.T, sharing v1.StorageSharing) (alice, mallory string, st *v1.BackupStorage) {
	t.Helper()
	ctx := context.Background()
	suffix := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	suffix = suffix[max(0, len(suffix)-40):]
	alice, mallory = "alice-"+suffix, "mallory-"+suffix
	for _, ns := range []string{alice, mallory} {
		if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: alice, Name: "bucket"}, StringData: map[string]string{
		"AWS_ACCESS_KEY_ID": minioServer.AccessKey, "AWS_SECRET_ACCESS_KEY": minioServer.SecretKey,
	}}); err != nil {
		t.Fatal(err)
	}
	st = &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: alice, Name: "shared"}, Spec: v1.BackupStorageSpec{
		AllowedNamespaces: []string{mallory}, Sharing: sharing,
		S3: v1.S3Storage{Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, Prefix: "tenants", ForcePathStyle: true,
			Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "bucket"}}},
	}}
	if err := cluster.Client.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	return alice, mallory, st
}

func workflowIn(ns, name string) *wfv1.Workflow {
	return &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uuid.NewUUID()}}
}

func runSecret(t *testing.T, wf *wfv1.Workflow) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: wf.Namespace, Name: RunSecretName(wf.UID)}, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// stepBackend opens the storage as a step would, with the credentials the
// run Secret holds for it.
func stepBackend(t *testing.T, secret *corev1.Secret, step string) *storage.S3Backend {
	t.Helper()
	id, key, token := compiler.CredentialKeys(step)
	if len(secret.Data[id]) == 0 {
		t.Fatalf("the run Secret has no credentials for step %s: keys %v", step, keys(secret))
	}
	b, err := storage.NewS3Backend(storage.S3Config{Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, Prefix: "tenants", PathStyle: true, PartSizeMiB: 5,
		Credentials: storage.Credentials{AccessKeyID: string(secret.Data[id]), SecretAccessKey: string(secret.Data[key]), SessionToken: string(secret.Data[token])}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func keys(s *corev1.Secret) []string {
	var out []string
	for k := range s.Data {
		out = append(out, k)
	}
	return out
}

// bucketBackend is the storage with the bucket credentials: alice's view.
func bucketBackend(t *testing.T) *storage.S3Backend {
	t.Helper()
	b, err := storage.NewS3Backend(storage.S3Config{Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, Prefix: "tenants", PathStyle: true,
		Credentials: storage.Credentials{AccessKeyID: minioServer.AccessKey, SecretAccessKey: minioServer.SecretKey}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func put(ctx context.Context, b storage.Backend, key, data string) error {
	return b.Put(ctx, key, strings.NewReader(data), nil)
}

func read(ctx context.Context, b storage.Backend, key string) (string, error) {
	r, err := b.Get(ctx, key)
	if err != nil {
		return "", err
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	return string(data), err
}

// denied fails the test unless err is the storage refusing the request.
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrAccessDenied) {
		t.Errorf("%s: %v, want access denied", what, err)
	}
}

func allowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// A Backup in mallory that uses alice's storage gets, in its run Secret,
// credentials per step that do only what the step does, only inside its
// series under mallory's prefix: they cannot list, read, overwrite or
// delete alice's backups, which stay byte for byte as they were.
func TestScopedCredentialsConfineEachStep(t *testing.T) {
	ctx := context.Background()
	alice, mallory, st := tenants(t, v1.SharingScopedCredentials)
	bucket := bucketBackend(t)
	aliceKey := alice + "/nightly/20260101T000000Z.sql.zst"
	for key, data := range map[string]string{aliceKey: "alice's backup", aliceKey + stages.ManifestSuffix: `{"key":"alice"}`} {
		if err := put(ctx, bucket, key, data); err != nil {
			t.Fatal(err)
		}
	}

	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "nightly"}, Spec: v1.BackupSpec{
		Storage:   v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}},
		Retention: &v1.Retention{KeepLast: ptrTo(int32(1))},
	}}
	wf := workflowIn(mallory, "nightly")
	issuer := &Issuer{Client: cluster.Client}
	renew, err := issuer.Ensure(ctx, Run{Workflow: wf, Storage: st, Grants: BackupGrants(st, b)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if renew <= 0 || renew > RenewInterval {
		t.Errorf("look again after %s, want within %s", renew, RenewInterval)
	}
	secret := runSecret(t, wf)
	if secret.Labels[LabelRunStorage] != string(st.UID) || secret.Labels[runsecret.Label] != "true" || len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != wf.UID ||
		secret.OwnerReferences[0].Controller != nil || *secret.OwnerReferences[0].BlockOwnerDeletion {
		t.Errorf("run Secret labels %v, owners %+v", secret.Labels, secret.OwnerReferences)
	}
	for _, step := range []string{compiler.StepDump, compiler.StepVerify, compiler.StepRotate} {
		id, _, token := compiler.CredentialKeys(step)
		if string(secret.Data[id]) == minioServer.AccessKey || len(secret.Data[token]) == 0 {
			t.Errorf("step %s holds the bucket credentials or no session token", step)
		}
		if secret.Annotations[annotationExpiresPrefix+step] == "" {
			t.Errorf("no expiry recorded for step %s: %v", step, secret.Annotations)
		}
	}
	own := mallory + "/nightly/20260102T000000Z.sql.zst"

	dump := stepBackend(t, secret, compiler.StepDump)
	// A multipart upload (three parts of 5 MiB), as a dump of any size makes.
	big := bytes.Repeat([]byte("m"), 11<<20)
	allowed(t, "dump: multipart upload into its series", dump.Create(ctx, own, bytes.NewReader(big), nil))
	allowed(t, "dump: the manifest", put(ctx, dump, own+stages.ManifestSuffix, "{}"))
	_, err = dump.Stat(ctx, own)
	allowed(t, "dump: stat its own object", err)
	denied(t, "dump: write into alice's prefix", put(ctx, dump, alice+"/nightly/evil.sql.zst", "evil"))
	denied(t, "dump: overwrite alice's backup", put(ctx, dump, aliceKey, "evil"))
	denied(t, "dump: write into another series of mallory", put(ctx, dump, mallory+"/other/x.zst", "x"))
	_, err = read(ctx, dump, aliceKey)
	denied(t, "dump: read alice's backup", err)
	denied(t, "dump: delete alice's backup", dump.Delete(ctx, aliceKey))
	_, err = dump.List(ctx, "")
	denied(t, "dump: list the bucket", err)

	verify := stepBackend(t, secret, compiler.StepVerify)
	got, err := read(ctx, verify, own)
	allowed(t, "verify: read its object", err)
	if err == nil && len(got) != len(big) {
		t.Errorf("verify read %d bytes, want %d", len(got), len(big))
	}
	allowed(t, "verify: mark the manifest verified", put(ctx, verify, own+stages.ManifestSuffix, `{"verified":true}`))
	denied(t, "verify: write an object that is not a manifest", put(ctx, verify, own, "replaced"))
	_, err = read(ctx, verify, aliceKey)
	denied(t, "verify: read alice's backup", err)
	denied(t, "verify: rewrite alice's manifest", put(ctx, verify, aliceKey+stages.ManifestSuffix, "{}"))
	denied(t, "verify: delete its object", verify.Delete(ctx, own))

	rotate := stepBackend(t, secret, compiler.StepRotate)
	listed, err := rotate.List(ctx, mallory+"/nightly/")
	allowed(t, "rotate: list its series", err)
	if len(listed) != 2 {
		t.Errorf("rotate listed %v, want the object and its manifest", listed)
	}
	_, err = rotate.List(ctx, alice+"/")
	denied(t, "rotate: list alice's prefix", err)
	_, err = rotate.List(ctx, "")
	denied(t, "rotate: list the bucket", err)
	_, err = read(ctx, rotate, aliceKey+stages.ManifestSuffix)
	denied(t, "rotate: read alice's manifest", err)
	denied(t, "rotate: delete alice's backup", rotate.Delete(ctx, aliceKey))
	denied(t, "rotate: write", put(ctx, rotate, mallory+"/nightly/new.zst", "x"))
	allowed(t, "rotate: delete in its series", rotate.Delete(ctx, own))

	// A Restore in mallory may read exactly the object it restores.
	allowed(t, "put back mallory's object", put(ctx, bucket, own, "mallory's backup"))
	allowed(t, "put back mallory's manifest", put(ctx, bucket, own+stages.ManifestSuffix, "{}"))
	rs := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "back"}}
	rwf := workflowIn(mallory, "back")
	if _, err := issuer.Ensure(ctx, Run{Workflow: rwf, Storage: st, Grants: RestoreGrants(st, rs, own)}, nil); err != nil {
		t.Fatal(err)
	}
	rsecret := runSecret(t, rwf)
	for _, step := range []string{compiler.StepVerify, compiler.StepRestore} {
		r := stepBackend(t, rsecret, step)
		_, err := read(ctx, r, own)
		allowed(t, step+": read the object restored", err)
		_, err = read(ctx, r, own+stages.ManifestSuffix)
		allowed(t, step+": read its manifest", err)
		_, err = read(ctx, r, aliceKey)
		denied(t, step+": read alice's backup", err)
		_, err = read(ctx, r, mallory+"/nightly/20260102T000000Z.other")
		denied(t, step+": read another object of mallory", err)
		denied(t, step+": write", put(ctx, r, own, "x"))
	}
	// A Restore naming alice's key gets nothing minted.
	if _, err := issuer.Issue(ctx, st, mallory, RestoreGrants(st, rs, aliceKey)); !errors.Is(err, ErrCredentialsNotMinted) {
		t.Errorf("restore of alice's key from mallory: %v, want ErrCredentialsNotMinted", err)
	}

	for key, want := range map[string]string{aliceKey: "alice's backup", aliceKey + stages.ManifestSuffix: `{"key":"alice"}`} {
		if got, err := read(ctx, bucket, key); err != nil || got != want {
			t.Errorf("alice's %s is now %q, %v", key, got, err)
		}
	}
}

// The storage's own namespace, and every namespace of a storage shared with
// sharing BucketCredentials, gets copies of the bucket credentials.
func TestBucketCredentialsAreCopied(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		sharing v1.StorageSharing
		ownNS   bool
	}{{v1.SharingScopedCredentials, true}, {v1.SharingBucketCredentials, false}} {
		t.Run(string(tc.sharing), func(t *testing.T) {
			alice, mallory, st := tenants(t, tc.sharing)
			ns := mallory
			if tc.ownNS {
				ns = alice
			}
			b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: v1.BackupSpec{
				Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}}}}
			wf := workflowIn(ns, "nightly")
			if _, err := (&Issuer{Client: cluster.Client}).Ensure(ctx, Run{Workflow: wf, Storage: st, Grants: BackupGrants(st, b)}, nil); err != nil {
				t.Fatal(err)
			}
			secret := runSecret(t, wf)
			for _, step := range []string{compiler.StepDump, compiler.StepVerify} {
				id, key, token := compiler.CredentialKeys(step)
				if string(secret.Data[id]) != minioServer.AccessKey || string(secret.Data[key]) != minioServer.SecretKey || secret.Data[token] != nil {
					t.Errorf("step %s: keys %v, want copies of the bucket credentials", step, keys(secret))
				}
				if _, ok := secret.Annotations[annotationExpiresPrefix+step]; ok {
					t.Errorf("copies carry an expiry: %v", secret.Annotations)
				}
			}
		})
	}
}

// Minted credentials are renewed once they would not outlast a step started
// now: driven by the Issuer's clock, with a short deadline.
func TestMintedCredentialsAreRenewed(t *testing.T) {
	ctx := context.Background()
	alice, mallory, st := tenants(t, v1.SharingScopedCredentials)
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "nightly"}, Spec: v1.BackupSpec{
		Storage:             v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}},
		Verify:              &v1.VerifySpec{Checksum: ptrTo(false)},
		StepDeadlineSeconds: &v1.BackupStepDeadlines{Dump: ptrTo(int32(60))},
	}}
	now := time.Now()
	issuer := &Issuer{Client: cluster.Client, Now: func() time.Time { return now }}
	run := Run{Workflow: workflowIn(mallory, "nightly"), Storage: st, Grants: BackupGrants(st, b)}
	if len(run.Grants) != 1 || run.Grants[0].Step != compiler.StepDump || run.Grants[0].Deadline != time.Minute {
		t.Fatalf("grants %+v, want the dump's alone with its deadline", run.Grants)
	}
	renew, err := issuer.Ensure(ctx, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := runSecret(t, run.Workflow)
	id, _, _ := compiler.CredentialKeys(compiler.StepDump)
	expires, err := time.Parse(time.RFC3339, first.Annotations[annotationExpiresPrefix+compiler.StepDump])
	// Minted for the deadline and 15 minutes, at least AssumeRole's 900 s.
	if err != nil || expires.Sub(now) < 15*time.Minute || expires.Sub(now) > 16*time.Minute+time.Second {
		t.Fatalf("expires %v (%v from now), want 16 minutes from now", expires, expires.Sub(now))
	}
	if renew != RenewInterval {
		t.Errorf("look again after %s, want %s", renew, RenewInterval)
	}

	// 5 minutes on, 11 are left: more than the deadline and the margin.
	now = now.Add(5 * time.Minute)
	if renew, err = issuer.Ensure(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	if s := runSecret(t, run.Workflow); !bytes.Equal(s.Data[id], first.Data[id]) {
		t.Error("renewed credentials that outlast a step started now")
	}
	if want := expires.Sub(now) - time.Minute - RenewMargin; renew != want {
		t.Errorf("look again after %s, want %s, when they stop outlasting a step", renew, want)
	}

	// 11 minutes on, 5 are left: less than the deadline and the margin.
	now = now.Add(6 * time.Minute)
	if _, err := issuer.Ensure(ctx, run, nil); err != nil {
		t.Fatal(err)
	}
	second := runSecret(t, run.Workflow)
	renewed, _ := time.Parse(time.RFC3339, second.Annotations[annotationExpiresPrefix+compiler.StepDump])
	if bytes.Equal(second.Data[id], first.Data[id]) || renewed.Sub(now) < 15*time.Minute {
		t.Errorf("not renewed: same key %v, expires %v from now", bytes.Equal(second.Data[id], first.Data[id]), renewed.Sub(now))
	}
	// The renewed credentials work.
	allowed(t, "renewed dump credentials", put(ctx, stepBackend(t, second, compiler.StepDump), mallory+"/nightly/x.zst", "x"))
}

// A storage whose STS refuses (here: bucket credentials it does not know)
// gives no credentials, and says what its owner can do; a Secret of the run
// Secret's name that backflow did not write is never overwritten.
func TestCredentialsNotMinted(t *testing.T) {
	ctx := context.Background()
	alice, mallory, st := tenants(t, v1.SharingScopedCredentials)
	var bucket corev1.Secret
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: alice, Name: "bucket"}, &bucket); err != nil {
		t.Fatal(err)
	}
	bucket.Data["AWS_SECRET_ACCESS_KEY"] = []byte("wrong")
	if err := cluster.Client.Update(ctx, &bucket); err != nil {
		t.Fatal(err)
	}
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "nightly"}, Spec: v1.BackupSpec{
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}}}}
	issuer := &Issuer{Client: cluster.Client}
	_, err := issuer.Issue(ctx, st, mallory, BackupGrants(st, b))
	if reason, _ := Reason(err); reason != v1.ReasonCredentialsNotMinted || !strings.Contains(err.Error(), "spec.sharing: BucketCredentials") {
		t.Errorf("refused AssumeRole: %v (reason %q)", err, reason)
	}

	wf := workflowIn(mallory, "nightly")
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: RunSecretName(wf.UID)}, StringData: map[string]string{"dump-access-key-id": "mine"}}
	if err := cluster.Client.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.Ensure(ctx, Run{Workflow: wf, Storage: st, Grants: BackupGrants(st, b)}, nil); !errors.Is(err, ErrCredentialsNotMinted) || !strings.Contains(err.Error(), "did not write") {
		t.Errorf("a foreign Secret in the way: %v", err)
	}
	if err := DeleteRunSecret(ctx, cluster.Client, cluster.Client, wf); err != nil {
		t.Fatal(err)
	}
	if s := runSecret(t, wf); string(s.Data["dump-access-key-id"]) != "mine" {
		t.Errorf("the foreign Secret was changed: %v", s.Data)
	}
}

// A run Secret goes when its Workflow finished (DeleteRunSecret); when the
// storage stops admitting a namespace, Revoke deletes that namespace's run
// Secrets of it, keeps the others, and deletes the per-namespace copies an
// earlier backflow made.
func TestRevokeAndDelete(t *testing.T) {
	ctx := context.Background()
	alice, mallory, st := tenants(t, v1.SharingScopedCredentials)
	issuer := &Issuer{Client: cluster.Client}
	runs := map[string]*wfv1.Workflow{}
	for _, ns := range []string{alice, mallory} {
		b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: v1.BackupSpec{
			Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}}}}
		runs[ns] = workflowIn(ns, "nightly")
		if _, err := issuer.Ensure(ctx, Run{Workflow: runs[ns], Storage: st, Grants: BackupGrants(st, b)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	oldCopy := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "backflow-storage-" + alice + "-shared",
		Labels: map[string]string{LabelCopiedFrom: alice + ".shared"}}, StringData: map[string]string{"AWS_ACCESS_KEY_ID": "bucket"}}
	if err := cluster.Client.Create(ctx, oldCopy); err != nil {
		t.Fatal(err)
	}

	// Still admitted: only the old copy goes.
	if n, err := Revoke(ctx, cluster.Client, st); err != nil || n != 1 {
		t.Errorf("revoked %d, %v; want the old copy", n, err)
	}
	runSecret(t, runs[mallory])

	st.Spec.AllowedNamespaces = nil
	if n, err := Revoke(ctx, cluster.Client, st); err != nil || n != 1 {
		t.Errorf("revoked %d, %v; want mallory's run Secret", n, err)
	}
	for name, key := range map[string]client.ObjectKey{
		"mallory's run Secret": {Namespace: mallory, Name: RunSecretName(runs[mallory].UID)},
		"the old copy":         client.ObjectKeyFromObject(oldCopy),
	} {
		if err := cluster.Client.Get(ctx, key, &corev1.Secret{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: %v, want it deleted", name, err)
		}
	}
	runSecret(t, runs[alice])

	if err := DeleteRunSecret(ctx, cluster.Client, cluster.Client, runs[alice]); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: alice, Name: RunSecretName(runs[alice].UID)}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("alice's run Secret after its Workflow finished: %v", err)
	}
}

func TestRunSecretName(t *testing.T) {
	if got := RunSecretName(types.UID("0f3c")); got != "backflow-storage-0f3c" {
		t.Errorf("RunSecretName = %s", got)
	}
}

// Over https, AssumeRole trusts the storage's CA bundle (a ConfigMap here),
// which the run Secret carries for the steps; without it the storage's
// certificate does not verify and nothing is minted.
func TestScopedCredentialsOverTLS(t *testing.T) {
	ctx := context.Background()
	server, err := servers.StartMinIO(servers.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	alice, mallory, st := tenants(t, v1.SharingScopedCredentials)
	if err := cluster.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: alice, Name: "ca"}, Data: map[string]string{"ca.pem": string(server.CAPEM)}}); err != nil {
		t.Fatal(err)
	}
	var bucket corev1.Secret
	if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: alice, Name: "bucket"}, &bucket); err != nil {
		t.Fatal(err)
	}
	bucket.Data = map[string][]byte{"AWS_ACCESS_KEY_ID": []byte(server.AccessKey), "AWS_SECRET_ACCESS_KEY": []byte(server.SecretKey)}
	if err := cluster.Client.Update(ctx, &bucket); err != nil {
		t.Fatal(err)
	}
	st.Spec.S3.Endpoint = server.Endpoint
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: mallory, Name: "nightly"}, Spec: v1.BackupSpec{
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: st.Name, Namespace: alice}},
		Verify:  &v1.VerifySpec{Checksum: ptrTo(false)},
	}}
	issuer := &Issuer{Client: cluster.Client}
	if _, err := issuer.Issue(ctx, st, mallory, BackupGrants(st, b)); !errors.Is(err, ErrCredentialsNotMinted) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA bundle: %v, want the certificate refused", err)
	}

	st.Spec.S3.TLS = &v1.StorageTLS{CAConfigMapRef: &v1.ConfigMapKeySelector{Name: "ca", Key: "ca.pem"}}
	wf := workflowIn(mallory, "nightly")
	if _, err := issuer.Ensure(ctx, Run{Workflow: wf, Storage: st, Grants: BackupGrants(st, b)}, nil); err != nil {
		t.Fatal(err)
	}
	secret := runSecret(t, wf)
	if !bytes.Equal(secret.Data[compiler.RunCAKey], server.CAPEM) {
		t.Errorf("the run Secret's %s is not the storage's CA bundle", compiler.RunCAKey)
	}
	id, key, token := compiler.CredentialKeys(compiler.StepDump)
	dump, err := storage.NewS3Backend(storage.S3Config{Endpoint: server.Endpoint, Bucket: server.Bucket, Prefix: "tenants", PathStyle: true, CAPEM: secret.Data[compiler.RunCAKey],
		Credentials: storage.Credentials{AccessKeyID: string(secret.Data[id]), SecretAccessKey: string(secret.Data[key]), SessionToken: string(secret.Data[token])}})
	if err != nil {
		t.Fatal(err)
	}
	allowed(t, "dump over https", put(ctx, dump, mallory+"/nightly/x.zst", "x"))
	denied(t, "dump over https into alice's prefix", put(ctx, dump, alice+"/nightly/x.zst", "x"))
}
