//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// scannedNamespaces are the namespaces the suite's resources, Workflows and
// step pods live in, and the controller's and Argo's own.
var scannedNamespaces = []string{nsPostgreSQL, nsFailure, nsFiles, nsSchedule, nsWiki, nsMongoDB, nsAlice, nsMallory, nsProgress, nsNotify, "backflow-system", "argo"}

// podCollector keeps every pod spec and container log of the scanned
// namespaces as the suite runs: Argo deletes a step's pod once it
// succeeded (podGC OnPodSuccess), so its log is followed from the moment
// its container runs.
type podCollector struct {
	cs     *kubernetes.Clientset
	mu     sync.Mutex
	specs  map[string][]byte        // namespace/pod -> the pod as JSON
	logs   map[string]*bytes.Buffer // namespace/pod/container -> its log
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startPodCollector(kubeconfig string) (*podCollector, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &podCollector{cs: cs, specs: map[string][]byte{}, logs: map[string]*bytes.Buffer{}, cancel: cancel}
	for _, ns := range scannedNamespaces {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.watch(ctx, ns) }()
	}
	return c, nil
}

func (c *podCollector) watch(ctx context.Context, ns string) {
	for ctx.Err() == nil {
		w, err := c.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if pod, ok := ev.Object.(*corev1.Pod); ok {
				c.seen(ctx, pod)
			}
		}
		w.Stop()
	}
}

func (c *podCollector) seen(ctx context.Context, pod *corev1.Pod) {
	data, _ := json.Marshal(pod)
	key := pod.Namespace + "/" + pod.Name
	c.mu.Lock()
	c.specs[key] = data
	c.mu.Unlock()
	for _, s := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if s.State.Running == nil && s.State.Terminated == nil {
			continue
		}
		logKey := key + "/" + s.Name
		c.mu.Lock()
		_, started := c.logs[logKey]
		buf := &bytes.Buffer{}
		if !started {
			c.logs[logKey] = buf
		}
		c.mu.Unlock()
		if started {
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			stream, err := c.cs.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: s.Name, Follow: true}).Stream(ctx)
			if err != nil {
				return
			}
			defer stream.Close()
			var lines bytes.Buffer
			_, _ = io.Copy(&lines, stream)
			c.mu.Lock()
			buf.Write(lines.Bytes())
			c.mu.Unlock()
		}()
	}
}

// stop ends the watches and the log streams still open (the controller's,
// Argo's), after reading what those long-running pods logged so far.
func (c *podCollector) stop() {
	ctx := context.Background()
	for _, ns := range scannedNamespaces {
		pods, err := c.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, pod := range pods.Items {
			for _, ctr := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
				data, err := c.cs.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: ctr.Name}).DoRaw(ctx)
				if err != nil {
					continue
				}
				c.mu.Lock()
				c.logs[ns+"/"+pod.Name+"/"+ctr.Name+" (at the end)"] = bytes.NewBuffer(data)
				c.mu.Unlock()
			}
		}
	}
	c.cancel()
	c.wg.Wait()
}

// nonSecretKeys are Secret keys whose values are settings, not secrets
// (they appear in pods and logs by design). An access key ID names its key
// as a user name does (S3 logs it, and the stack's is "backflow", the
// project's name): its secret half is what must not leak.
var nonSecretKeys = []string{"host", "port", "username", "user", "database", "ca.crt", "recipients", "recipients.txt"}

func isSecretKey(key string) bool {
	k := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	return !slices.Contains(nonSecretKeys, key) && !strings.Contains(k, "access-key-id") && k != "accesskeyid"
}

// secretValues are the values the scan looks for, with where each comes
// from: every value of every Secret of the scanned namespaces (each line
// of a multi-line one, such as an age identity file, apart from comments),
// the stack's MinIO root password and database password, and the base64
// form of each. Values shorter than 8 bytes are left out: they would match
// by chance.
func secretValues(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	add := func(value, from string) {
		for _, v := range append([]string{value}, strings.Split(value, "\n")...) {
			v = strings.TrimSpace(v)
			if len(v) < 8 || strings.HasPrefix(v, "#") {
				continue
			}
			out[v] = from
			out[base64.StdEncoding.EncodeToString([]byte(v))] = from + " (base64)"
		}
	}
	for _, ns := range scannedNamespaces {
		var secrets corev1.SecretList
		if err := st.Kube.List(ctx, &secrets, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for _, s := range secrets.Items {
			if s.Type == "helm.sh/release.v1" {
				continue // the chart's values, which hold no secret
			}
			for k, v := range s.Data {
				// A service-account token Secret's namespace and ca.crt are
				// public: only its token is a secret.
				if s.Type == corev1.SecretTypeServiceAccountToken && k != corev1.ServiceAccountTokenKey {
					continue
				}
				if isSecretKey(k) {
					add(string(v), fmt.Sprintf("Secret %s/%s key %s", ns, s.Name, k))
				}
			}
		}
	}
	add(st.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"], "the stack's MinIO root password")
	add(st.Env["BACKFLOW_CLUSTER_DB_PASSWORD"], "the stack's database password")
	return out, nil
}

// scanForSecrets searches every Workflow, CronWorkflow, Event, backflow
// resource, pod spec and step log of the scanned namespaces for the
// secret values, and returns one line per hit.
func scanForSecrets(c *podCollector) ([]string, int, error) {
	ctx := context.Background()
	secrets, err := secretValues(ctx)
	if err != nil {
		return nil, 0, err
	}
	documents := map[string][]byte{}
	for _, ns := range scannedNamespaces {
		for kind, list := range map[string]client.ObjectList{
			"Workflow": &wfv1.WorkflowList{}, "CronWorkflow": &wfv1.CronWorkflowList{}, "Event": &corev1.EventList{},
			"Backup": &v1.BackupList{}, "BackupSchedule": &v1.BackupScheduleList{}, "Restore": &v1.RestoreList{},
			"Pod": &corev1.PodList{}, "ConfigMap": &corev1.ConfigMapList{},
		} {
			if err := st.Kube.List(ctx, list, client.InNamespace(ns)); err != nil {
				return nil, 0, fmt.Errorf("listing %ss in %s: %w", kind, ns, err)
			}
			data, _ := json.Marshal(list)
			documents[kind+"s of "+ns] = data
		}
	}
	c.mu.Lock()
	for k, v := range c.specs {
		documents["pod "+k+" (as it ran)"] = v
	}
	stepLogs := 0
	for k, v := range c.logs {
		documents["log of "+k] = v.Bytes()
		if strings.HasSuffix(k, "/main") && v.Len() > 0 {
			stepLogs++
		}
	}
	c.mu.Unlock()
	// A scan that saw nothing would pass: it must have read step logs and
	// have secrets to look for.
	if stepLogs == 0 || len(secrets) == 0 {
		return nil, 0, fmt.Errorf("the scan would prove nothing: %d step logs collected, %d secret values to look for", stepLogs, len(secrets))
	}
	var hits []string
	for where, data := range documents {
		for value, from := range secrets {
			if bytes.Contains(data, []byte(value)) {
				hits = append(hits, fmt.Sprintf("%s holds %s: %s", where, from, surrounding(data, value)))
			}
		}
	}
	sort.Strings(hits)
	return hits, len(documents), nil
}

// surrounding is the line around the first place value appears in data, with
// the value itself masked.
func surrounding(data []byte, value string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, value) {
			i := strings.Index(line, value)
			line = line[max(0, i-80):min(len(line), i+len(value)+80)]
			return strings.ReplaceAll(line, value, "<the secret>")
		}
	}
	return ""
}
