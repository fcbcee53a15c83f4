package runstatus

import (
	"fmt"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
)

// dataSteps are the steps that move a run's data and report their progress
// (stages.Progress: N/M in MiB of what they expect to read).
var dataSteps = map[string]bool{compiler.StepDump: true, compiler.StepVerify: true, compiler.StepRestore: true}

// stepProgress is what Argo says about the progress of a step that moves
// data: of its newest attempt, a retried step's failed attempts reported
// bytes that the next one reads again.
type stepProgress struct {
	step      string
	phase     wfv1.NodePhase
	progress  wfv1.Progress
	startedAt time.Time
}

// newestAttempt is the node of a step's newest attempt: the last child of
// its retry node that exists, or the step's own node.
func newestAttempt(nodes wfv1.Nodes, step wfv1.NodeStatus) wfv1.NodeStatus {
	if step.Type != wfv1.NodeTypeRetry {
		return step
	}
	for i := len(step.Children) - 1; i >= 0; i-- {
		if n, ok := nodes[step.Children[i]]; ok {
			return n
		}
	}
	return step
}

// current is the data step the run's progress is about: the first that
// runs or waits to, else the last that started.
func (r *Run) current() (stepProgress, bool) {
	var last stepProgress
	found := false
	for _, p := range r.dataProgress {
		if p.phase == wfv1.NodeRunning || p.phase == wfv1.NodePending {
			return p, true
		}
		last, found = p, true
	}
	return last, found
}

// ProgressAt is the run's progress at time now, for status.progress and
// status.stepProgress: prevText and prev are what the status says, kept as
// they are while the step's progress has not moved, so that the time left
// is worked out only when a new figure arrives and the status does not
// change on every reconcile.
func (r *Run) ProgressAt(prevText string, prev *v1.StepProgress, now time.Time) (string, *v1.StepProgress) {
	p, ok := r.current()
	if !ok {
		return "", nil
	}
	sp := &v1.StepProgress{Step: p.step}
	n, m := int64(0), int64(0)
	if p.progress.IsValid() {
		n, m = p.progress.N(), p.progress.M()
	}
	// 0/1 is Argo's value for a step that reported nothing, and what a
	// dump without an expected size reports.
	known := m > 1 || n > 0
	if known {
		sp.BytesDone, sp.ExpectedBytes = ptr(n*mib), ptr(m*mib)
		sp.Percent = int32(min(n*100/m, 99))
	}
	succeeded := p.phase == wfv1.NodeSucceeded
	if succeeded {
		sp.Percent = 100
	}
	if r.Phase == v1.PhaseSucceeded {
		return "100%", sp
	}
	if prev != nil && prev.Step == sp.Step && prev.Percent == sp.Percent && equal(prev.BytesDone, sp.BytesDone) && equal(prev.ExpectedBytes, sp.ExpectedBytes) {
		return prevText, prev
	}
	running := p.phase == wfv1.NodeRunning
	if running && n > 0 && !p.startedAt.IsZero() && now.After(p.startedAt) {
		elapsed := now.Sub(p.startedAt)
		left := time.Duration(float64(elapsed) * float64(m-n) / float64(n)).Round(time.Second)
		sp.EstimatedCompletion = &metav1.Time{Time: now.Add(left).Truncate(time.Second)}
		return fmt.Sprintf("%s %d%% (%s), %s", p.step, sp.Percent, bytesText(n, m), timeLeft(left)), sp
	}
	switch {
	case succeeded:
		return fmt.Sprintf("%s 100%%", p.step), sp
	case !known && running:
		return p.step + " running, no expected size", sp
	case !known:
		return fmt.Sprintf("%s %s", p.step, phaseWord(p.phase)), sp
	case p.phase == wfv1.NodeFailed || p.phase == wfv1.NodeError:
		return fmt.Sprintf("%s failed at %d%% (%s)", p.step, sp.Percent, bytesText(n, m)), sp
	}
	return fmt.Sprintf("%s %d%% (%s)", p.step, sp.Percent, bytesText(n, m)), sp
}

const mib = 1 << 20

// bytesText says n of m MiB for people: 1.2GiB of 3.3GiB.
func bytesText(n, m int64) string {
	return v1.FormatSize(n*mib) + " of " + v1.FormatSize(m*mib)
}

// timeLeft says a duration left for people, to the minute: about 4m left,
// about 1h20m left, less than a minute left.
func timeLeft(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "less than a minute left"
	case d < time.Hour:
		return fmt.Sprintf("about %dm left", int(d.Round(time.Minute)/time.Minute))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("about %dh%02dm left", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

func phaseWord(p wfv1.NodePhase) string {
	switch p {
	case wfv1.NodeFailed, wfv1.NodeError:
		return "failed"
	case wfv1.NodePending:
		return "pending"
	}
	return string(p)
}

func equal(a, b *int64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
