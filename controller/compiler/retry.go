package compiler

import (
	"fmt"
	"strconv"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Which failed attempts of a step Argo tries again. Argo evaluates
// retryExpression after each failed attempt (the policy is left unset, so
// the expression alone decides, as Argo 3.5 and later do), with the attempt's
// exit code, phase and message in lastRetry.
//
//   - The step said a retry may help: it exited with ExitCodeRetry (a
//     transient storage failure, or a stop asked from outside, such as its
//     pod deleted in a node drain), unless its deadline stopped it.
//   - Something went wrong around the step and the node is in Error (the pod
//     was deleted with its node, an init or wait container failed), or the
//     pod was evicted or preempted (Failed, with the kubelet's message).
//
// except when the message says that no retry can fix it: the apiserver
// refused the pod (forbidden, not found, invalid: a missing ServiceAccount,
// Secret or quota). Any other failure, an exit 1 of the step above all,
// fails the step at once, with what it said.
const (
	// transientPattern matches what Argo and the kubelet record on a pod that
	// failed for a reason of the node's: an eviction, a preemption, a node
	// shutdown, a node that went away.
	transientPattern = `(?i)evicted|low on resource|preempt|node shutdown|deletionbytaintmanager|pod deleted`
	// permanentPattern matches the apiserver's answers that a retry cannot
	// change.
	permanentPattern = `(?i)forbidden|not found|is invalid|unauthorized`
	// deadlinePattern matches what the kubelet records on a pod it stopped
	// at its activeDeadlineSeconds: the step exits as on any stop from
	// outside, and a second attempt would stall the same way.
	deadlinePattern = `(?i)longer than the specified deadline`
)

var retryExpression = fmt.Sprintf(
	`(lastRetry.exitCode == '%d' && !(lastRetry.message matches '%s')) || ((lastRetry.status == 'Error' || lastRetry.message matches '%s') && !(lastRetry.message matches '%s'))`,
	ExitCodeRetry, deadlinePattern, transientPattern, permanentPattern)

// retryStrategy retries a step as retryExpression says, at most the retries
// parameter times, waiting 10 s, 20 s, 40 s ... up to 5 minutes between
// attempts. (A backoff maxDuration would also stop the retries of any step
// that ran longer than it, and cut the deadline of its attempts short: cap
// only bounds the wait.)
func retryStrategy() *wfv1.RetryStrategy {
	return &wfv1.RetryStrategy{
		Limit:      ptr(intstr.FromString(in(ParamRetries))),
		Expression: retryExpression,
		Backoff:    &wfv1.Backoff{Duration: "10s", Factor: ptr(intstr.FromInt32(2)), Cap: "5m"},
	}
}

// Default deadlines of the steps, in seconds: long enough for a dump of a
// few TiB at the speed the README measures, short enough that a stalled step
// fails the same day instead of holding up its schedule. An exec hook's pod
// gets its command's timeout plus hookDeadlineMargin, so that the hook
// reports its own timeout first.
const (
	defaultStreamDeadline = 6 * 3600
	defaultRotateDeadline = 30 * 60
	hookDeadlineMargin    = 120
)

// defaultDeadlines are the deadline parameter's defaults of the stage
// templates, by template.
var defaultDeadlines = map[string]int32{
	EntryDump:     defaultStreamDeadline,
	EntryVerify:   defaultStreamDeadline,
	EntryRestore:  defaultStreamDeadline,
	EntryRotate:   defaultRotateDeadline,
	EntryExecHook: defaultHookTimeout + hookDeadlineMargin,
}

// deadline is the deadline argument of a step: the spec's, or the step's
// default.
func deadline(entry string, set *int32) string {
	if set != nil {
		return strconv.Itoa(int(*set))
	}
	return strconv.Itoa(int(defaultDeadlines[entry]))
}
