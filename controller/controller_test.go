package controller_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	gitopshealth "github.com/argoproj/gitops-engine/pkg/health"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/health"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/servers"
)

var (
	stack       *argotest.Stack
	minioServer *servers.MinIO
	stopManager func()
)

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
	if minioServer, err = servers.StartMinIO(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if stack, err = argotest.Start(); err != nil {
		minioServer.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stack.Driver.DefaultOutputs = argotest.StepOutputs
	if err := stack.InstallWorkflowTemplates(); err != nil {
		stack.Stop()
		minioServer.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stopManager = startManager()
	code := m.Run()
	stopManager()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "--- workflow-controller log (tail) ---")
		logs := stack.Logs("workflow-controller")
		fmt.Fprintln(os.Stderr, logs[max(0, len(logs)-4000):])
	}
	stack.Stop()
	minioServer.Stop()
	os.Exit(code)
}

func zapLevel() zapcore.Level {
	if os.Getenv("BACKFLOW_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

// startManager runs the controller in this process and returns its stop.
func startManager() func() {
	stop, err := stack.StartManager(managerOptions())
	if err != nil {
		panic(err)
	}
	return stop
}

// managerOptions are the options of the controller the tests run.
func managerOptions() controller.Options {
	return controller.Options{
		Compiler: argotest.CompilerOptions(), Workflows: argotest.Workflows(), MetricsAddr: "0", ProbeAddr: "0", AllowRestart: true,
		StorageCheckInterval: 2 * time.Second,
		// Short, so that the finalizer gives up on a storage that never
		// answers within a test.
		StorageTimeout: 3 * time.Second, DeleteTimeout: 2 * time.Second,
	}
}

func newNamespace(t testing.TB) string { return stack.NewNamespace(t, minioServer) }

func backupSpec() v1.BackupSpec {
	return v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
	}
}

func withHooksAndRetention(spec v1.BackupSpec) v1.BackupSpec {
	hook := func(cmd string) *v1.Hook {
		return &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{cmd}}, OnError: v1.HookErrorFail, TimeoutSeconds: 60}
	}
	spec.Hooks = &v1.Hooks{Pre: hook("freeze"), Post: hook("thaw")}
	spec.Retention = &v1.Retention{KeepLast: ptr(int32(3))}
	return spec
}

func ptr[T any](v T) *T { return &v }

