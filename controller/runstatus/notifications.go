package runstatus

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/stages/notify"
)

// StepFailedTarget and StepFailedType name the notification status of a
// notify step that failed without a report (its pod could not run): every
// notification it was to send is lost.
const (
	StepFailedTarget = "*"
	StepFailedType   = "notify-step"
)

// isNotifyNode says whether a node is a pod of the notify stage: the
// stage template an inline Workflow's hooks reference, or the run
// template's copy of it.
func isNotifyNode(n wfv1.NodeStatus) bool {
	if n.Type != wfv1.NodeTypePod {
		return false
	}
	if n.TemplateRef != nil {
		return n.TemplateRef.Name == compiler.TemplateNotify && n.TemplateRef.Template == compiler.EntryNotify
	}
	return n.TemplateName == "step-"+compiler.StepNotify
}

// rootNode is the Workflow's entrypoint node: the run's DAG.
func rootNode(wf *wfv1.Workflow) (wfv1.NodeStatus, bool) {
	for _, n := range wf.Status.Nodes {
		if n.Name == wf.Name {
			return n, true
		}
	}
	return wfv1.NodeStatus{}, false
}

// dagSucceeded says whether the run's DAG succeeded, whatever its exit
// handler did.
func dagSucceeded(wf *wfv1.Workflow) bool {
	n, ok := rootNode(wf)
	return ok && n.Phase == wfv1.NodeSucceeded
}

// notificationsOf reads the reports of a Workflow's finished notify steps,
// the running hook's (Started) first; nil when it has none.
func notificationsOf(wf *wfv1.Workflow, results map[string]*wfv1.Outputs) []v1.NotificationStatus {
	var nodes []wfv1.NodeStatus
	for _, n := range wf.Status.Nodes {
		if isNotifyNode(n) && n.Fulfilled() {
			nodes = append(nodes, n)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].StartedAt.Before(&nodes[j].StartedAt) })
	var out []v1.NotificationStatus
	for _, n := range nodes {
		outputs := n.Outputs
		if outputs == nil || len(outputs.Parameters) == 0 {
			outputs = results[n.ID]
		}
		report := ""
		if outputs != nil {
			for _, p := range outputs.Parameters {
				if p.Name == compiler.OutputNotifications && p.Value != nil {
					report = p.Value.String()
				}
			}
		}
		var deliveries []notify.Delivery
		if report == "" || json.Unmarshal([]byte(report), &deliveries) != nil {
			if !n.FailedOrError() {
				continue // succeeded with nothing to send
			}
			event := string(v1.NotifyFailed)
			switch {
			case strings.Contains(n.Name, ".hooks.running"):
				event = string(v1.NotifyStarted)
			case dagSucceeded(wf):
				event = string(v1.NotifySucceeded)
			}
			out = append(out, v1.NotificationStatus{
				Target: StepFailedTarget, Type: StepFailedType, Event: v1.NotifyEvent(event),
				Message: "the notify step failed: " + n.Message, Time: ptr(n.FinishedAt),
			})
			continue
		}
		for _, d := range deliveries {
			st := v1.NotificationStatus{
				Target: d.Target, Type: d.Type, Event: v1.NotifyEvent(d.Event), Delivered: d.Delivered,
				Attempts: int32(d.Attempts), Message: d.Error,
			}
			if at, err := time.Parse(time.RFC3339, d.Time); err == nil {
				st.Time = &metav1.Time{Time: at}
			}
			out = append(out, st)
		}
	}
	if len(out) > maxNotifications {
		out = out[:maxNotifications]
	}
	return out
}

// maxNotifications is the status' bound (its CRD's maxItems).
const maxNotifications = 24

// NewlyFailed are the notifications of now that failed and were not in
// before: those to report, once each.
func NewlyFailed(before, now []v1.NotificationStatus) []v1.NotificationStatus {
	seen := map[[2]string]bool{}
	for _, n := range before {
		seen[[2]string{string(n.Event), n.Target}] = true
	}
	var out []v1.NotificationStatus
	for _, n := range now {
		if !n.Delivered && !seen[[2]string{string(n.Event), n.Target}] {
			out = append(out, n)
		}
	}
	return out
}

// ReportNotifications records a Warning Event and counts the metric for
// each notification that failed since the status said before: the status
// is the record of what was reported, so a reconcile that finds nothing new
// reports nothing. No message holds a URL: the notify step leaves them out.
func ReportNotifications(rec record.EventRecorder, obj runtime.Object, namespace, kind string, before, now []v1.NotificationStatus) {
	for _, n := range NewlyFailed(before, now) {
		metrics.NotificationFailuresTotal.WithLabelValues(namespace, kind, n.Type).Inc()
		msg := fmt.Sprintf("Notification %s to %s (%s) was not delivered", n.Event, n.Target, n.Type)
		if n.Attempts > 0 {
			msg += fmt.Sprintf(" after %d attempts", n.Attempts)
		}
		if n.Message != "" {
			msg += ": " + n.Message
		}
		if len(msg) > maxEventMessage {
			msg = msg[:maxEventMessage]
		}
		rec.Event(obj, corev1.EventTypeWarning, string(v1.EventNotificationFailed), msg)
	}
}

// maxEventMessage bounds an Event's message (events.k8s.io refuses a note
// over 1 KiB).
const maxEventMessage = 1024
