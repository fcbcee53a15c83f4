// Package chart tests charts/backflow: helm lint, the values schema, every
// rendered object against a real kube-apiserver (server-side dry run, with
// backflow's and Argo's CRDs installed), and the alert rules with promtool.
package chart

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
	"github.com/backflow-dev/backflow/test/envtest"
	"github.com/backflow-dev/backflow/test/tools"
)

var (
	chartDir = filepath.Join(envtest.RepoRoot(), "charts", "backflow")
	cluster  *envtest.Cluster
)

func TestMain(m *testing.M) {
	argoCRDs, err := argotest.CRDDir()
	if err != nil {
		panic(err)
	}
	envtest.Main(m, &cluster, envtest.WithCRDs(argoCRDs))
}

// tool builds (once, cached) and returns a pinned binary.
func tool(t *testing.T, name string) string {
	t.Helper()
	bin, err := tools.Binary(name)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	var kept []string
	for _, l := range strings.Split(string(out), "\n") {
		// The chart links the generated templates and health scripts in.
		if !strings.Contains(l, "found symbolic link in path") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n"), err
}

func render(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, tool(t, "helm"), append([]string{"template", "backflow", chartDir, "--namespace", "backflow-system", "--kube-version", envtest.KubernetesVersion}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	return out
}

var everything = []string{
	"--set", "workflow.namespaces={apps,shop}", "--set", "controller.watchNamespaces={apps,shop}",
	"--set", "controller.replicas=2", "--set", "metrics.serviceMonitor.enabled=true",
	"--set", "metrics.prometheusRule.enabled=true", "--set", "argocd.healthChecks.enabled=true",
	"--set", "workflow.templateReferencing=Strict", "--set", "controller.maxConcurrentReconciles=8",
	"--set", "workflow.namespaceSelector.matchLabels.team=shop",
	"--set", "workflow.namespaceSelector.matchExpressions[0].key=frozen", "--set", "workflow.namespaceSelector.matchExpressions[0].operator=DoesNotExist",
}

func TestLint(t *testing.T) {
	for _, values := range [][]string{nil, everything} {
		if out, err := run(t, tool(t, "helm"), append([]string{"lint", "--strict", chartDir}, values...)...); err != nil {
			t.Errorf("helm lint %v: %v\n%s", values, err, out)
		}
	}
}

// Bad values fail at install with the field named.
func TestSchemaRejectsBadValues(t *testing.T) {
	for _, c := range []struct {
		set, want string
	}{
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"controller.logging.format=xml", "/controller/logging/format"},
		{"workflow.namespaces={Not_A_Namespace}", "/workflow/namespaces/0"},
		{"workflow.successTTL=1 day", "/workflow/successTTL"},
		{"controller.replicas=-1", "/controller/replicas"},
		{"metrics.service.port=70000", "/metrics/service/port"},
		{"controller.replics=2", "replics"},
		{"workflow.templateReferencing=Loose", "/workflow/templateReferencing"},
		{"controller.maxConcurrentReconciles=0", "/controller/maxConcurrentReconciles"},
		{"controller.deleteTimeout=forever", "/controller/deleteTimeout"},
		{"workflow.namespaces={*,apps}", "/workflow/namespaces"},
		{"workflow.namespaces=null", "namespaces"},
		{"workflow.namespaceSelector.matchExpressions[0].operator=Maybe", "/workflow/namespaceSelector/matchExpressions/0"},
		{"workflow.namespaceSelector.matchNames={apps}", "matchNames"},
		// The run templates write images into expressions and YAML.
		{"workflow.allowedImages={evil`+\"x}", "/workflow/allowedImages/0"},
		{"clientImages.mysql=mysql:8 --privileged", "/clientImages/mysql"},
	} {
		out, err := run(t, tool(t, "helm"), "template", "backflow", chartDir, "--set", c.set)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("--set %s: want an error naming %s, got %v\n%s", c.set, c.want, err, out)
		}
	}
	out, err := run(t, tool(t, "helm"), "template", "backflow", chartDir, "--set", "controller.replicas=2", "--set", "controller.leaderElection=false")
	if err == nil || !strings.Contains(out, "leaderElection") {
		t.Errorf("two replicas without leader election: want an error, got %v\n%s", err, out)
	}
}