// checkHealth runs backflow's Argo CD health check on an object the
// controller produced, so that the Lua rules and the real status shape
// cannot drift apart.
func checkHealth(t *testing.T, obj client.Object, want gitopshealth.HealthStatusCode) {
	t.Helper()
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	gvk, err := apiutil.GVKForObject(obj, stack.Client.Scheme())
	if err != nil {
		t.Fatal(err)
	}
	scripts, err := health.Scripts()
	if err != nil {
		t.Fatal(err)
	}
	un := &unstructured.Unstructured{Object: u}
	un.SetGroupVersionKind(gvk)
	for _, mode := range []health.Mode{health.OpenLibs, health.SafeLibs} {
		got, err := health.Evaluate(scripts[gvk.Kind], un, mode)
		if err != nil {
			t.Fatalf("health of %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
		if got.Status != string(want) {
			t.Errorf("health of %s %s (%s): %+v, want %s", gvk.Kind, obj.GetName(), mode, got, want)
		}
	}
}

func getBackup(t testing.TB, ns, name string) *v1.Backup {
	t.Helper()
	var b v1.Backup
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func waitForPhase(t testing.TB, ns, name string, phase v1.RunPhase) *v1.Backup {
	t.Helper()
	var b *v1.Backup
	argotest.WaitFor(t, fmt.Sprintf("Backup %s to be %s", name, phase), 60*time.Second, func() (bool, string) {
		b = getBackup(t, ns, name)
		if b.Status.Phase != phase && b.Status.Phase.IsFinished() {
			t.Fatalf("Backup %s ended %s, want %s: %q %+v", name, b.Status.Phase, phase, b.Status.Message, b.Status.Stages)
		}
		return b.Status.Phase == phase, fmt.Sprintf("%s %q %+v", b.Status.Phase, b.Status.Message, b.Status.Stages)
	})
	return b
}

func stagePhases(b *v1.Backup) map[string]string {
	out := map[string]string{}
	for _, s := range b.Status.Stages {
		out[s.Name] = s.Phase
	}
	return out
}

func events(t *testing.T, ns, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for reason, e := range stack.Events(t, ns, name) {
		out[reason] = e.Type + ": " + e.Message
	}
	return out
}

func TestBackupSucceeds(t *testing.T) {
	ns := newNamespace(t)
	before := testutil.ToFloat64(metrics.BackupTotal.WithLabelValues(ns, "", "succeeded"))
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"}, Spec: withHooksAndRetention(backupSpec())}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "nightly", v1.PhaseSucceeded)

	want := map[string]string{"pre-hook": "Succeeded", "dump": "Succeeded", "verify": "Succeeded", "post-hook": "Succeeded", "rotate": "Succeeded"}
	if got := stagePhases(b); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stages %v, want %v", got, want)
	}
	if names := []string{b.Status.Stages[0].Name, b.Status.Stages[4].Name}; names[0] != "pre-hook" || names[1] != "rotate" {
		t.Errorf("stages out of DAG order: %v", b.Status.Stages)
	}
	out := argotest.StepOutputs(ns, "nightly", "dump")
	if b.Status.Location == nil || b.Status.Location.Key != out["key"] || b.Status.Location.Bucket != minioServer.Bucket {
		t.Errorf("location %+v", b.Status.Location)
	}
	if b.Status.Size == nil || *b.Status.Size != 43200000 || b.Status.DisplaySize != "41.2MiB" || *b.Status.RawSize != 250000000 {
		t.Errorf("sizes %v %q %v", b.Status.Size, b.Status.DisplaySize, b.Status.RawSize)
	}
	if b.Status.Checksum != out["checksum"] || b.Status.RawChecksum != out["raw-checksum"] {
		t.Errorf("checksums %q %q", b.Status.Checksum, b.Status.RawChecksum)
	}
	if b.Status.StartedAt == nil || b.Status.CompletedAt == nil || b.Status.WorkflowName != "nightly" || b.Status.ObservedGeneration != b.Generation {
		t.Errorf("status %+v", b.Status)
	}
	for _, cond := range []string{v1.ConditionSucceeded, v1.ConditionVerified} {
		if !meta.IsStatusConditionTrue(b.Status.Conditions, cond) {
			t.Errorf("condition %s not true: %+v", cond, b.Status.Conditions)
		}
	}
	argotest.WaitFor(t, "events", 10*time.Second, func() (bool, string) {
		ev := events(t, ns, "nightly")
		for _, reason := range []string{"WorkflowCreated", "Started", "Uploaded", "Verified", "Rotated"} {
			if _, ok := ev[reason]; !ok {
				return false, fmt.Sprint(ev)
			}
		}
		return true, ""
	})
	if got := testutil.ToFloat64(metrics.BackupTotal.WithLabelValues(ns, "", "succeeded")) - before; got != 1 {
		t.Errorf("backflow_backup_total{status=succeeded} rose by %v, want 1", got)
	}
	if got := testutil.ToFloat64(metrics.BackupSize.WithLabelValues(ns, "", "nightly")); got != 43200000 {
		t.Errorf("backflow_backup_size_bytes = %v", got)
	}
	checkHealth(t, b, gitopshealth.HealthStatusHealthy)
	wf := stack.Workflow(t, ns, "nightly")
	if wf.Status.Phase != wfv1.WorkflowSucceeded || !metav1.IsControlledBy(wf, b) || wf.Labels[v1.LabelBackup] != "nightly" {
		t.Errorf("workflow %s %v %v", wf.Status.Phase, wf.OwnerReferences, wf.Labels)
	}
}

func TestFailingDumpRunsPostHookButNotRotate(t *testing.T) {
	ns := newNamespace(t)
	stack.Driver.Set("broken", compiler.StepDump, argotest.Outcome{Fail: true, Message: "pg_dump failed: exit code 1: connection refused"})
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}, Spec: withHooksAndRetention(backupSpec())}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "broken", v1.PhaseFailed)
	phases := stagePhases(b)
	if phases["dump"] != "Failed" || phases["post-hook"] != "Succeeded" || phases["pre-hook"] != "Succeeded" {
		t.Errorf("stages %v: the post-hook must run after a failed dump", phases)
	}
	if p, ok := phases["rotate"]; ok && p != "Omitted" && p != "Skipped" {
		t.Errorf("rotate ran after a failed dump: %v", phases)
	}
	if p, ok := phases["verify"]; ok && p != "Omitted" && p != "Skipped" {
		t.Errorf("verify ran after a failed dump: %v", phases)
	}
	if !strings.Contains(b.Status.Message, "step dump failed") || !strings.Contains(b.Status.Message, "connection refused") {
		t.Errorf("message %q must name the failed step and say why", b.Status.Message)
	}
	c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
	if c == nil || c.Status != metav1.ConditionFalse || v1.ConditionReason(c.Reason) != v1.ReasonFailed {
		t.Errorf("Succeeded condition %+v", c)
	}
	checkHealth(t, b, gitopshealth.HealthStatusDegraded)
	if wf := stack.Workflow(t, ns, "broken"); wf.Status.Phase != wfv1.WorkflowFailed {
		t.Errorf("the Workflow must fail when the dump fails, even though the post-hook ran: %s", wf.Status.Phase)
	}
	argotest.WaitFor(t, "a Warning event naming the step", 10*time.Second, func() (bool, string) {
		ev := events(t, ns, "broken")
		e := ev["StepFailed"]
		return strings.HasPrefix(e, "Warning") && strings.Contains(e, "step dump failed"), fmt.Sprint(ev)
	})
}

