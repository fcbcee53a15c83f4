package runstatus

import (
	"reflect"
	"testing"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	"github.com/backflow-dev/backflow/controller/compiler"
)

func withProgress(n wfv1.NodeStatus, p wfv1.Progress) wfv1.NodeStatus {
	n.Progress = p
	return n
}

// The status says how far the step that moves the data is, from the
// progress Argo recorded on its node (in MiB, stages.ProgressLine), with
// the time left at the pace since the step started.
func TestProgressAt(t *testing.T) {
	running := func(name string, p wfv1.Progress) wfv1.NodeStatus {
		return withProgress(pod(name+"-pod", name, wfv1.NodeRunning, nil), p)
	}
	done := func(name string, p wfv1.Progress) wfv1.NodeStatus {
		return withProgress(pod(name+"-pod", name, wfv1.NodeSucceeded, nil), p)
	}
	// pod nodes start at minute 1; now is minute 5: 4 minutes in.
	now := at(5).Time
	retry := wfv1.NodeStatus{ID: "retry", DisplayName: compiler.StepDump, Type: wfv1.NodeTypeRetry, Phase: wfv1.NodeRunning, Children: []string{"attempt-0", "attempt-1"}}
	attempt := func(id string, phase wfv1.NodePhase, p wfv1.Progress, started int) wfv1.NodeStatus {
		n := withProgress(pod(id, compiler.StepDump+"("+id[len(id)-1:]+")", phase, nil), p)
		n.StartedAt = at(started)
		return n
	}
	for _, tc := range []struct {
		name     string
		wf       *wfv1.Workflow
		text     string
		percent  int32
		done     int64 // MiB
		expected int64 // MiB
		left     time.Duration
	}{
		{"a dump a quarter through", workflow(wfv1.WorkflowRunning, running(compiler.StepDump, "250/1000")),
			"dump 25% (250.0MiB of 1000.0MiB), about 12m left", 25, 250, 1000, 12 * time.Minute},
		{"a dump past its estimate reads 99%", workflow(wfv1.WorkflowRunning, running(compiler.StepDump, "3000/3031")),
			"dump 98% (2.9GiB of 3.0GiB), less than a minute left", 98, 3000, 3031, 2 * time.Second},
		{"a dump without an expected size", workflow(wfv1.WorkflowRunning, running(compiler.StepDump, "0/1")),
			"dump running, no expected size", 0, -1, -1, 0},
		{"the verify after the dump", workflow(wfv1.WorkflowRunning, done(compiler.StepDump, "1000/1000"), running(compiler.StepVerify, "100/400")),
			"verify 25% (100.0MiB of 400.0MiB), about 12m left", 25, 100, 400, 12 * time.Minute},
		{"a retried dump counts its newest attempt", workflow(wfv1.WorkflowRunning, retry,
			attempt("attempt-0", wfv1.NodeFailed, "900/1000", 1), attempt("attempt-1", wfv1.NodeRunning, "100/1000", 3)),
			"dump 10% (100.0MiB of 1000.0MiB), about 18m left", 10, 100, 1000, 18 * time.Minute},
		{"a failed dump", workflow(wfv1.WorkflowFailed, withProgress(pod("d", compiler.StepDump, wfv1.NodeFailed, nil), "370/1000")),
			"dump failed at 37% (370.0MiB of 1000.0MiB)", 37, 370, 1000, 0},
		{"a run that succeeded", workflow(wfv1.WorkflowSucceeded, done(compiler.StepDump, "1000/1000"), done(compiler.StepVerify, "400/400")),
			"100%", 100, 400, 400, 0},
		{"nothing that moves data started yet", workflow(wfv1.WorkflowRunning, running(compiler.StepPreHook, "0/1")), "", 0, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run, err := FromWorkflow(tc.wf, BackupSteps, nil)
			if err != nil {
				t.Fatal(err)
			}
			text, sp := run.ProgressAt("", nil, now)
			if text != tc.text {
				t.Errorf("progress %q, want %q", text, tc.text)
			}
			if tc.text == "" {
				if sp != nil {
					t.Errorf("step progress %+v before any data moved", sp)
				}
				return
			}
			if sp.Percent != tc.percent {
				t.Errorf("percent %d, want %d", sp.Percent, tc.percent)
			}
			if tc.done < 0 {
				if sp.BytesDone != nil || sp.ExpectedBytes != nil {
					t.Errorf("bytes %v of %v without an expected size", sp.BytesDone, sp.ExpectedBytes)
				}
			} else if *sp.BytesDone != tc.done<<20 || *sp.ExpectedBytes != tc.expected<<20 {
				t.Errorf("bytes %d of %d, want %d MiB of %d MiB", *sp.BytesDone, *sp.ExpectedBytes, tc.done, tc.expected)
			}
			switch {
			case tc.left == 0 && sp.EstimatedCompletion != nil:
				t.Errorf("estimated completion %v, want none", sp.EstimatedCompletion)
			case tc.left != 0 && (sp.EstimatedCompletion == nil || !sp.EstimatedCompletion.Time.Equal(now.Add(tc.left).Truncate(time.Second))):
				t.Errorf("estimated completion %v, want %v", sp.EstimatedCompletion, now.Add(tc.left))
			}

			// The same figures later keep the status as it is.
			again, same := run.ProgressAt(text, sp, now.Add(time.Minute))
			if again != text || !reflect.DeepEqual(same, sp) {
				t.Errorf("a minute later with the same figures: %q %+v", again, same)
			}
		})
	}
}

func TestTimeLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second:                "less than a minute left",
		90 * time.Second:                "about 2m left",
		59 * time.Minute:                "about 59m left",
		80*time.Minute + 20*time.Second: "about 1h20m left",
		25 * time.Hour:                  "about 25h00m left",
	} {
		if got := timeLeft(d); got != want {
			t.Errorf("timeLeft(%s) = %q, want %q", d, got, want)
		}
	}
}
