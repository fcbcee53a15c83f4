package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// noWorkflow fails the test when a Workflow or CronWorkflow of that name
// exists: asked once the resource failed, which the controller records only
// instead of creating it.
func noWorkflow(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj); !apierrors.IsNotFound(err) {
		t.Errorf("%T %s exists (or: %v): a resource whose keys leave its prefix must create none", obj, name, err)
	}
}

// failedAtOnce waits for a run to fail for reason, with a Warning Event,
// and checks that its message names the field and that no Workflow exists.
func failedAtOnce(t *testing.T, ns, name string, get func() *v1.RunStatus, reason v1.ConditionReason, field string) {
	t.Helper()
	var st *v1.RunStatus
	argotest.WaitFor(t, name+" to fail with "+string(reason), 30*time.Second, func() (bool, string) {
		st = get()
		return st.Phase == v1.PhaseFailed, fmt.Sprintf("%s %q", st.Phase, st.Message)
	})
	c := meta.FindStatusCondition(st.Conditions, v1.ConditionSucceeded)
	if c == nil || c.Reason != string(reason) || !strings.Contains(st.Message, field) {
		t.Errorf("%s: condition %+v, message %q; want reason %s naming %s", name, c, st.Message, reason, field)
	}
	argotest.WaitFor(t, "the Warning Event of "+name, 10*time.Second, func() (bool, string) {
		e := events(t, ns, name)[string(v1.EventFailed)]
		return strings.HasPrefix(e, corev1.EventTypeWarning+": ") && strings.Contains(e, field), e
	})
	noWorkflow(t, ns, name, &wfv1.Workflow{})
}

// notReady waits until obj (a BackupSchedule or a BackupStorage, with its
// conditions at status()) is Ready=False for reason, with a message that
// says says.
func notReady(t *testing.T, obj client.Object, status func() []metav1.Condition, reason v1.ConditionReason, says string) {
	t.Helper()
	argotest.WaitFor(t, obj.GetName()+"'s Ready condition", 30*time.Second, func() (bool, string) {
		_ = stack.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		c := meta.FindStatusCondition(status(), v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == string(reason) && strings.Contains(c.Message, says), fmt.Sprintf("%+v", status())
	})
}

// A Backup whose path template does not render a usable key, or renders one
// outside its namespace's prefix, fails before its Workflow is created: the
// pre-hook never runs. The templates render what the CRD refuses as text
// ('..', a leading '/'), so that the controller's own check is what stops
// them.
func TestBackupPathOutsideThePrefixFailsAtOnce(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		path   string
		reason v1.ConditionReason
	}{
		"other-namespace": {`{{ "bob" }}/x`, v1.ReasonKeyOutsidePrefix},
		"sibling":         {`{{ .Namespace }}-x/{{ .Name }}`, v1.ReasonKeyOutsidePrefix},
		"climbing":        {`{{ ".." }}/bob/x`, v1.ReasonInvalidPath},
		"absolute":        {`{{ "/" }}abs`, v1.ReasonInvalidPath},
		"unknown-field":   {`{{ .Nope }}`, v1.ReasonInvalidPath},
	} {
		spec := withHooksAndRetention(backupSpec())
		spec.Storage.Path = tc.path
		createBackup(t, ns, name, spec)
		failedAtOnce(t, ns, name, func() *v1.RunStatus { return &getBackup(t, ns, name).Status.RunStatus }, tc.reason, "spec.storage.path")
	}
}

// A BackupSchedule whose template's path leaves the prefix is not Ready,
// with the reason and a Warning Event, and has no CronWorkflow.
func TestSchedulePathOutsideThePrefixIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escaping"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 3 * * *", Template: v1.BackupTemplate{Spec: backupSpec()}}}
	s.Spec.Template.Spec.Storage.Path = `{{ "bob" }}/{{ .Series }}/{{ .Name }}`
	if err := stack.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	notReady(t, s, func() []metav1.Condition { return s.Status.Conditions }, v1.ReasonKeyOutsidePrefix, "spec.template.spec.storage.path")
	argotest.WaitFor(t, "the Warning Event", 10*time.Second, func() (bool, string) {
		e := events(t, ns, s.Name)[string(v1.ReasonKeyOutsidePrefix)]
		return strings.HasPrefix(e, corev1.EventTypeWarning+": "), e
	})
	noWorkflow(t, ns, s.Name, &wfv1.CronWorkflow{})
}

// A Restore of an object outside its namespace's prefix fails before its
// Workflow exists: named in from.object.key, or recorded by a Backup whose
// dump reported it (as a Workflow forged under the Backup's name could).
func TestRestoreKeyOutsideThePrefixFailsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	target := v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}}
	// The CRD refuses a '..' segment: a key with an empty one is as unclean,
	// and passes it.
	for name, key := range map[string]string{"other": "bob/nightly/x.bin", "empty-segment": ns + "//bob/x.bin", "sibling": ns + "x/y.bin"} {
		r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.RestoreSpec{
			From: v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: argotest.StorageName}, Key: key}}, Target: target}}
		if err := stack.Client.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
		failedAtOnce(t, ns, name, func() *v1.RunStatus {
			_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(r), r)
			return &r.Status.RunStatus
		}, v1.ReasonKeyOutsidePrefix, "spec.from.object.key")
	}

	dumpReports("forged-run", "bob/nightly/20261122T030000Z.bin", "sha256:"+strings.Repeat("ab", 32))
	createBackup(t, ns, "forged-run", backupSpec())
	waitForPhase(t, ns, "forged-run", v1.PhaseSucceeded)
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "from-forged"}, Spec: v1.RestoreSpec{
		From: v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "forged-run"}}, Target: target}}
	if err := stack.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	failedAtOnce(t, ns, r.Name, func() *v1.RunStatus {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(r), r)
		return &r.Status.RunStatus
	}, v1.ReasonKeyOutsidePrefix, "status.location.key of Backup forged-run")
}