func TestFailingVerify(t *testing.T) {
	ns := newNamespace(t)
	before := testutil.ToFloat64(metrics.VerifyFailedTotal.WithLabelValues(ns, ""))
	stack.Driver.Set("unverified", compiler.StepVerify, argotest.Outcome{Fail: true, Message: "checksum mismatch: the object is corrupted"})
	spec := backupSpec()
	spec.Retention = &v1.Retention{Days: ptr(int32(7))}
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "unverified"}, Spec: spec}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "unverified", v1.PhaseFailed)
	phases := stagePhases(b)
	if phases["dump"] != "Succeeded" || phases["verify"] != "Failed" {
		t.Errorf("stages %v", phases)
	}
	if p, ok := phases["rotate"]; ok && p != "Omitted" {
		t.Errorf("rotate ran after a failed verify: %v", phases)
	}
	c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionVerified)
	if c == nil || c.Status != metav1.ConditionFalse || v1.ConditionReason(c.Reason) != v1.ReasonVerifyFailed || !strings.Contains(c.Message, "checksum mismatch") {
		t.Errorf("Verified condition %+v", c)
	}
	if got := testutil.ToFloat64(metrics.VerifyFailedTotal.WithLabelValues(ns, "")) - before; got != 1 {
		t.Errorf("backflow_verify_failed_total rose by %v", got)
	}
}

// A restarted controller finds the Workflow it created and never makes a
// second one.
func TestRestartMidRunCreatesNoDuplicate(t *testing.T) {
	ns := newNamespace(t)
	stack.Driver.Set("long", compiler.StepDump, argotest.Outcome{Hold: true})
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "long"}, Spec: backupSpec()}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "long", v1.PhaseRunning)
	stopManager()
	stopManager = startManager()
	time.Sleep(2 * time.Second) // the new manager resyncs while the dump still runs
	stack.Driver.Set("long", compiler.StepDump, argotest.Outcome{Outputs: argotest.StepOutputs(ns, "long", "dump")})
	waitForPhase(t, ns, "long", v1.PhaseSucceeded)
	var wfs wfv1.WorkflowList
	if err := stack.Client.List(context.Background(), &wfs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if len(wfs.Items) != 1 || wfs.Items[0].Name != "long" {
		var names []string
		for _, wf := range wfs.Items {
			names = append(names, wf.Name)
		}
		t.Errorf("Workflows after a restart: %v, want exactly [long]", names)
	}
}

