package namespace_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/envtest"
)

// The namespaces the tests' controller admits: those listed whose label
// tenantLabel is "yes".
var admitted = []string{"provided", "cleanup", "foreign", "selected", "schedule"}

const (
	tenantLabel   = "backflow.dev/tenant"
	workflowRole  = "test-backflow-workflow"
	hookRole      = "test-backflow-hook"
	storageSecret = "minio"
)

var cluster *envtest.Cluster

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	os.Exit(run(m))
}

func run(m *testing.M) int {
	crds, err := argotest.CRDDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cluster, err = envtest.Start(envtest.WithCRDs(crds), envtest.WithScheme(controller.Scheme())); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = cluster.Stop() }()
	policy, err := namespace.NewPolicy(admitted, tenantLabel+"=yes")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := controller.NewManager(cluster.Config, controller.Options{
		Compiler:    compiler.DefaultOptions(),
		Workflows:   namespace.Config{Policy: policy, WorkflowClusterRole: workflowRole, HookClusterRole: hookRole},
		MetricsAddr: "0", ProbeAddr: "0", StorageCheckInterval: time.Hour,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	code := m.Run()
	cancel()
	<-done
	return code
}

// newNamespace makes a namespace with a BackupStorage and its Secret (the
// bucket is never reached: no step runs).
func newNamespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: storageSecret}, StringData: map[string]string{
			v1.DefaultAccessKeyIDKey: "id", v1.DefaultSecretAccessKeyKey: "secret",
		}},
		&v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "minio"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: "http://minio.invalid:9000", Bucket: "backups", ForcePathStyle: true,
			Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: storageSecret}},
		}}},
	} {
		if err := cluster.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
}

var tenant = map[string]string{tenantLabel: "yes"}

func backupSpec() v1.BackupSpec {
	return v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
		Hooks:   &v1.Hooks{Pre: &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"sync"}}}},
	}
}

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cluster.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, obj client.Object) {
	t.Helper()
	if err := cluster.Client.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

func exists(t *testing.T, obj client.Object) bool {
	t.Helper()
	err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func backup(ns, name string) *v1.Backup {
	return &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: backupSpec()}
}

// provided are what the controller provides in a namespace.
func provided(ns string) []client.Object {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	return []client.Object{
		&corev1.ServiceAccount{ObjectMeta: meta(compiler.ExecutorServiceAccount)},
		&corev1.ServiceAccount{ObjectMeta: meta(compiler.HookServiceAccount)},
		&rbacv1.RoleBinding{ObjectMeta: meta(compiler.ExecutorServiceAccount)},
		&rbacv1.RoleBinding{ObjectMeta: meta(compiler.HookServiceAccount)},
		&corev1.Secret{ObjectMeta: meta(namespace.TokenSecret)},
	}
}

// present says which of what the controller provides exist.
func present(t *testing.T, ns string) string {
	var have []string
	for _, obj := range provided(ns) {
		if exists(t, obj) {
			have = append(have, fmt.Sprintf("%T %s", obj, obj.GetName()))
		}
	}
	return strings.Join(have, ", ")
}

func waitForAccounts(t *testing.T, ns string, want bool) {
	t.Helper()
	argotest.WaitFor(t, fmt.Sprintf("the accounts in %s to be there: %t", ns, want), 30*time.Second, func() (bool, string) {
		state := present(t, ns)
		if want {
			return strings.Count(state, ",") == len(provided(ns))-1, state
		}
		return state == "", state
	})
}

func waitForBackup(t *testing.T, b *v1.Backup, done func(*v1.Backup) bool) {
	t.Helper()
	argotest.WaitFor(t, "Backup "+b.Name, 30*time.Second, func() (bool, string) {
		if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(b), b); err != nil {
			return false, err.Error()
		}
		return done(b), fmt.Sprintf("%s %s %q", b.Status.Phase, b.Status.WorkflowName, b.Status.Message)
	})
}