// tenantStorage creates a BackupStorage that keeps every namespace's keys
// below tenants/<namespace>/, with the credentials of the namespace's own.
func tenantStorage(t *testing.T, ns string) string {
	t.Helper()
	var st v1.BackupStorage
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: argotest.StorageName}, &st); err != nil {
		t.Fatal(err)
	}
	tenants := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenants"}, Spec: st.Spec}
	tenants.Spec.NamespacePrefix = "tenants/{{ .Namespace }}/"
	if err := stack.Client.Create(context.Background(), tenants); err != nil {
		t.Fatal(err)
	}
	return tenants.Name
}

// With a custom namespacePrefix, a Backup without a path writes below it,
// every step is told the prefix, and the finalizer deletes only below it:
// an object under the namespace's name alone is another prefix's.
func TestCustomNamespacePrefix(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	storageName := tenantStorage(t, ns)
	prefix := "tenants/" + ns + "/"

	key := prefix + "tenant-doomed/20261122T030000Z.bin"
	dumpReports("tenant-doomed", key, storeBackup(t, key, ns, "tenant-doomed"))
	b := deletingBackup(ns, "tenant-doomed")
	b.Spec.Storage.Name = storageName
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "tenant-doomed", v1.PhaseSucceeded)
	for _, task := range stack.Workflow(t, ns, "tenant-doomed").Spec.Templates[0].DAG.Tasks {
		args := map[string]string{}
		for _, p := range task.Arguments.Parameters {
			args[p.Name] = p.Value.String()
		}
		if task.Name == compiler.StepDump && !strings.HasPrefix(args[compiler.ParamPath], "tenants/{{ .Namespace }}/{{ .Series }}/") {
			t.Errorf("the dump's path is %q, want the default below the prefix", args[compiler.ParamPath])
		}
		if (task.Name == compiler.StepDump || task.Name == compiler.StepVerify) && args[compiler.ParamKeyPrefix] != prefix {
			t.Errorf("%s is given key prefix %q, want %q", task.Name, args[compiler.ParamKeyPrefix], prefix)
		}
	}
	if ev := deleteAndWaitGone(t, b); !strings.HasPrefix(ev, "Deleted Normal") {
		t.Errorf("event %q, want Deleted", ev)
	}
	if got := stored(t, key); got[0] != nil || got[1] != nil {
		t.Errorf("object or manifest left behind: %q", got)
	}

	// The namespace's default prefix is not its prefix in this storage.
	key = ns + "/tenant-kept/20261122T030000Z.bin"
	dumpReports("tenant-kept", key, storeBackup(t, key, ns, "tenant-kept"))
	b = deletingBackup(ns, "tenant-kept")
	b.Spec.Storage.Name = storageName
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "tenant-kept", v1.PhaseSucceeded)
	before := stored(t, key)
	if ev := deleteAndWaitGone(t, b); !strings.HasPrefix(ev, "ObjectLeft Warning") || !strings.Contains(ev, "is not inside "+prefix) {
		t.Errorf("event %q, want ObjectLeft naming %s", ev, prefix)
	}
	if after := stored(t, key); string(after[0]) != string(before[0]) || string(after[1]) != string(before[1]) || before[0] == nil {
		t.Errorf("the object changed: before %q, after %q", before, after)
	}
}

// A storage whose endpoint is a cloud metadata address, or whose Secret
// holds an empty access key, is not Ready, with the reason and what to fix;
// the controller sends the endpoint no request.
func TestStorageRefusesMetadataEndpointsAndEmptyKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	empty := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"}, Data: map[string][]byte{
		v1.DefaultAccessKeyIDKey: {}, v1.DefaultSecretAccessKeyKey: []byte(minioServer.SecretKey)}}
	if err := stack.Client.Create(ctx, empty); err != nil {
		t.Fatal(err)
	}
	storage := func(name, endpoint, secret string) *v1.BackupStorage {
		return &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: endpoint, Bucket: minioServer.Bucket, ForcePathStyle: true,
			Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: secret}}}}}
	}
	for _, tc := range []struct {
		st     *v1.BackupStorage
		reason v1.ConditionReason
		says   string
	}{
		{storage("metadata", "http://169.254.169.254", argotest.StorageName), v1.ReasonEndpointNotAllowed, "s3.allowMetadataEndpoint"},
		{storage("metadata-v6", "http://[fd00:ec2::254]:80", argotest.StorageName), v1.ReasonEndpointNotAllowed, "a cloud metadata address"},
		{storage("empty-key", minioServer.Endpoint, "empty"), v1.ReasonCredentialsError, "credentials Secret empty has an empty AWS_ACCESS_KEY_ID"},
	} {
		if err := stack.Client.Create(ctx, tc.st); err != nil {
			t.Fatal(err)
		}
		notReady(t, tc.st, func() []metav1.Condition { return tc.st.Status.Conditions }, tc.reason, tc.says)
	}
}