func TestBackupWaitsForItsStorage(t *testing.T) {
	ns := newNamespace(t)
	spec := backupSpec()
	spec.Storage.Name = "later"
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "waiting"}, Spec: spec}
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "StorageNotFound", 20*time.Second, func() (bool, string) {
		b := getBackup(t, ns, "waiting")
		c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
		return c != nil && v1.ConditionReason(c.Reason) == v1.ReasonStorageNotFound && b.Status.Phase == v1.PhasePending, fmt.Sprintf("%+v", b.Status)
	})
	st := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "later"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
		Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, ForcePathStyle: true,
		Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "minio"}},
	}}}
	if err := stack.Client.Create(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	waitForPhase(t, ns, "waiting", v1.PhaseSucceeded)
}

func TestStorageInAnotherNamespace(t *testing.T) {
	home := newNamespace(t)
	apps := newNamespace(t)
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: "cross"}, Spec: backupSpec()}
	b.Spec.Storage.Namespace = home
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "StorageForbidden", 20*time.Second, func() (bool, string) {
		b := getBackup(t, apps, "cross")
		c := meta.FindStatusCondition(b.Status.Conditions, v1.ConditionSucceeded)
		return c != nil && v1.ConditionReason(c.Reason) == v1.ReasonStorageForbidden, fmt.Sprintf("%+v", b.Status)
	})
	shareStorage(t, home, apps)
	waitForPhase(t, apps, "cross", v1.PhaseSucceeded)
	// Nothing is copied into the Backup's namespace: every step reads its own
	// keys of the Workflow's run Secret (credentials_test.go follows it),
	// which goes once the Workflow finished.
	waitForSecretGone(t, apps, storageref.RunSecretName(stack.Workflow(t, apps, "cross").UID))
	var copies corev1.SecretList
	if err := stack.Client.List(context.Background(), &copies, client.InNamespace(apps)); err != nil {
		t.Fatal(err)
	}
	for _, s := range copies.Items {
		// The executor's token Secret belongs to the namespace's accounts
		// (controller/namespace), not to the storage.
		if s.Name != argotest.StorageName && s.Name != namespace.TokenSecret {
			t.Errorf("Secret %s in the Backup's namespace after the run", s.Name)
		}
	}
	wf := stack.Workflow(t, apps, "cross")
	for _, task := range wf.Spec.Templates[0].DAG.Tasks {
		for _, p := range task.Arguments.Parameters {
			if p.Name == compiler.ParamStorageSecret && p.Value.String() != compiler.RunCredentialsSecret {
				t.Errorf("%s uses storage secret %s, want the run Secret %s", task.Name, p.Value, compiler.RunCredentialsSecret)
			}
		}
	}
}

func TestBackupStorageReadiness(t *testing.T) {
	ns := newNamespace(t)
	argotest.WaitFor(t, "Ready", 20*time.Second, func() (bool, string) {
		var st v1.BackupStorage
		_ = stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "minio"}, &st)
		c := meta.FindStatusCondition(st.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionTrue && v1.ConditionReason(c.Reason) == v1.ReasonReachable && st.Status.LastCheckedTime != nil, fmt.Sprintf("%+v", st.Status)
	})
	var ready v1.BackupStorage
	if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "minio"}, &ready); err != nil {
		t.Fatal(err)
	}
	checkHealth(t, &ready, gitopshealth.HealthStatusHealthy)
	bad := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nobucket"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
		Endpoint: minioServer.Endpoint, Bucket: "does-not-exist", ForcePathStyle: true,
		Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "minio"}},
	}}}
	noSecret := bad.DeepCopy()
	noSecret.Name, noSecret.Spec.S3.Bucket, noSecret.Spec.S3.Credentials.SecretRef.Name = "nosecret", minioServer.Bucket, "missing"
	for _, st := range []*v1.BackupStorage{bad, noSecret} {
		if err := stack.Client.Create(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	for name, reason := range map[string]v1.ConditionReason{"nobucket": v1.ReasonUnreachable, "nosecret": v1.ReasonCredentialsError} {
		argotest.WaitFor(t, name+" not Ready", 20*time.Second, func() (bool, string) {
			var st v1.BackupStorage
			_ = stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &st)
			c := meta.FindStatusCondition(st.Status.Conditions, v1.ConditionReady)
			return c != nil && c.Status == metav1.ConditionFalse && v1.ConditionReason(c.Reason) == reason, fmt.Sprintf("%+v", st.Status)
		})
		var st v1.BackupStorage
		if err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &st); err != nil {
			t.Fatal(err)
		}
		checkHealth(t, &st, gitopshealth.HealthStatusDegraded)
	}
}

