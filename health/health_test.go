package health

import (
	"bytes"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/argoproj/gitops-engine/pkg/health"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Override runs a kind's script in gitops-engine's GetResourceHealth, the way
// Argo CD plugs its Lua checks in.
type Override struct {
	Scripts map[string]string
	Mode    Mode
}

// GetResourceHealth implements gitops-engine's health.HealthOverride.
func (o Override) GetResourceHealth(obj *unstructured.Unstructured) (*health.HealthStatus, error) {
	script, ok := o.Scripts[obj.GetKind()]
	if !ok || obj.GroupVersionKind().Group != Group {
		return nil, nil
	}
	st, err := Evaluate(script, obj, o.Mode)
	if err != nil {
		return nil, err
	}
	return &health.HealthStatus{Status: health.HealthStatusCode(st.Status), Message: st.Message}, nil
}

// testFile is Argo CD's health_test.yaml format.
type testFile struct {
	Tests []struct {
		HealthStatus health.HealthStatus `json:"healthStatus"`
		InputPath    string              `json:"inputPath"`
	} `json:"tests"`
}

func loadObject(t *testing.T, fsys fs.FS, file string) *unstructured.Unstructured {
	t.Helper()
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &obj.Object); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return obj
}

// Every script passes its health_test.yaml in both library modes, and
// through gitops-engine's GetResourceHealth.
func TestHealthChecks(t *testing.T) {
	scripts, err := Scripts()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Backup", "BackupSchedule", "BackupStorage", "Restore"} {
		if _, ok := scripts[kind]; !ok {
			t.Errorf("no health check for %s", kind)
		}
	}
	for kind, script := range scripts {
		dir := path.Join(Group, kind)
		data, err := fs.ReadFile(FS(), path.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		var tests testFile
		if err := yaml.UnmarshalStrict(data, &tests); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if len(tests.Tests) < 4 {
			t.Errorf("%s: only %d tests", kind, len(tests.Tests))
		}
		statuses := map[health.HealthStatusCode]bool{}
		for _, tc := range tests.Tests {
			obj := loadObject(t, FS(), path.Join(dir, tc.InputPath))
			statuses[tc.HealthStatus.Status] = true
			for _, mode := range []Mode{OpenLibs, SafeLibs} {
				got, err := Evaluate(script, obj, mode)
				if err != nil {
					t.Errorf("%s %s (%s): %v", kind, tc.InputPath, mode, err)
					continue
				}
				if got.Status != string(tc.HealthStatus.Status) || got.Message != tc.HealthStatus.Message {
					t.Errorf("%s %s (%s): got %+v, want %+v", kind, tc.InputPath, mode, *got, tc.HealthStatus)
				}
				viaEngine, err := health.GetResourceHealth(obj, Override{Scripts: scripts, Mode: mode})
				if err != nil || viaEngine == nil || *viaEngine != tc.HealthStatus {
					t.Errorf("%s %s through GetResourceHealth (%s): %+v, %v", kind, tc.InputPath, mode, viaEngine, err)
				}
			}
		}
		for _, want := range []health.HealthStatusCode{health.HealthStatusHealthy, health.HealthStatusProgressing, health.HealthStatusDegraded} {
			if !statuses[want] {
				t.Errorf("%s: no test expects %s", kind, want)
			}
		}
	}
}

// The harness itself must catch what Argo CD would: a script error, an
// invalid status code, a runaway script, and libraries that are not there
// without useOpenLibs.
func TestEvaluateCatchesBrokenScripts(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "backflow.dev/v1alpha1", "kind": "Backup", "metadata": map[string]any{"name": "x"}}}
	cases := map[string]struct {
		script string
		mode   Mode
	}{
		"lua error":            {`error("boom")`, OpenLibs},
		"invalid status":       {`return {status = "Fine", message = "x"}`, OpenLibs},
		"no table":             {`return "Healthy"`, OpenLibs},
		"string without libs":  {`return {status = string.upper("healthy")}`, SafeLibs},
		"runs forever":         {`while true do end`, OpenLibs},
		"os.exit is not there": {`os.exit(1)`, SafeLibs},
	}
	for name, tc := range cases {
		if _, err := Evaluate(tc.script, obj, tc.mode); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := health.GetResourceHealth(obj, Override{Scripts: map[string]string{"Backup": tc.script}, Mode: tc.mode}); err == nil {
			t.Errorf("%s: GetResourceHealth reported no error", name)
		}
	}
	if got, err := Evaluate(`return {status = string.upper("healthy"):sub(1,1) .. "ealthy"}`, obj, OpenLibs); err != nil || got.Status != Healthy {
		t.Errorf("open libraries must offer string: %+v %v", got, err)
	}
}

// The Restore script is a generated copy of the Backup script.
func TestRestoreScriptIsTheBackupScript(t *testing.T) {
	scripts, _ := Scripts()
	if scripts["Restore"] != scripts["Backup"] {
		t.Error("health/backflow.dev/Restore/health.lua differs from Backup's: run make generate")
	}
}

// health/argocd-cm.yaml, the snippet the README and the chart point to, is
// generated from the scripts.
func TestArgoCDConfigIsCurrent(t *testing.T) {
	want, err := ArgoCDConfigMap("argocd")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("argocd-cm.yaml"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("health/argocd-cm.yaml is stale: run make generate (%v)", err)
	}
}