// Every rendered object is accepted by the apiserver of the pinned version
// (server-side dry run), except the Prometheus Operator's kinds, whose CRDs
// are not installed here; their rules are checked by promtool below.
func TestRenderedObjectsValidate(t *testing.T) {
	kubeconfig, err := cluster.WriteKubeconfig(t.TempDir(), "default")
	if err != nil {
		t.Fatal(err)
	}
	kubectl := tool(t, "kubectl")
	for _, ns := range []string{"backflow-system", "apps", "shop", "argocd"} {
		if out, err := run(t, kubectl, "--kubeconfig", kubeconfig, "create", "namespace", ns); err != nil && !strings.Contains(out, "AlreadyExists") {
			t.Fatal(out)
		}
	}
	for _, values := range [][]string{nil, everything} {
		var kept []string
		kinds := map[string]int{}
		for _, doc := range strings.Split(render(t, values...), "\n---") {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("rendered YAML: %v\n%s", err, doc)
			}
			if meta.Kind == "" {
				continue
			}
			kinds[meta.Kind]++
			if !strings.HasPrefix(meta.APIVersion, "monitoring.coreos.com/") {
				kept = append(kept, doc)
			}
		}
		for _, kind := range []string{"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "ClusterWorkflowTemplate"} {
			if kinds[kind] == 0 {
				t.Errorf("values %v: no %s rendered (%v)", values, kind, kinds)
			}
		}
		file := filepath.Join(t.TempDir(), "rendered.yaml")
		if err := os.WriteFile(file, []byte(strings.Join(kept, "\n---")), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := run(t, kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server", "--validate=strict", "-f", file); err != nil {
			t.Errorf("values %v: the apiserver rejects the chart:\n%s", values, out)
		}
	}
}

// The ClusterWorkflowTemplates the chart renders are the compiler's for
// the same images: the run templates accept exactly the chart's backflow
// image, client images and workflow.allowedImages, as the controller does
// with the flags the chart gives it.
func TestRenderedWorkflowTemplatesAreTheCompilers(t *testing.T) {
	for _, c := range []struct {
		values []string
		opts   func(*compiler.Options)
	}{
		{nil, func(*compiler.Options) {}},
		{
			[]string{"--set", "image.tag=v9.9.9", "--set", "workflow.allowedImages={busybox,registry.example.com/acme/exporter:2.4.1}",
				"--set", "clientImages.postgresql=registry.example.com/pg:17", "--set", "clientImages.mysql=docker.io/library/mariadb:11.4"},
			func(o *compiler.Options) {
				o.Image = "ghcr.io/backflow-dev/backflow:v9.9.9"
				o.AllowedImages = []string{"busybox", "registry.example.com/acme/exporter:2.4.1"}
				o.ClientImages["postgresql"] = "registry.example.com/pg:17"
				o.ClientImages["mysql"] = "docker.io/library/mariadb:11.4"
			},
		},
		// Strict: the run templates alone (see the chart's template).
		{[]string{"--set", "workflow.templateReferencing=Strict"}, func(o *compiler.Options) { o.TemplateReferencing = compiler.TemplateReferencingStrict }},
	} {
		opts := compiler.DefaultOptions()
		var chart chartValues
		if err := yaml.Unmarshal([]byte(readFile(t, filepath.Join(chartDir, "Chart.yaml"))), &chart); err != nil {
			t.Fatal(err)
		}
		opts.Image = "ghcr.io/backflow-dev/backflow:" + chart.AppVersion
		c.opts(&opts)
		rendered := map[string]string{}
		for _, doc := range strings.Split(render(t, c.values...), "\n---") {
			var cwt wfv1.ClusterWorkflowTemplate
			if err := yaml.Unmarshal([]byte(doc), &cwt); err != nil {
				t.Fatal(err)
			}
			if cwt.Kind == "ClusterWorkflowTemplate" {
				data, _ := yaml.Marshal(cwt)
				rendered[cwt.Name] = string(data)
			}
		}
		var want []*wfv1.ClusterWorkflowTemplate
		for _, cwt := range compiler.ClusterWorkflowTemplates(opts) {
			if opts.TemplateReferencing != compiler.TemplateReferencingStrict || strings.HasSuffix(cwt.Name, "-run") {
				want = append(want, cwt)
			}
		}
		if len(rendered) != len(want) {
			t.Errorf("values %v: %d ClusterWorkflowTemplates rendered, want %d", c.values, len(rendered), len(want))
		}
		for _, cwt := range want {
			data, _ := yaml.Marshal(cwt)
			if rendered[cwt.Name] != string(data) {
				t.Errorf("values %v: %s differs from the compiler's:\n%s", c.values, cwt.Name, firstDifference(string(data), rendered[cwt.Name]))
			}
		}
	}
}

type chartValues struct {
	AppVersion string `json:"appVersion"`
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}

// The PrometheusRule's rules fire and stay quiet as promtool's unit tests
// (testdata/alerts_test.yaml) expect, on synthetic series.
func TestAlertRules(t *testing.T) {
	var rule struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	for _, doc := range strings.Split(render(t, "--set", "metrics.prometheusRule.enabled=true", "--show-only", "templates/prometheusrule.yaml"), "\n---") {
		if err := yaml.Unmarshal([]byte(doc), &rule); err == nil && rule.Kind == "PrometheusRule" {
			break
		}
	}
	if rule.Kind != "PrometheusRule" {
		t.Fatal("no PrometheusRule rendered")
	}
	dir := t.TempDir()
	rules, err := yaml.Marshal(rule.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool := tool(t, "promtool")
	if out, err := run(t, promtool, "check", "rules", filepath.Join(dir, "rules.yaml")); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if out, err := run(t, promtool, "test", "rules", filepath.Join(dir, "alerts_test.yaml")); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