// The bucket check trusts the CA bundle a BackupStorage names, from a Secret
// or a ConfigMap, and without it reports the certificate error.
func TestBackupStorageWithCABundle(t *testing.T) {
	tlsMinIO, err := servers.StartMinIO(servers.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer tlsMinIO.Stop()
	ns := newNamespace(t)
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tls-minio"}, StringData: map[string]string{
			"AWS_ACCESS_KEY_ID": tlsMinIO.AccessKey, "AWS_SECRET_ACCESS_KEY": tlsMinIO.SecretKey, "ca.crt": string(tlsMinIO.CAPEM),
		}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, Data: map[string]string{"bundle.pem": string(tlsMinIO.CAPEM)}},
	} {
		if err := stack.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	storage := func(name string, tls *v1.StorageTLS) *v1.BackupStorage {
		return &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: tlsMinIO.Endpoint, Bucket: tlsMinIO.Bucket, ForcePathStyle: true, TLS: tls,
			Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "tls-minio"}},
		}}}
	}
	for _, st := range []*v1.BackupStorage{
		storage("ca-secret", &v1.StorageTLS{CASecretRef: &v1.SecretKeySelector{Name: "tls-minio", Key: "ca.crt"}}),
		storage("ca-configmap", &v1.StorageTLS{CAConfigMapRef: &v1.ConfigMapKeySelector{Name: "ca", Key: "bundle.pem"}}),
		storage("no-ca", nil),
	} {
		if err := stack.Client.Create(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]metav1.ConditionStatus{"ca-secret": metav1.ConditionTrue, "ca-configmap": metav1.ConditionTrue, "no-ca": metav1.ConditionFalse} {
		argotest.WaitFor(t, name+" checked", 20*time.Second, func() (bool, string) {
			var st v1.BackupStorage
			_ = stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &st)
			c := meta.FindStatusCondition(st.Status.Conditions, v1.ConditionReady)
			if c == nil || c.Status != want {
				return false, fmt.Sprintf("%+v", st.Status)
			}
			if want == metav1.ConditionFalse && !strings.Contains(c.Message, "certificate") {
				t.Errorf("%s: the message does not name the certificate problem: %q", name, c.Message)
			}
			return true, ""
		})
	}
}

