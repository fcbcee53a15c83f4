package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/namespace"
	"github.com/backflow-dev/backflow/test/argotest"
)

// controllerUser is who the chart's controller runs as: its ServiceAccount.
const controllerUser = "system:serviceaccount:backflow-system:backflow"

// renderedObjects are the chart's objects of the given kinds.
func renderedObjects(t *testing.T, kinds map[string]bool, values ...string) []string {
	t.Helper()
	var docs []string
	for _, doc := range strings.Split(render(t, values...), "\n---") {
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		if kinds[meta.Kind] {
			docs = append(docs, doc)
		}
	}
	return docs
}

// With hooks.exec false there is no hook ClusterRole, the controller binds
// only the workflow one, and it is told exec hooks are off.
func TestExecHooksOffRendersNoHookRole(t *testing.T) {
	out := render(t, "--set", "hooks.exec=false")
	for _, doc := range renderedObjects(t, map[string]bool{"ClusterRole": true}, "--set", "hooks.exec=false") {
		var role rbacv1.ClusterRole
		if err := yaml.UnmarshalStrict([]byte(doc), &role); err != nil {
			t.Fatal(err)
		}
		for _, rule := range role.Rules {
			if strings.Contains(strings.Join(rule.Resources, ","), "pods/exec") || role.Name == "backflow-hook" {
				t.Errorf("hooks.exec=false renders ClusterRole %s granting %v", role.Name, role.Rules)
			}
		}
	}
	if !strings.Contains(out, "- --hook-cluster-role=\n") {
		t.Error("hooks.exec=false does not tell the controller that exec hooks are off (an empty --hook-cluster-role)")
	}
	if !strings.Contains(out, "resourceNames:\n      - backflow-workflow\n---") {
		t.Error("the controller may not bind the workflow ClusterRole")
	}
	on := render(t)
	for _, want := range []string{"--workflow-cluster-role=backflow-workflow", "--hook-cluster-role=backflow-hook", "--workflow-namespaces=*",
		"resourceNames:\n      - backflow-workflow\n      - backflow-hook\n"} {
		if !strings.Contains(on, want) {
			t.Errorf("the default values render no %q", want)
		}
	}
}

// The chart's RBAC, applied for real, is all the controller needs: run as
// the chart's ServiceAccount, it provides the accounts in a new namespace
// and creates the Backup's Workflow, and removes them with the Backup. It
// cannot bind any other role, nor read pods or exec into them.
func TestControllerRunsWithTheChartsRBAC(t *testing.T) {
	kubeconfig, err := cluster.WriteKubeconfig(t.TempDir(), "default")
	if err != nil {
		t.Fatal(err)
	}
	kubectl := tool(t, "kubectl")
	if out, err := run(t, kubectl, "--kubeconfig", kubeconfig, "create", "namespace", "backflow-system"); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatal(out)
	}
	file := filepath.Join(t.TempDir(), "rbac.yaml")
	docs := renderedObjects(t, map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "ServiceAccount": true})
	if err := os.WriteFile(file, []byte(strings.Join(docs, "\n---")), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, kubectl, "--kubeconfig", kubeconfig, "apply", "-f", file); err != nil {
		t.Fatalf("applying the chart's RBAC: %v\n%s", err, out)
	}

	cfg := rest.CopyConfig(cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: controllerUser,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:backflow-system", "system:authenticated"}}
	mgr, err := controller.NewManager(cfg, controller.Options{
		Compiler: compiler.DefaultOptions(),
		// The chart's flags (TestExecHooksOffRendersNoHookRole reads them).
		Workflows:   namespace.Config{Policy: namespace.AdmitAll(), WorkflowClusterRole: "backflow-workflow", HookClusterRole: "backflow-hook"},
		MetricsAddr: "0", ProbeAddr: "0", StorageCheckInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the controller, as %s: %v", controllerUser, err)
		}
	})

	c := cluster.Client
	ns := "tenant-rbac"
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first"}, Spec: v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "minio"}},
		Hooks:   &v1.Hooks{Pre: &v1.Hook{Exec: &v1.ExecHook{PodName: "app", Command: []string{"sync"}}}},
	}}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"}, StringData: map[string]string{v1.DefaultAccessKeyIDKey: "id", v1.DefaultSecretAccessKeyKey: "key"}},
		&v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "minio"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: "http://minio.invalid:9000", Bucket: "backups", Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "minio"}},
		}}},
		b,
	} {
		if err := c.Create(context.Background(), obj); err != nil {
			t.Fatal(err)
		}
	}
	accounts := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.ExecutorServiceAccount}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.HookServiceAccount}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.ExecutorServiceAccount}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: compiler.HookServiceAccount}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: namespace.TokenSecret}},
	}
	count := func() (int, string) {
		n := 0
		var missing []string
		for _, obj := range accounts {
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err == nil {
				n++
			} else {
				missing = append(missing, fmt.Sprintf("%T %s: %v", obj, obj.GetName(), err))
			}
		}
		return n, strings.Join(missing, "; ")
	}
	argotest.WaitFor(t, "the Workflow and the accounts, created as "+controllerUser, 60*time.Second, func() (bool, string) {
		var got v1.Backup
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(b), &got); err != nil {
			return false, err.Error()
		}
		n, missing := count()
		return got.Status.WorkflowName != "" && n == len(accounts), fmt.Sprintf("Backup %s %q; missing %s", got.Status.Phase, got.Status.Message, missing)
	})

	as, err := client.New(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	// A role with the hook role's very rules, under another name: bind is
	// granted on the chart's two roles by name only, and the controller
	// does not hold what they grant.
	lookalike := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "exec-into-pods"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}},
	}}
	if err := c.Create(context.Background(), lookalike); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"cluster-admin", lookalike.Name} {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "escalate-" + role},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: compiler.ExecutorServiceAccount, Namespace: ns}}}
		if err := as.Create(context.Background(), rb); !apierrors.IsForbidden(err) {
			t.Errorf("the controller binds ClusterRole %s: %v, want forbidden", role, err)
		}
	}
	if err := as.List(context.Background(), &corev1.PodList{}, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Errorf("the controller lists pods: %v, want forbidden", err)
	}

	if err := c.Delete(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	argotest.WaitFor(t, "the accounts to go with the Backup", 60*time.Second, func() (bool, string) {
		n, missing := count()
		return n == 0, fmt.Sprintf("%d left (missing: %s)", n, missing)
	})
}
