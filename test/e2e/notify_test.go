//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/notify"
	"github.com/backflow-dev/backflow/test/clusterkit"
)

const nsNotify = "e2e-notify"

// received is a request the receiver recorded.
type received struct {
	Method string              `json:"method"`
	URI    string              `json:"uri"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
}

func (r received) header(name string) string {
	if v := r.Header[http.CanonicalHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// receiverPod runs test/cluster/receiver and returns its IP: there is no
// cluster DNS, the steps reach it by IP, and so does the test, from the
// node.
func receiverPod(t *testing.T, ns string) string {
	t.Helper()
	st.Kubectl(t, "", "delete", "pod", "receiver", "-n", ns, "--ignore-not-found", "--wait=true")
	st.Apply(t, ns, fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: receiver}
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: receiver
    image: %s
    imagePullPolicy: Never
    ports: [{containerPort: 8080}]
`, st.Env["BACKFLOW_CLUSTER_IMAGE_RECEIVER"]))
	st.Kubectl(t, "", "wait", "-n", ns, "--for=condition=Ready", "pod/receiver", "--timeout=60s")
	var pod corev1.Pod
	if err := st.Kube.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "receiver"}, &pod); err != nil {
		t.Fatal(err)
	}
	return pod.Status.PodIP
}

func receivedBy(t *testing.T, ip string) []received {
	t.Helper()
	resp, err := http.Get("http://" + ip + ":8080/requests")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []received
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// notificationFailures reads backflow_notification_failures_total of a
// namespace's Backups' webhook targets off the controller's metrics
// endpoint.
func notificationFailures(t *testing.T, ns string) float64 {
	t.Helper()
	var pods corev1.PodList
	if err := st.Kube.List(context.Background(), &pods, client.InNamespace("backflow-system")); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Spec.Containers {
			for _, port := range c.Ports {
				if port.Name != "metrics" || p.Status.Phase != corev1.PodRunning {
					continue
				}
				resp, err := http.Get(fmt.Sprintf("http://%s:%d/metrics", p.Status.PodIP, port.ContainerPort))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				want := fmt.Sprintf(`backflow_notification_failures_total{kind="Backup",namespace="%s",target_type="webhook"} `, ns)
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() {
					if v, ok := strings.CutPrefix(sc.Text(), want); ok {
						n, _ := strconv.ParseFloat(v, 64)
						return n
					}
				}
				return 0
			}
		}
	}
	t.Fatal("no controller pod with a metrics port in backflow-system")
	return 0
}