// A Backup in an admitted namespace gets its accounts before its Workflow:
// two ServiceAccounts labelled as backflow's, each bound in the namespace to
// the chart's ClusterRole by a RoleBinding, and the executor's token Secret.
// One deleted is provided again.
func TestProvidesTheAccountsWithTheFirstResource(t *testing.T) {
	newNamespace(t, "provided", tenant)
	b := backup("provided", "first")
	create(t, b)
	waitForBackup(t, b, func(b *v1.Backup) bool { return b.Status.WorkflowName != "" })
	waitForAccounts(t, "provided", true)
	for _, c := range []struct{ account, role string }{{compiler.ExecutorServiceAccount, workflowRole}, {compiler.HookServiceAccount, hookRole}} {
		var sa corev1.ServiceAccount
		var rb rbacv1.RoleBinding
		key := client.ObjectKey{Namespace: "provided", Name: c.account}
		if err := cluster.Client.Get(context.Background(), key, &sa); err != nil {
			t.Fatal(err)
		}
		if err := cluster.Client.Get(context.Background(), key, &rb); err != nil {
			t.Fatal(err)
		}
		for _, labels := range []map[string]string{sa.Labels, rb.Labels} {
			if labels[namespace.LabelManagedBy] != namespace.ManagedBy {
				t.Errorf("%s: labels %v", c.account, labels)
			}
		}
		want := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: c.role}
		subject := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: c.account, Namespace: "provided"}
		if rb.RoleRef != want || len(rb.Subjects) != 1 || rb.Subjects[0] != subject {
			t.Errorf("RoleBinding %s: roleRef %+v subjects %+v, want %+v and %+v", c.account, rb.RoleRef, rb.Subjects, want, subject)
		}
	}
	var token corev1.Secret
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: "provided", Name: namespace.TokenSecret}, &token); err != nil {
		t.Fatal(err)
	}
	if token.Type != corev1.SecretTypeServiceAccountToken || token.Annotations[corev1.ServiceAccountNameKey] != compiler.ExecutorServiceAccount {
		t.Errorf("token Secret: type %s annotations %v", token.Type, token.Annotations)
	}
	var wf wfv1.Workflow
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: "provided", Name: "first"}, &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Spec.Executor == nil || wf.Spec.Executor.ServiceAccountName != compiler.ExecutorServiceAccount ||
		wf.Spec.AutomountServiceAccountToken == nil || *wf.Spec.AutomountServiceAccountToken {
		t.Errorf("Workflow: executor %+v automountServiceAccountToken %v", wf.Spec.Executor, wf.Spec.AutomountServiceAccountToken)
	}

	hook := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "provided", Name: compiler.HookServiceAccount}}
	if !exists(t, hook) {
		t.Fatal("no hook account")
	}
	uid := hook.UID
	remove(t, hook)
	argotest.WaitFor(t, "the hook account to be provided again", 30*time.Second, func() (bool, string) {
		again := &corev1.ServiceAccount{ObjectMeta: hook.ObjectMeta}
		return exists(t, again) && again.UID != uid, present(t, "provided")
	})
}

// The accounts go with the namespace's last Backup, BackupSchedule or
// Restore, not before; a ServiceAccount of another name stays.
func TestRemovesTheAccountsWithTheLastResource(t *testing.T) {
	newNamespace(t, "cleanup", tenant)
	own := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "cleanup", Name: "application"}}
	create(t, own)
	b := backup("cleanup", "one")
	create(t, b)
	rs := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: "cleanup", Name: "two"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: "minio"}, Key: "cleanup/one.bin"}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"cat"}}},
	}}
	create(t, rs)
	waitForAccounts(t, "cleanup", true)
	remove(t, b)
	argotest.WaitFor(t, "the Backup to be gone", 30*time.Second, func() (bool, string) { return !exists(t, backup("cleanup", "one")), "" })
	// The Restore still needs them: they stay. (Its own deletion is the
	// event that removes them, so this cannot pass by waiting too little.)
	if state := present(t, "cleanup"); strings.Count(state, ",") != len(provided("cleanup"))-1 {
		t.Fatalf("with a Restore left, the accounts are %q", state)
	}
	remove(t, rs)
	waitForAccounts(t, "cleanup", false)
	if !exists(t, own) {
		t.Error("the namespace's own ServiceAccount was deleted")
	}
}

// A ServiceAccount named backflow-workflow that backflow did not create is
// left as it is, and the Backup fails naming it; when the Backup is gone it
// is still there.
func TestLeavesAForeignAccountAlone(t *testing.T) {
	newNamespace(t, "foreign", tenant)
	theirs := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "foreign", Name: compiler.ExecutorServiceAccount,
		Annotations: map[string]string{"owner": "someone"}}}
	create(t, theirs)
	b := backup("foreign", "blocked")
	create(t, b)
	waitForBackup(t, b, func(b *v1.Backup) bool { return b.Status.Phase.IsFinished() })
	cond := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
	if b.Status.Phase != v1.PhaseFailed || cond == nil || cond.Reason != string(v1.ReasonAccountConflict) ||
		!strings.Contains(b.Status.Message, "ServiceAccount "+compiler.ExecutorServiceAccount) || !strings.Contains(b.Status.Message, "did not create it") {
		t.Errorf("Backup %s %q (condition %+v), want Failed with %s naming the ServiceAccount", b.Status.Phase, b.Status.Message, cond, v1.ReasonAccountConflict)
	}
	if b.Status.WorkflowName != "" {
		t.Errorf("a Workflow %s was created", b.Status.WorkflowName)
	}
	remove(t, b)
	argotest.WaitFor(t, "the Backup to be gone", 30*time.Second, func() (bool, string) { return !exists(t, backup("foreign", "blocked")), "" })
	after := &corev1.ServiceAccount{ObjectMeta: theirs.ObjectMeta}
	if !exists(t, after) || after.ResourceVersion != theirs.ResourceVersion || after.Labels[namespace.LabelManagedBy] != "" {
		t.Errorf("the foreign ServiceAccount changed or went: %+v", after.ObjectMeta)
	}
}

