package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/metrics"
	"github.com/backflow-dev/backflow/controller/notifyref"
	"github.com/backflow-dev/backflow/stages/notify"
	"github.com/backflow-dev/backflow/test/argotest"
)

// The URLs of the tests' targets, with the tokens that must stay in their
// Secrets.
const (
	webhookURL = "http://10.0.0.1:8080/hook?token=webhook-token-1"
	pingURL    = "http://10.0.0.1:8080/ping/hc-token-2"
	signingKey = "signing-key-3"
)

func notifyTargets() []v1.NotifyTarget {
	ref := func(key string) *v1.SecretKeySelector { return &v1.SecretKeySelector{Name: "notify", Key: key} }
	return []v1.NotifyTarget{
		{Name: "ops", On: []v1.NotifyEvent{v1.NotifyFailed, v1.NotifySucceeded}, Webhook: &v1.WebhookNotify{URLSecretRef: *ref("url"), SigningKeySecretRef: ref("key")}},
		{Name: "hc", On: []v1.NotifyEvent{v1.NotifyStarted, v1.NotifySucceeded, v1.NotifyFailed}, DeadMansSwitch: &v1.DeadMansSwitchNotify{
			StartURLSecretRef: ref("ping"), SuccessURLSecretRef: ref("ping"), FailURLSecretRef: ref("ping"),
		}},
	}
}

func createNotifySecret(t *testing.T, ns string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notify"}, StringData: map[string]string{"url": webhookURL, "ping": pingURL, "key": signingKey}}
	if err := stack.Client.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// hold keeps the pods of a step running, for a test to read them.
func hold(wf, step string) { stack.Driver.Set(wf, step, argotest.Outcome{Hold: true}) }

// flag is the value of a --name= argument of a pod's main container.
func flag(pod *corev1.Pod, name string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name != "main" {
			continue
		}
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				return v
			}
		}
	}
	return ""
}

func report(deliveries ...notify.Delivery) map[string]string {
	data, _ := json.Marshal(deliveries)
	return map[string]string{compiler.OutputNotifications: string(data)}
}

