package injection_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// TestAcceptedValuesReachThePodLiterally runs a Workflow compiled from a
// Backup whose accepted strings are hostile through the real Argo
// workflow-controller, and reads the dump pod Argo made: the path arrives
// as one --path= argument, Go template actions untouched, and the source
// (a command with shell, option and Argo strings in its arguments) decodes
// from its --source= argument to exactly what the Backup says.
func TestAcceptedValuesReachThePodLiterally(t *testing.T) {
	ctx := context.Background()
	if err := stack.InstallWorkflowTemplates(); err != nil {
		t.Fatal(err)
	}
	ns := "literal"
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backflow-workflow"}},
	} {
		if err := stack.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	path := `{{ .Namespace }}/$(id)/--help/{{- .Series -}}/{{ .Timestamp | date "2006" }}{{ .Extension }}`
	args := []string{"$(id)", "`id`", "; rm -rf /", "--help", "-oProxyCommand=x", "a\nb",
		"{{workflow.name}}", "{{inputs.parameters.storage-secret}}", `{{=sprig.env("HOME")}}`, "{{= 1+1 }}", "{{ .Namespace {{workflow.uid}} }}"}
	b := &v1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hostile"},
		Spec: v1.BackupSpec{
			Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"sh", "-c", "echo \"$0\" \"$@\""}, Args: args}},
			Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "shared"}, Path: path},
		},
	}
	// The apiserver accepts it: the path's actions are Go template ones.
	if err := stack.Client.Create(ctx, b, client.DryRunAll); err != nil {
		t.Fatalf("the Backup is refused: %v", err)
	}
	st := fixedStorage(t)
	wf, err := compiler.Backup(compiler.BackupInput{Backup: b, Storage: access(st)}, compilerOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.Client.Create(ctx, wf); err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	argotest.WaitFor(t, "the dump pod", 60*time.Second, func() (bool, string) {
		var pods corev1.PodList
		if err := stack.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			if strings.Contains(p.Annotations["workflows.argoproj.io/node-name"], compiler.StepDump) {
				pod = p
				return true, ""
			}
		}
		var w wfv1.Workflow
		_ = stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: wf.Name}, &w)
		return false, string(w.Status.Phase) + " " + w.Status.Message
	})
	var main *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == "main" {
			main = &pod.Spec.Containers[i]
		}
	}
	if main == nil {
		t.Fatalf("no main container in %s", pod.Name)
	}
	if !slices.Contains(main.Args, "--path="+path) {
		t.Errorf("the dump's arguments hold no --path=%q: %q", path, main.Args)
	}
	var source v1.BackupSource
	found := false
	for _, a := range main.Args {
		if s, ok := strings.CutPrefix(a, "--source="); ok {
			found = true
			if err := json.Unmarshal([]byte(s), &source); err != nil {
				t.Fatalf("--source= is no JSON: %v", err)
			}
		}
	}
	if !found || source.Command == nil || !slices.Equal(source.Command.Args, args) {
		t.Errorf("the dump's --source= decodes to %+v, want the Backup's arguments %q", source.Command, args)
	}
}