// A Backup in a namespace the list does not name fails at once, saying
// which chart value to set; nothing is provided there.
func TestRefusesANamespaceNotListed(t *testing.T) {
	newNamespace(t, "elsewhere", tenant)
	b := backup("elsewhere", "refused")
	create(t, b)
	waitForBackup(t, b, func(b *v1.Backup) bool { return b.Status.Phase.IsFinished() })
	checkRefused(t, b, "workflow.namespaces")
	if state := present(t, "elsewhere"); state != "" {
		t.Errorf("provided in a namespace not admitted: %s", state)
	}
}

// In a listed namespace that does not match the selector, a Backup fails
// naming workflow.namespaceSelector.
func TestRefusesANamespaceNotSelected(t *testing.T) {
	newNamespace(t, "selected", map[string]string{tenantLabel: "no"})
	b := backup("selected", "refused")
	create(t, b)
	waitForBackup(t, b, func(b *v1.Backup) bool { return b.Status.Phase.IsFinished() })
	checkRefused(t, b, "workflow.namespaceSelector")
	if state := present(t, "selected"); state != "" {
		t.Errorf("provided in a namespace not admitted: %s", state)
	}
}

func checkRefused(t *testing.T, b *v1.Backup, value string) {
	t.Helper()
	cond := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
	if b.Status.Phase != v1.PhaseFailed || cond == nil || cond.Reason != string(v1.ReasonNamespaceNotAllowed) ||
		!strings.Contains(b.Status.Message, value) || !strings.Contains(b.Status.Message, b.Namespace) {
		t.Errorf("Backup %s %q (condition %+v), want Failed with %s naming %s and the namespace", b.Status.Phase, b.Status.Message, cond, v1.ReasonNamespaceNotAllowed, value)
	}
	if b.Status.WorkflowName != "" {
		t.Errorf("a Workflow %s was created", b.Status.WorkflowName)
	}
}

// A schedule in a namespace the selector does not admit is not Ready and its
// CronWorkflow is suspended; labelling the namespace admits it: the
// accounts are provided and the CronWorkflow runs. Taking the label away
// again suspends it and removes the accounts.
func TestScheduleFollowsTheNamespaceSelector(t *testing.T) {
	newNamespace(t, "schedule", nil)
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: "schedule", Name: "nightly"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 3 * * *", Template: v1.BackupTemplate{Spec: backupSpec()},
	}}
	create(t, s)
	waitForSchedule := func(reason v1.ConditionReason, suspended bool) {
		t.Helper()
		argotest.WaitFor(t, "schedule Ready with reason "+string(reason), 30*time.Second, func() (bool, string) {
			var got v1.BackupSchedule
			var cron wfv1.CronWorkflow
			if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(s), &got); err != nil {
				return false, err.Error()
			}
			if err := cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(s), &cron); err != nil {
				return false, err.Error()
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, v1.ConditionReady)
			return cond != nil && cond.Reason == string(reason) && cron.Spec.Suspend == suspended &&
					(reason != v1.ReasonNamespaceNotAllowed || strings.Contains(cond.Message, "workflow.namespaceSelector")),
				fmt.Sprintf("%+v, CronWorkflow suspended %t", cond, cron.Spec.Suspend)
		})
	}
	waitForSchedule(v1.ReasonNamespaceNotAllowed, true)
	if state := present(t, "schedule"); state != "" {
		t.Errorf("provided in a namespace not admitted: %s", state)
	}
	label := func(labels map[string]string) {
		var ns corev1.Namespace
		if err := cluster.Client.Get(context.Background(), client.ObjectKey{Name: "schedule"}, &ns); err != nil {
			t.Fatal(err)
		}
		ns.Labels = labels
		if err := cluster.Client.Update(context.Background(), &ns); err != nil {
			t.Fatal(err)
		}
	}
	label(tenant)
	waitForSchedule(v1.ReasonScheduled, false)
	waitForAccounts(t, "schedule", true)
	label(nil)
	waitForSchedule(v1.ReasonNamespaceNotAllowed, true)
	waitForAccounts(t, "schedule", false)
}
