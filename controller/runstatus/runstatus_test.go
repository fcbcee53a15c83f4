package runstatus

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/argoproj/argo-workflows/v3/util/file"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
)

var t0 = metav1.NewTime(time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC))

func at(minutes int) metav1.Time { return metav1.NewTime(t0.Add(time.Duration(minutes) * time.Minute)) }

func outputs(params map[string]string) *wfv1.Outputs {
	out := &wfv1.Outputs{}
	for _, name := range []string{compiler.OutputKey, compiler.OutputSize} {
		if v, ok := params[name]; ok {
			out.Parameters = append(out.Parameters, wfv1.Parameter{Name: name, Value: wfv1.AnyStringPtr(v)})
		}
	}
	return out
}

var dumped = map[string]string{compiler.OutputKey: "apps/nightly/x.zst", compiler.OutputSize: "1024"}

// workflow is a backup Workflow in phase with the given nodes, by ID.
func workflow(phase wfv1.WorkflowPhase, nodes ...wfv1.NodeStatus) *wfv1.Workflow {
	wf := &wfv1.Workflow{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly"}}
	wf.Status.Phase, wf.Status.StartedAt, wf.Status.Progress = phase, t0, "1/2"
	if phase == wfv1.WorkflowSucceeded || phase == wfv1.WorkflowFailed {
		wf.Status.FinishedAt = at(10)
	}
	wf.Status.Nodes = wfv1.Nodes{"nightly": {ID: "nightly", DisplayName: "nightly", Type: wfv1.NodeTypeDAG, Phase: wfv1.NodeRunning}}
	for _, n := range nodes {
		wf.Status.Nodes[n.ID] = n
	}
	return wf
}

func pod(id, name string, phase wfv1.NodePhase, out *wfv1.Outputs) wfv1.NodeStatus {
	return wfv1.NodeStatus{ID: id, DisplayName: name, Type: wfv1.NodeTypePod, Phase: phase, StartedAt: at(1), FinishedAt: at(2), Outputs: out}
}

func TestFromWorkflow(t *testing.T) {
	retry := wfv1.NodeStatus{ID: "a-retry", DisplayName: compiler.StepDump, Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeSucceeded,
		Children: []string{"z-attempt-0", "z-attempt-1"}}
	for _, tc := range []struct {
		name    string
		wf      *wfv1.Workflow
		results []TaskResult
		phase   v1.RunPhase
		stages  map[string]string
		outputs map[string]string // of the dump step
		failed  string
		message string
		event   v1.EventReason
	}{{
		name:    "succeeded",
		wf:      workflow(wfv1.WorkflowSucceeded, pod("p1", compiler.StepDump, wfv1.NodeSucceeded, outputs(dumped)), pod("p2", compiler.StepVerify, wfv1.NodeSucceeded, nil)),
		phase:   v1.PhaseSucceeded,
		stages:  map[string]string{compiler.StepDump: "Succeeded", compiler.StepVerify: "Succeeded"},
		outputs: dumped,
	}, {
		// The retry node stands for its attempts: its phase, and the outputs
		// of the attempt that reported them.
		name: "retried",
		wf: workflow(wfv1.WorkflowSucceeded, retry,
			pod("z-attempt-0", compiler.StepDump+"(0)", wfv1.NodeFailed, nil),
			pod("z-attempt-1", compiler.StepDump+"(1)", wfv1.NodeSucceeded, nil)),
		results: []TaskResult{{NodeID: "z-attempt-0", Outputs: outputs(map[string]string{compiler.OutputKey: "apps/nightly/attempt-0.zst"})}, {NodeID: "z-attempt-1", Outputs: outputs(dumped)}},
		phase:   v1.PhaseSucceeded,
		stages:  map[string]string{compiler.StepDump: "Succeeded"},
		outputs: dumped,
	}, {
		// A pod node named like the step does not hide the retry node,
		// whichever sorts first.
		name: "retry node and pod node of the same name",
		wf: workflow(wfv1.WorkflowRunning,
			wfv1.NodeStatus{ID: "b-retry", DisplayName: compiler.StepDump, Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeRunning},
			pod("a-pod", compiler.StepDump, wfv1.NodeFailed, nil)),
		phase:  v1.PhaseRunning,
		stages: map[string]string{compiler.StepDump: "Running"},
	}, {
		name:    "outputs from the task result of the node",
		wf:      workflow(wfv1.WorkflowRunning, pod("p1", compiler.StepDump, wfv1.NodeSucceeded, nil)),
		results: []TaskResult{{NodeID: "p1", Outputs: outputs(dumped)}, {NodeID: "other", Outputs: outputs(map[string]string{compiler.OutputKey: "wrong"})}},
		phase:   v1.PhaseRunning,
		stages:  map[string]string{compiler.StepDump: "Succeeded"},
		outputs: dumped,
	}, {
		name:    "a failed step",
		wf:      workflow(wfv1.WorkflowFailed, wfv1.NodeStatus{ID: "p1", DisplayName: compiler.StepDump, Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, Message: "exit code 1"}),
		phase:   v1.PhaseFailed,
		stages:  map[string]string{compiler.StepDump: "Failed"},
		failed:  compiler.StepDump,
		message: "step dump failed: exit code 1",
		event:   v1.EventStepFailed,
	}, {
		// The message names what went wrong on the failed attempt, not what
		// the retry node says about its attempts.
		name: "a retried step that failed",
		wf: workflow(wfv1.WorkflowFailed,
			wfv1.NodeStatus{ID: "a-retry", DisplayName: compiler.StepDump, Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeFailed,
				Message: "No more retries left", Children: []string{"z-attempt-0", "z-attempt-1"}},
			wfv1.NodeStatus{ID: "z-attempt-0", DisplayName: compiler.StepDump + "(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, Message: "main: Error (exit code 75): storage unreachable"},
			wfv1.NodeStatus{ID: "z-attempt-1", DisplayName: compiler.StepDump + "(1)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeError, Message: "pod deleted"}),
		phase:   v1.PhaseFailed,
		stages:  map[string]string{compiler.StepDump: "Failed"},
		failed:  compiler.StepDump,
		message: "step dump failed: pod deleted (2 attempts)",
		event:   v1.EventStepFailed,
	}, {
		// A run template's hook is a steps node over a retry node over a pod
		// that could not be created.
		name: "a failed hook of a run template",
		wf: workflow(wfv1.WorkflowFailed,
			wfv1.NodeStatus{ID: "h", DisplayName: compiler.StepPreHook, Type: wfv1.NodeTypeSteps, Phase: wfv1.NodeFailed,
				Message: "child 'h-1' failed", Children: []string{"h-0"}},
			wfv1.NodeStatus{ID: "h-0", DisplayName: "[0]", Type: wfv1.NodeTypeStepGroup, Phase: wfv1.NodeFailed, Children: []string{"h-1", "h-3"}},
			wfv1.NodeStatus{ID: "h-1", DisplayName: "exec", Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeError,
				Message: "retryStrategy.expression evaluated to false", Children: []string{"h-2"}},
			wfv1.NodeStatus{ID: "h-2", DisplayName: "exec(0)", Type: wfv1.NodeTypePod, Phase: wfv1.NodeError,
				Message: `pods "nightly-exec-1" is forbidden: error looking up service account apps/backflow-workflow: serviceaccount "backflow-workflow" not found`},
			wfv1.NodeStatus{ID: "h-3", DisplayName: "container", Type: wfv1.NodeTypeSkipped, Phase: wfv1.NodeSkipped}),
		phase:   v1.PhaseFailed,
		stages:  map[string]string{compiler.StepPreHook: "Failed"},
		failed:  compiler.StepPreHook,
		message: `step pre-hook failed: pods "nightly-exec-1" is forbidden: error looking up service account apps/backflow-workflow: serviceaccount "backflow-workflow" not found`,
		event:   v1.EventStepFailed,
	}, {
		// A tolerated failure (a pre-hook with onError Continue, no target)
		// before the one that failed the run is not what the message names.
		name: "a tolerated failure before the failed step",
		wf: func() *wfv1.Workflow {
			wf := workflow(wfv1.WorkflowFailed, pod("p1", compiler.StepPreHook, wfv1.NodeFailed, nil),
				wfv1.NodeStatus{ID: "p2", DisplayName: compiler.StepDump, Type: wfv1.NodeTypePod, Phase: wfv1.NodeFailed, Message: "exit code 1"})
			wf.Spec.Entrypoint = "backup"
			wf.Spec.Templates = []wfv1.Template{{Name: "backup", DAG: &wfv1.DAGTemplate{Target: "dump"}}}
			return wf
		}(),
		phase:   v1.PhaseFailed,
		stages:  map[string]string{compiler.StepPreHook: "Failed", compiler.StepDump: "Failed"},
		failed:  compiler.StepDump,
		message: "step dump failed: exit code 1",
		event:   v1.EventStepFailed,
	}, {
		// A step a run template skips is not a stage; a Workflow that fails
		// by itself says so.
		name: "a Workflow failed outside its steps",
		wf: func() *wfv1.Workflow {
			wf := workflow(wfv1.WorkflowFailed, pod("p1", compiler.StepDump, wfv1.NodeSucceeded, outputs(dumped)), pod("p2", compiler.StepPreHook, wfv1.NodeSkipped, nil))
			wf.Status.Message = "Step exceeded its deadline"
			return wf
		}(),
		phase:   v1.PhaseFailed,
		stages:  map[string]string{compiler.StepDump: "Succeeded"},
		outputs: dumped,
		message: "Step exceeded its deadline",
		event:   v1.EventFailed,
	}, {
		name: "compressed nodes",
		wf: func() *wfv1.Workflow {
			wf := workflow(wfv1.WorkflowSucceeded, pod("p1", compiler.StepDump, wfv1.NodeSucceeded, outputs(dumped)))
			nodes, err := json.Marshal(wf.Status.Nodes)
			if err != nil {
				t.Fatal(err)
			}
			wf.Status.Nodes, wf.Status.CompressedNodes = nil, file.CompressEncodeString(string(nodes))
			return wf
		}(),
		phase:   v1.PhaseSucceeded,
		stages:  map[string]string{compiler.StepDump: "Succeeded"},
		outputs: dumped,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.wf.DeepCopy()
			run, err := FromWorkflow(tc.wf, BackupSteps, tc.results)
			if err != nil {
				t.Fatal(err)
			}
			if run.Phase != tc.phase || run.FailedStep != tc.failed || run.Message != tc.message {
				t.Errorf("phase %s, failed step %q, message %q", run.Phase, run.FailedStep, run.Message)
			}
			stages := map[string]string{}
			for _, s := range run.Stages {
				stages[s.Name] = s.Phase
			}
			if !maps.Equal(stages, tc.stages) {
				t.Errorf("stages %v, want %v", stages, tc.stages)
			}
			if got := run.Outputs[compiler.StepDump]; !maps.Equal(got, tc.outputs) {
				t.Errorf("dump outputs %v, want %v", got, tc.outputs)
			}
			if run.StartedAt == nil || !run.StartedAt.Equal(&t0) {
				t.Errorf("startedAt %v", run.StartedAt)
			}
			if tc.phase == v1.PhaseFailed && run.FailureEvent() != tc.event {
				t.Errorf("failure event %s, want %s", run.FailureEvent(), tc.event)
			}
			if tc.wf.Status.CompressedNodes != before.Status.CompressedNodes || len(tc.wf.Status.Nodes) != len(before.Status.Nodes) {
				t.Error("FromWorkflow changed the Workflow it read")
			}
		})
	}
}

// Stages come in the order of the steps, not of the nodes.
func TestFromWorkflowStageOrder(t *testing.T) {
	wf := workflow(wfv1.WorkflowRunning,
		pod("a", compiler.StepRotate, wfv1.NodePending, nil), pod("b", compiler.StepDump, wfv1.NodeSucceeded, nil), pod("c", compiler.StepPreHook, wfv1.NodeSucceeded, nil))
	run, err := FromWorkflow(wf, BackupSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range run.Stages {
		names = append(names, s.Name)
	}
	if got, want := strings.Join(names, ","), "pre-hook,dump,rotate"; got != want {
		t.Errorf("stages %s, want %s", got, want)
	}
	if got := run.CurrentStep(); got != compiler.StepRotate {
		t.Errorf("current step %q, want rotate", got)
	}
}

func TestFromWorkflowOffloaded(t *testing.T) {
	wf := workflow(wfv1.WorkflowRunning)
	wf.Status.Nodes, wf.Status.OffloadNodeStatusVersion = nil, "fnv:1234"
	if _, err := FromWorkflow(wf, BackupSteps, nil); err == nil || !strings.Contains(err.Error(), "nodeStatusOffLoad") {
		t.Errorf("offloaded node status: %v, want an error that says how to avoid it", err)
	}
}

func TestMirror(t *testing.T) {
	started, finished := at(0), at(10)
	for _, tc := range []struct {
		name    string
		run     *Run
		phase   v1.RunPhase
		message string
		reason  v1.ConditionReason
	}{
		{"pending", &Run{Phase: v1.PhasePending}, v1.PhasePending, "waiting for Argo to start the Workflow", v1.ReasonPending},
		{"running", &Run{Phase: v1.PhaseRunning, StartedAt: &started, Stages: []v1.StageStatus{{Name: "dump", Phase: "Running"}}}, v1.PhaseRunning, "running dump", v1.ReasonRunning},
		{"succeeded", &Run{Phase: v1.PhaseSucceeded, StartedAt: &started, CompletedAt: &finished}, v1.PhaseSucceeded, "", v1.ReasonSucceeded},
		{"failed", &Run{Phase: v1.PhaseFailed, StartedAt: &started, CompletedAt: &finished, Message: "step dump failed: x"}, v1.PhaseFailed, "step dump failed: x", v1.ReasonFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &v1.RunStatus{}
			Mirror(st, 2, "nightly", tc.run, "stored")
			if st.Phase != tc.phase || st.Message != tc.message || st.WorkflowName != "nightly" || st.ObservedGeneration != 2 {
				t.Errorf("status %+v", st)
			}
			if c := st.Conditions[0]; v1.ConditionReason(c.Reason) != tc.reason {
				t.Errorf("reason %s, want %s", c.Reason, tc.reason)
			}
			if tc.run.StartedAt != nil && !st.StartedAt.Equal(tc.run.StartedAt) || tc.run.CompletedAt != nil && !st.CompletedAt.Equal(tc.run.CompletedAt) {
				t.Errorf("times %v %v, want the Workflow's", st.StartedAt, st.CompletedAt)
			}
		})
	}
}
