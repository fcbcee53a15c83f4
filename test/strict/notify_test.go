package strict_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages/notify"
	"github.com/backflow-dev/backflow/test/argotest"
)

// argOf is the value of a --name= argument of a pod's main container.
func argOf(pod *corev1.Pod, name string) string {
	for _, a := range mainContainer(*pod).Args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// In Strict mode the run template's running hook and exit handler send the
// notifications the Workflow's parameters switch on, with the run's outcome
// and its dump's object, from the run's own notify Secret; without targets
// they create no pod (TestStrictBackupRunsEveryStep counts them).
func TestStrictNotifications(t *testing.T) {
	t.Parallel()
	ns := stack.NewNamespace(t, minio)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "notify"}, StringData: map[string]string{"url": "http://10.0.0.1/hook?token=strict-token"}}
	if err := stack.Client.Create(context.Background(), secret); err != nil {
		t.Fatal(err)
	}
	s := spec()
	s.Notify = []v1.NotifyTarget{
		{Name: "ops", On: []v1.NotifyEvent{v1.NotifyStarted, v1.NotifySucceeded}, Webhook: &v1.WebhookNotify{URLSecretRef: v1.SecretKeySelector{Name: "notify", Key: "url"}}},
	}
	stack.Driver.Set("notified", "hooks.running", argotest.Outcome{Hold: true})
	stack.Driver.Set("notified", "onExit", argotest.Outcome{Hold: true})
	createBackup(t, ns, "notified", s)
	started := stack.StepPod(t, ns, "notified", "hooks.running")
	if argOf(started, "event") != notify.EventStarted || argOf(started, "kind") != "Backup" || argOf(started, "name") != "notified" {
		t.Errorf("running hook args %v", mainContainer(*started).Args)
	}
	report, _ := json.Marshal([]notify.Delivery{{Target: "ops", Type: notify.TypeWebhook, Event: "Started", Delivered: true, Attempts: 1}})
	stack.Driver.Set("notified", "hooks.running", argotest.Outcome{Outputs: map[string]string{compiler.OutputNotifications: string(report)}})
	exit := stack.StepPod(t, ns, "notified", "onExit")
	dump := argotest.StepOutputs(ns, "notified", compiler.StepDump)
	if argOf(exit, "event") != "Succeeded" || argOf(exit, "key") != dump[compiler.OutputKey] || argOf(exit, "checksum") != dump[compiler.OutputChecksum] ||
		!strings.Contains(argOf(exit, "targets"), `"name":"ops"`) || argOf(exit, "secret-file") == "" {
		t.Errorf("exit handler args %v", mainContainer(*exit).Args)
	}
	wf := stack.Workflow(t, ns, "notified")
	for _, v := range exit.Spec.Volumes {
		if v.Name == "notify-secret" && (v.Secret == nil || v.Secret.SecretName != "backflow-notify-"+string(wf.UID)) {
			t.Errorf("the notify step mounts Secret %s", v.Secret.SecretName)
		}
	}
	data, _ := json.Marshal(wf)
	if strings.Contains(string(data), "strict-token") {
		t.Error("the Workflow holds the URL's token")
	}
	report, _ = json.Marshal([]notify.Delivery{{Target: "ops", Type: notify.TypeWebhook, Event: "Succeeded", Delivered: true, Attempts: 2}})
	stack.Driver.Set("notified", "onExit", argotest.Outcome{Outputs: map[string]string{compiler.OutputNotifications: string(report)}})
	b, _ := finished(t, ns, "notified")
	if b.Status.Phase != v1.PhaseSucceeded || len(b.Status.Notifications) != 2 || !b.Status.Notifications[1].Delivered || b.Status.Notifications[1].Attempts != 2 {
		t.Errorf("Backup %s %q, notifications %+v", b.Status.Phase, b.Status.Message, b.Status.Notifications)
	}
}