// A Backup with notify targets: the controller writes their URLs into the
// run's notify Secret (and nowhere in the Workflow), Argo runs the running
// hook and the exit handler with the run's outcome and its dump's object,
// and a delivery the step reports as failed becomes one Warning Event and
// one count of the metric, however often the Backup is reconciled, while
// the Backup still succeeds. The Secret goes when the run ends.
func TestNotificationsOfABackup(t *testing.T) {
	ns := newNamespace(t)
	createNotifySecret(t, ns)
	failures := metrics.NotificationFailuresTotal.WithLabelValues(ns, "Backup", notify.TypeWebhook)
	before := testutil.ToFloat64(failures)
	spec := backupSpec()
	spec.Notify = notifyTargets()
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notified"}, Spec: spec}
	hold("notified", "hooks.running")
	hold("notified", "onExit")
	if err := stack.Client.Create(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	started := stack.StepPod(t, ns, "notified", "hooks.running")
	if flag(started, "event") != notify.EventStarted || flag(started, "kind") != "Backup" || flag(started, "name") != "notified" {
		t.Errorf("running hook args %v", started.Spec.Containers)
	}
	wf := stack.Workflow(t, ns, "notified")
	var secret corev1.Secret
	argotest.WaitFor(t, "the notify Secret", 30*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: notifyref.SecretName(wf.UID)}, &secret)
		return err == nil, fmt.Sprint(err)
	})
	var secrets notify.Secrets
	if err := json.Unmarshal(secret.Data[notify.SecretKey], &secrets); err != nil {
		t.Fatal(err)
	}
	if secrets["ops"].URL != webhookURL || secrets["ops"].SigningKey != signingKey || secrets["hc"].StartURL != pingURL || secrets["hc"].FailURL != pingURL {
		t.Errorf("notify Secret %+v", secrets)
	}
	if len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != wf.UID {
		t.Errorf("notify Secret owners %+v", secret.OwnerReferences)
	}
	if vol := started.Spec.Volumes; !slices.ContainsFunc(vol, func(v corev1.Volume) bool { return v.Secret != nil && v.Secret.SecretName == secret.Name }) {
		t.Errorf("the notify step does not mount %s: %+v", secret.Name, vol)
	}
	data, _ := json.Marshal(wf)
	for _, s := range []string{"webhook-token-1", "hc-token-2", signingKey} {
		if strings.Contains(string(data), s) {
			t.Errorf("the Workflow holds %s", s)
		}
	}
	stack.Driver.Set("notified", "hooks.running", argotest.Outcome{Outputs: report(notify.Delivery{Target: "hc", Type: notify.TypeDeadMansSwitch, Event: "Started", Delivered: true, Attempts: 1})})

	exit := stack.StepPod(t, ns, "notified", "onExit")
	dump := argotest.StepOutputs(ns, "notified", compiler.StepDump)
	if flag(exit, "event") != "Succeeded" || flag(exit, "key") != dump[compiler.OutputKey] || flag(exit, "size") != dump[compiler.OutputSize] || flag(exit, "checksum") != dump[compiler.OutputChecksum] {
		t.Errorf("exit handler args %v", exit.Spec.Containers[1].Args)
	}
	if flag(exit, "duration") == "" || strings.Contains(flag(exit, "duration"), "{{") {
		t.Errorf("duration %q", flag(exit, "duration"))
	}
	stack.Driver.Set("notified", "onExit", argotest.Outcome{Outputs: report(
		notify.Delivery{Target: "ops", Type: notify.TypeWebhook, Event: "Succeeded", Attempts: 5, Error: "POST 10.0.0.1:8080: connection refused"},
		notify.Delivery{Target: "hc", Type: notify.TypeDeadMansSwitch, Event: "Succeeded", Delivered: true, Attempts: 1},
	)})
	b = waitForPhase(t, ns, "notified", v1.PhaseSucceeded)
	argotest.WaitFor(t, "the notifications in the status", 30*time.Second, func() (bool, string) {
		b = getBackup(t, ns, "notified")
		return len(b.Status.Notifications) == 3, fmt.Sprintf("%+v", b.Status.Notifications)
	})
	if n := b.Status.Notifications[0]; n.Event != v1.NotifyStarted || !n.Delivered {
		t.Errorf("first notification %+v", n)
	}
	if n := b.Status.Notifications[1]; n.Target != "ops" || n.Delivered || n.Attempts != 5 {
		t.Errorf("webhook notification %+v", n)
	}
	argotest.WaitFor(t, "the NotificationFailed Event", 10*time.Second, func() (bool, string) {
		e, ok := stack.Events(t, ns, "notified")[string(v1.EventNotificationFailed)]
		return ok && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "Succeeded to ops (webhook)") && strings.Contains(e.Message, "connection refused"), e.Message
	})
	// More reconciles report nothing again.
	for i := range 3 {
		patch := client.MergeFrom(b.DeepCopy())
		b.Annotations = map[string]string{"test/poke": fmt.Sprint(i)}
		if err := stack.Client.Patch(context.Background(), b, patch); err != nil {
			t.Fatal(err)
		}
		b = getBackup(t, ns, "notified")
	}
	argotest.WaitFor(t, "the notify Secret to go", 30*time.Second, func() (bool, string) {
		err := stack.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: secret.Name}, &corev1.Secret{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if e := stack.Events(t, ns, "notified")[string(v1.EventNotificationFailed)]; e.Count > 1 || strings.Contains(e.Message, "webhook-token-1") {
		t.Errorf("Event %q counted %d", e.Message, e.Count)
	}
	if got := testutil.ToFloat64(failures) - before; got != 1 {
		t.Errorf("backflow_notification_failures_total{target_type=webhook} rose by %v, want 1", got)
	}
}

// A failed dump: the exit handler is told Failed, with no object, and a
// notify step that itself fails (its pod could not run) leaves the
// Backup's outcome alone: Failed here, and Succeeded below.
func TestNotificationsOfAFailedBackupAndAFailedNotifyStep(t *testing.T) {
	ns := newNamespace(t)
	createNotifySecret(t, ns)
	spec := backupSpec()
	spec.Notify = notifyTargets()[:1]
	stack.Driver.Set("broken", compiler.StepDump, argotest.Outcome{Fail: true, Message: "pg_dump: connection refused"})
	hold("broken", "onExit")
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	exit := stack.StepPod(t, ns, "broken", "onExit")
	if flag(exit, "event") != "Failed" || flag(exit, "key") != "" || !strings.Contains(flag(exit, "failures"), "dump") {
		t.Errorf("exit handler args %v", exit.Spec.Containers[1].Args)
	}
	stack.Driver.Set("broken", "onExit", argotest.Outcome{Outputs: report(notify.Delivery{Target: "ops", Type: notify.TypeWebhook, Event: "Failed", Delivered: true, Attempts: 1})})
	b := waitForPhase(t, ns, "broken", v1.PhaseFailed)
	if b.Status.Message == "" || !strings.Contains(b.Status.Message, "dump") {
		t.Errorf("message %q", b.Status.Message)
	}

	stack.Driver.Set("quiet", "onExit", argotest.Outcome{Fail: true, Message: "ImagePullBackOff"})
	if err := stack.Client.Create(context.Background(), &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quiet"}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	b = waitForPhase(t, ns, "quiet", v1.PhaseSucceeded)
	argotest.WaitFor(t, "the failed notify step in the status", 30*time.Second, func() (bool, string) {
		b = getBackup(t, ns, "quiet")
		return len(b.Status.Notifications) == 1 && b.Status.Notifications[0].Type == "notify-step" && b.Status.Notifications[0].Event == v1.NotifySucceeded, fmt.Sprintf("%+v", b.Status.Notifications)
	})
	if wf := stack.Workflow(t, ns, "quiet"); wf.Status.Phase != "Failed" {
		t.Errorf("the Workflow is %s: Argo fails a Workflow whose exit handler failed", wf.Status.Phase)
	}
}
