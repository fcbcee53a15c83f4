//go:build e2e

// Package e2e runs backflow end to end on the local stack (test/cluster): a
// real node running the step containers, Argo's workflow-controller and
// executor, backflow installed by its Helm chart, MinIO, PostgreSQL and
// MariaDB. `make e2e` brings the stack up, installs backflow and runs it.
//
// Each test applies manifests as a user would (kubectl apply) in its own
// namespace, and checks what a user would check: the resource's status, the
// objects in the bucket, the restored data.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/backflow-dev/backflow/test/clusterkit"
)

var st *clusterkit.Stack

func TestMain(m *testing.M) {
	s, err := clusterkit.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err, "(run `make e2e`, which brings the stack up)")
		os.Exit(1)
	}
	st = s
	collector, err := startPodCollector(s.Env["KUBECONFIG"])
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: collecting pod logs:", err)
		os.Exit(1)
	}
	code := m.Run()
	// The secret scan runs after every scenario, over what they all left
	// and every step pod's log.
	collector.stop()
	hits, documents, err := scanForSecrets(collector)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "e2e: secret scan:", err)
		code = 1
	case len(hits) > 0:
		fmt.Fprintf(os.Stderr, "e2e: secret scan: %d secret values found in Workflows, Events, pod specs or logs:\n", len(hits))
		for _, h := range hits {
			fmt.Fprintln(os.Stderr, "  "+h)
		}
		code = 1
	default:
		fmt.Printf("e2e: secret scan: no secret value in %d documents (Workflows, CronWorkflows, Events, backflow resources, ConfigMaps, pod specs, container logs)\n", documents)
	}
	os.Exit(code)
}

// appPod runs an application pod the hooks exec into; its hooks leave marker
// files behind.
func appPod(t testing.TB, namespace string) {
	t.Helper()
	st.Apply(t, namespace, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: worker, labels: {app: worker}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: worker
    image: %s
    imagePullPolicy: Never
    command: [sleep, infinity]
`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]))
	st.Kubectl(t, "", "wait", "-n", namespace, "--for=condition=Ready", "pod/worker", "--timeout=60s")
	st.Kubectl(t, "", "exec", "-n", namespace, "worker", "--", "rm", "-f", "/tmp/pre-hook", "/tmp/post-hook")
}

func hookRan(t testing.TB, namespace, marker string) bool {
	return st.Command("exec", "-n", namespace, "worker", "--", "test", "-f", "/tmp/"+marker).Run() == nil
}

const hooks = `
  hooks:
    pre:
      exec:
        podSelector: {matchLabels: {app: worker}}
        container: worker
        command: [touch, /tmp/pre-hook]
    post:
      exec:
        podSelector: {matchLabels: {app: worker}}
        container: worker
        command: [touch, /tmp/post-hook]
`
