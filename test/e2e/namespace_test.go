//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/clusterkit"
)

// tokenDir is where a container finds a mounted service-account token.
const tokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// A namespace made just now, that no chart value names, runs a Backup: the
// controller provides the workflow accounts as the Backup appears. Every
// step's pod runs with a token in Argo's wait container only, except the
// exec hook's, whose container gets backflow-hook's. The pods are read from
// a watch started before the Backup, as Argo deletes them once they
// succeed.
func TestBrandNewNamespace(t *testing.T) {
	t.Parallel()
	ns := fmt.Sprintf("e2e-newcomer-%d", time.Now().Unix())
	st.Kubectl(t, "", "create", "namespace", ns)
	t.Cleanup(func() { _ = st.Command("delete", "namespace", ns, "--wait=false").Run() })
	st.Namespace(t, ns, bucket)
	appPod(t, ns)

	cfg, err := clientcmd.BuildConfigFromFlags("", st.Env["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	wc, err := client.NewWithWatch(cfg, client.Options{Scheme: controller.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels{"workflows.argoproj.io/workflow": "newcomer"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pods := map[string]*corev1.Pod{} // by step
	go func() {
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			step := strings.TrimPrefix(pod.Annotations["workflows.argoproj.io/node-name"], "newcomer.")
			if i := strings.IndexAny(step, "(["); i >= 0 {
				step = step[:i]
			}
			mu.Lock()
			pods[step] = pod
			mu.Unlock()
		}
	}()

	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: newcomer}
spec:
  source:
    command:
      image: %s
      command: [seq, "1", "1000"]
  storage: {name: minio}
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"])+hooks)
	b := &v1.Backup{}
	b.Namespace, b.Name = ns, "newcomer"
	clusterkit.WaitForPhase(t, st, b, v1.PhaseSucceeded, 3*time.Minute)
	st.CheckStoredObject(t, b, bucket)
	if !hookRan(t, ns, "pre-hook") || !hookRan(t, ns, "post-hook") {
		t.Error("the hooks did not run in the application pod")
	}
	for _, account := range []string{compiler.ExecutorServiceAccount, compiler.HookServiceAccount} {
		var sa corev1.ServiceAccount
		if err := st.Kube.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: account}, &sa); err != nil {
			t.Errorf("the controller did not provide %s: %v", account, err)
		}
	}

	cancel()
	mu.Lock()
	defer mu.Unlock()
	for _, step := range []string{compiler.StepPreHook, compiler.StepDump, compiler.StepVerify, compiler.StepPostHook} {
		pod := pods[step]
		if pod == nil {
			t.Errorf("no pod of step %s seen (seen: %v)", step, keys(pods))
			continue
		}
		hook := step == compiler.StepPreHook || step == compiler.StepPostHook
		wantAccount := compiler.ExecutorServiceAccount
		if hook {
			wantAccount = compiler.HookServiceAccount
		}
		if pod.Spec.ServiceAccountName != wantAccount {
			t.Errorf("%s: pod runs as %s, want %s", step, pod.Spec.ServiceAccountName, wantAccount)
		}
		if a := pod.Spec.AutomountServiceAccountToken; hook == (a != nil && !*a) {
			t.Errorf("%s: automountServiceAccountToken %v", step, a)
		}
		if got := mountsToken(pod, "main"); got != hook {
			t.Errorf("%s: the main container has a token mounted at %s: %t, want %t", step, tokenDir, got, hook)
		}
		if !mountsToken(pod, "wait") {
			t.Errorf("%s: Argo's wait container has no token", step)
		}
	}
}

func mountsToken(pod *corev1.Pod, container string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name != container {
			continue
		}
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(m.MountPath, tokenDir) {
				return true
			}
		}
	}
	return false
}

func keys(m map[string]*corev1.Pod) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