func TestScheduleRunsBecomeBackups(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"}, Spec: v1.BackupScheduleSpec{
		Schedule: "0 * * * *", Timezone: "Europe/Berlin", ConcurrencyPolicy: v1.ConcurrencyAllow,
		SuccessfulBackupsHistoryLimit: ptr(int32(2)), FailedBackupsHistoryLimit: ptr(int32(1)), MissingAfterIntervals: 2,
		Template: v1.BackupTemplate{Metadata: v1.BackupTemplateMetadata{Labels: map[string]string{"team": "shop"}}, Spec: withHooksAndRetention(backupSpec())},
	}}
	if err := stack.Client.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	var cron wfv1.CronWorkflow
	argotest.WaitFor(t, "the CronWorkflow", 20*time.Second, func() (bool, string) {
		err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hourly"}, &cron)
		return err == nil, fmt.Sprint(err)
	})
	if cron.Spec.Schedules[0] != "0 * * * *" || cron.Spec.Timezone != "Europe/Berlin" || cron.Spec.ConcurrencyPolicy != wfv1.AllowConcurrent ||
		*cron.Spec.SuccessfulJobsHistoryLimit != 2 || cron.Spec.WorkflowMetadata.Labels[v1.LabelSchedule] != "hourly" {
		t.Errorf("CronWorkflow spec %+v", cron.Spec)
	}
	// Three manual runs: the oldest successful Backup falls out of the history.
	for i := 1; i <= 3; i++ {
		updateSchedule(t, s, func() {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[v1.AnnotationTrigger] = fmt.Sprint(i)
		})
		argotest.WaitFor(t, fmt.Sprintf("run %d to succeed", i), 60*time.Second, func() (bool, string) {
			// The run is the Workflow the trigger started; its Backup has its name.
			var wfs wfv1.WorkflowList
			_ = stack.Client.List(ctx, &wfs, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "hourly"})
			run := ""
			for _, wf := range wfs.Items {
				if wf.Annotations[v1.AnnotationTrigger] == fmt.Sprint(i) {
					run = wf.Name
				}
			}
			var list v1.BackupList
			_ = stack.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "hourly"})
			done := false
			var states []string
			for _, b := range list.Items {
				states = append(states, b.Name+"="+string(b.Status.Phase))
				done = done || (b.Name == run && b.Status.Phase == v1.PhaseSucceeded)
			}
			return done && len(list.Items) == min(i, 2), fmt.Sprint(run, states)
		})
	}
	var list v1.BackupList
	if err := stack.Client.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{v1.LabelSchedule: "hourly"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range list.Items {
		if b.Labels["team"] != "shop" || !metav1.IsControlledBy(&b, s) || b.Status.Checksum == "" || b.Status.Size == nil {
			t.Errorf("scheduled Backup %s: labels %v, owners %v, status %+v", b.Name, b.Labels, b.OwnerReferences, b.Status)
		}
	}
	argotest.WaitFor(t, "the schedule's status", 20*time.Second, func() (bool, string) {
		if err := stack.Client.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
			return false, err.Error()
		}
		st := s.Status
		ok := st.LastSuccessfulTime != nil && st.NextScheduleTime != nil && len(st.RecentRuns) == 2 &&
			meta.IsStatusConditionTrue(st.Conditions, v1.ConditionReady) && meta.IsStatusConditionFalse(st.Conditions, v1.ConditionBackupMissing)
		return ok, fmt.Sprintf("%+v", st)
	})
	checkHealth(t, s, gitopshealth.HealthStatusHealthy)
	if next := s.Status.NextScheduleTime.Time; next.Minute() != 0 || time.Until(next) > time.Hour {
		t.Errorf("nextScheduleTime %v is not the next full hour", next)
	}
	if got := testutil.ToFloat64(metrics.ScheduleLastSuccess.WithLabelValues(ns, "hourly")); got != float64(s.Status.LastSuccessfulTime.Unix()) {
		t.Errorf("backflow_schedule_last_success_timestamp_seconds = %v", got)
	}
	if got := testutil.ToFloat64(metrics.ScheduleNextRun.WithLabelValues(ns, "hourly")); got != float64(s.Status.NextScheduleTime.Unix()) {
		t.Errorf("backflow_schedule_next_run_timestamp_seconds = %v", got)
	}

	// Suspending reaches the CronWorkflow and clears the next run.
	updateSchedule(t, s, func() { s.Spec.Suspend = true })
	argotest.WaitFor(t, "suspension", 20*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(s), s)
		_ = stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hourly"}, &cron)
		c := meta.FindStatusCondition(s.Status.Conditions, v1.ConditionReady)
		return cron.Spec.Suspend && s.Status.NextScheduleTime == nil && c != nil && v1.ConditionReason(c.Reason) == v1.ReasonSuspended, fmt.Sprintf("%+v", s.Status)
	})
	checkHealth(t, s, gitopshealth.HealthStatusSuspended)

	// The schedule's series, and those of the Backups it ran, go with it.
	ours := map[string]string{"namespace": ns, "schedule": "hourly"}
	vectors := map[string]prometheus.Collector{
		"backflow_backup_total": metrics.BackupTotal, "backflow_backup_duration_seconds": metrics.BackupDuration,
		"backflow_backup_size_bytes": metrics.BackupSize, "backflow_schedule_last_success_timestamp_seconds": metrics.ScheduleLastSuccess,
		"backflow_schedule_interval_seconds": metrics.ScheduleIntervalSeconds,
	}
	for name, vec := range vectors {
		if n := seriesWith(t, vec, ours); n == 0 {
			t.Errorf("%s has no series of the schedule before it is deleted", name)
		}
	}
	if err := stack.Client.Delete(ctx, s); err != nil {
		t.Fatal(err)
	}
	vectors["backflow_verify_failed_total"], vectors["backflow_schedule_next_run_timestamp_seconds"] = metrics.VerifyFailedTotal, metrics.ScheduleNextRun
	argotest.WaitFor(t, "the schedule's series to go", 20*time.Second, func() (bool, string) {
		left := map[string]int{}
		for name, vec := range vectors {
			if n := seriesWith(t, vec, ours); n > 0 {
				left[name] = n
			}
		}
		return len(left) == 0, fmt.Sprint(left)
	})
}