// Two Backups notify a real HTTP receiver in a pod: one that succeeds
// (signed webhook, Slack, dead man's switch start and success pings, and a
// webhook on a port nothing listens on) and one whose dump fails (webhook,
// Slack, start and fail pings). The signature checks with the key, each
// payload names its run, the undeliverable target gives one Warning Event
// and one count of the metric while its Backup still succeeds, and the
// URLs' token is nowhere Argo stores things (the suite's secret scan, which
// reads this namespace's Secrets, searches for the URLs and the bare token).
func TestNotifications(t *testing.T) {
	t.Parallel()
	ns := nsNotify
	st.Namespace(t, ns, bucket)
	ip := receiverPod(t, ns)
	const token, key = "notify-e2e-token-7f3a9c", "notify-e2e-signing-key-51d2"
	base := "http://" + ip + ":8080"
	before := notificationFailures(t, ns)
	st.Apply(t, ns, st.StorageManifest(ns, bucket)+fmt.Sprintf(`
---
apiVersion: v1
kind: Secret
metadata: {name: notify}
stringData:
  token: %[2]s
  webhook-url: %[1]s/hook/%[2]s?token=%[2]s
  signing-key: %[3]s
  slack-url: %[1]s/services/T000/B000/%[2]s
  hc-start-url: %[1]s/hc/%[2]s/start
  hc-url: %[1]s/hc/%[2]s
  hc-fail-url: %[1]s/hc/%[2]s/fail
  unreachable-url: http://%[4]s:9/hook/%[2]s
`, base, token, key, ip))
	targets := `
  notify:
    - name: ops
      events: [Succeeded, Failed]
      webhook:
        urlSecretRef: {name: notify, key: webhook-url}
        signingKeySecretRef: {name: notify, key: signing-key}
    - name: chat
      events: [Succeeded, Failed]
      slack:
        urlSecretRef: {name: notify, key: slack-url}
    - name: hc
      events: [Started, Succeeded, Failed]
      deadMansSwitch:
        startURLSecretRef: {name: notify, key: hc-start-url}
        successURLSecretRef: {name: notify, key: hc-url}
        failURLSecretRef: {name: notify, key: hc-fail-url}
`
	st.Apply(t, ns, fmt.Sprintf(`
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: notified}
spec:
  source:
    command:
      image: %[1]s
      command: [date, --iso-8601=ns]
  storage: {name: minio}
%[2]s    - name: nowhere
      events: [Succeeded]
      webhook:
        urlSecretRef: {name: notify, key: unreachable-url}
---
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: notified-broken}
spec:
  source:
    command:
      image: %[1]s
      command: [bash, -c, 'echo "connection lost" >&2; exit 3']
  storage: {name: minio}
%[2]s`, st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"], targets))

	ok := &v1.Backup{}
	ok.Namespace, ok.Name = ns, "notified"
	broken := &v1.Backup{}
	broken.Namespace, broken.Name = ns, "notified-broken"
	clusterkit.WaitForPhase(t, st, ok, v1.PhaseSucceeded, 4*time.Minute)
	clusterkit.WaitForPhase(t, st, broken, v1.PhaseFailed, 4*time.Minute)
	// The status gets the exit handler's report once the Workflow ends.
	clusterkit.WaitForPhase(t, st, ok, v1.PhaseSucceeded, time.Minute)
	for _, b := range []*v1.Backup{ok, broken} {
		if err := st.Kube.Get(context.Background(), client.ObjectKeyFromObject(b), b); err != nil {
			t.Fatal(err)
		}
	}

	requests := receivedBy(t, ip)
	byPath := map[string][]received{}
	for _, r := range requests {
		path, _, _ := strings.Cut(r.URI, "?")
		byPath[strings.ReplaceAll(path, token, "TOKEN")] = append(byPath[strings.ReplaceAll(path, token, "TOKEN")], r)
	}
	payloads := map[string]notify.Payload{}
	for _, r := range byPath["/hook/TOKEN"] {
		ts, sig := r.header(notify.HeaderTimestamp), r.header(notify.HeaderSignature)
		if !notify.Verify([]byte(key), ts, []byte(r.Body), sig) {
			t.Errorf("webhook request with timestamp %q signature %q does not verify", ts, sig)
		}
		var p notify.Payload
		if err := json.Unmarshal([]byte(r.Body), &p); err != nil {
			t.Fatalf("webhook body %s: %v", r.Body, err)
		}
		payloads[p.Name] = p
		var headers []string
		for _, h := range []string{"Content-Type", "User-Agent", notify.HeaderEvent, notify.HeaderDelivery, notify.HeaderTimestamp, notify.HeaderSignature} {
			headers = append(headers, h+": "+r.header(h))
		}
		t.Logf("webhook %s %s\n%s\n\n%s", r.Method, strings.ReplaceAll(r.URI, token, "TOKEN"), strings.Join(headers, "\n"), r.Body)
	}
	if p := payloads["notified"]; p.Event != "Succeeded" || p.Kind != "Backup" || p.Namespace != ns || ok.Status.Location == nil ||
		p.Key != ok.Status.Location.Key || p.Size == nil || ok.Status.Size == nil || *p.Size != *ok.Status.Size || p.Checksum != ok.Status.Checksum || p.DurationSeconds == nil {
		t.Errorf("payload of the succeeded Backup %+v, status %+v", p, ok.Status)
	}
	if p := payloads["notified-broken"]; p.Event != "Failed" || p.FailedStep != "dump" || p.Message == "" || p.Key != "" {
		t.Errorf("payload of the failed Backup %+v", p)
	}
	slack := byPath["/services/T000/B000/TOKEN"]
	if len(slack) != 2 {
		t.Errorf("Slack got %d messages, want 2", len(slack))
	}
	for _, r := range slack {
		var m struct {
			Text   string            `json:"text"`
			Blocks []json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal([]byte(r.Body), &m); err != nil || m.Text == "" || len(m.Blocks) == 0 {
			t.Errorf("Slack message %s (%v)", r.Body, err)
		}
		t.Logf("slack %s", r.Body)
	}
	for path, want := range map[string]int{"/hc/TOKEN/start": 2, "/hc/TOKEN": 1, "/hc/TOKEN/fail": 1} {
		if got := len(byPath[path]); got != want {
			t.Errorf("%s pinged %d times, want %d", path, got, want)
		}
		for _, r := range byPath[path] {
			t.Logf("ping %s %s: %s", r.Method, path, r.Body)
		}
	}

	var undelivered []v1.NotificationStatus
	for _, n := range ok.Status.Notifications {
		if !n.Delivered {
			undelivered = append(undelivered, n)
		}
	}
	if len(undelivered) != 1 || undelivered[0].Target != "nowhere" || undelivered[0].Attempts != int32(notify.MaxAttempts) || strings.Contains(undelivered[0].Message, token) {
		t.Errorf("notifications %+v", ok.Status.Notifications)
	}
	// This Backup's Events, not those of an earlier run's of the same name.
	var events corev1.EventList
	if err := st.Kube.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var warned []string
	for _, e := range events.Items {
		if e.InvolvedObject.UID == ok.UID && e.Reason == string(v1.EventNotificationFailed) {
			warned = append(warned, fmt.Sprintf("%s (count %d)", e.Message, e.Count))
			if e.Type != corev1.EventTypeWarning || e.Count > 1 || strings.Contains(e.Message, token) || !strings.Contains(e.Message, "nowhere") {
				t.Errorf("Event %s %q counted %d", e.Type, e.Message, e.Count)
			}
		}
	}
	if len(warned) != 1 {
		t.Errorf("NotificationFailed Events %v, want 1", warned)
	}
	if got := notificationFailures(t, ns) - before; got != 1 {
		t.Errorf("backflow_notification_failures_total rose by %v, want 1", got)
	}
}