// seriesWith counts the series of a metric vector whose labels include
// labels.
func seriesWith(t *testing.T, vec prometheus.Collector, labels map[string]string) int {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(vec)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, family := range families {
		for _, m := range family.GetMetric() {
			matched := 0
			for _, pair := range m.GetLabel() {
				if v, ok := labels[pair.GetName()]; ok && v == pair.GetValue() {
					matched++
				}
			}
			if matched == len(labels) {
				n++
			}
		}
	}
	return n
}

// The size series of a one-shot Backup is its own and goes with it; the
// counters are by namespace and stay.
func TestMetricsOfDeletedBackup(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "once"}, Spec: backupSpec()}
	if err := stack.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "once", v1.PhaseSucceeded)
	size := map[string]string{"namespace": ns, "schedule": "", "series": "once"}
	// The metrics follow the status patch that the Backup's phase shows.
	argotest.WaitFor(t, "the size series of Backup once", 20*time.Second, func() (bool, string) {
		n := seriesWith(t, metrics.BackupSize, size)
		return n == 1, fmt.Sprintf("%d series", n)
	})
	if err := stack.Client.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the size series to go", 20*time.Second, func() (bool, string) {
		n := seriesWith(t, metrics.BackupSize, size)
		return n == 0, fmt.Sprintf("%d series", n)
	})
	if got := testutil.ToFloat64(metrics.BackupTotal.WithLabelValues(ns, "", metrics.StatusSucceeded)); got != 1 {
		t.Errorf("backflow_backup_total{namespace=%s,status=succeeded} = %v after the Backup was deleted, want 1", ns, got)
	}
}

// updateSchedule applies change to the newest version of s.
func updateSchedule(t *testing.T, s *v1.BackupSchedule, change func()) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := stack.Client.Get(context.Background(), client.ObjectKeyFromObject(s), s); err != nil {
			return err
		}
		change()
		return stack.Client.Update(context.Background(), s)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRestoreFromBackup(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "source"}, Spec: backupSpec()}
	r := &v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "back"}, Spec: v1.RestoreSpec{
		From:   v1.RestoreSource{BackupRef: &v1.LocalObjectReference{Name: "source"}},
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}},
	}}
	// The Restore comes first and waits for its Backup.
	if err := stack.Client.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := stack.Client.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the Restore to succeed", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(r), r)
		return r.Status.Phase == v1.PhaseSucceeded, fmt.Sprintf("%+v", r.Status)
	})
	checkHealth(t, r, gitopshealth.HealthStatusHealthy)
	if r.Status.BackupName != "source" || r.Status.Location == nil || r.Status.Location.Key != argotest.StepOutputs(ns, "source", "dump")["key"] {
		t.Errorf("restore status %+v", r.Status)
	}
	phases := map[string]string{}
	for _, s := range r.Status.Stages {
		phases[s.Name] = s.Phase
	}
	if phases["verify"] != "Succeeded" || phases["restore"] != "Succeeded" {
		t.Errorf("restore stages %v", phases)
	}
	wf := stack.Workflow(t, ns, "back")
	pinned := 0
	for _, task := range wf.Spec.Templates[0].DAG.Tasks {
		for _, p := range task.Arguments.Parameters {
			if p.Name == compiler.ParamKey && p.Value.String() != r.Status.Location.Key {
				t.Errorf("%s restores %s", task.Name, p.Value)
			}
			// The checksum the Backup recorded, which verify and restore pin.
			if p.Name == compiler.ParamExpectChecksum {
				if p.Value.String() != argotest.StepOutputs(ns, "source", "dump")[compiler.OutputChecksum] {
					t.Errorf("%s expects checksum %q, want the Backup's", task.Name, p.Value)
				}
				pinned++
			}
		}
	}
	if pinned != 2 {
		t.Errorf("%d steps pin the Backup's checksum, want verify and restore", pinned)
	}
}
