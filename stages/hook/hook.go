// Package hook runs a pre or post hook command inside a container of a
// running pod, the way `kubectl exec` does.
package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// ExecConfig says where and what to run.
type ExecConfig struct {
	Namespace string
	// PodName or Selector (a label selector) choose the pod; with a selector,
	// the first running and ready pod by name.
	PodName  string
	Selector string
	// Container of the pod; empty for its first container.
	Container string
	Command   []string
	Timeout   time.Duration
	Stdout    io.Writer
	Stderr    io.Writer
}

// Exec runs the command in the pod and fails when it exits non-zero or runs
// past the timeout.
func Exec(ctx context.Context, cfg *rest.Config, ec ExecConfig) error {
	if len(ec.Command) == 0 {
		return errors.New("no hook command")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if ec.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ec.Timeout)
		defer cancel()
	}
	pod, err := choosePod(ctx, client, ec)
	if err != nil {
		return err
	}
	container := ec.Container
	if container == "" {
		container = pod.Spec.Containers[0].Name
	}
	req := client.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).
		SubResource("exec").VersionedParams(&corev1.PodExecOptions{
		Container: container, Command: ec.Command, Stdout: true, Stderr: true,
	}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	err = exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: ec.Stdout, Stderr: io.MultiWriter(ec.Stderr, &stderr)})
	where := fmt.Sprintf("pod %s/%s container %s", pod.Namespace, pod.Name, container)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("hook in %s did not finish within %s", where, ec.Timeout)
	}
	if err != nil {
		msg := fmt.Sprintf("hook %q in %s failed: %v", strings.Join(ec.Command, " "), where, err)
		if tail := strings.TrimSpace(stderr.String()); tail != "" {
			if len(tail) > 500 {
				tail = tail[len(tail)-500:]
			}
			msg += ": " + tail
		}
		return errors.New(msg)
	}
	return nil
}

func choosePod(ctx context.Context, client kubernetes.Interface, ec ExecConfig) (*corev1.Pod, error) {
	if ec.PodName != "" {
		pod, err := client.CoreV1().Pods(ec.Namespace).Get(ctx, ec.PodName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("hook pod: %w", err)
		}
		if pod.Status.Phase != corev1.PodRunning {
			return nil, fmt.Errorf("hook pod %s/%s is %s, not Running", ec.Namespace, ec.PodName, pod.Status.Phase)
		}
		return pod, nil
	}
	list, err := client.CoreV1().Pods(ec.Namespace).List(ctx, metav1.ListOptions{LabelSelector: ec.Selector})
	if err != nil {
		return nil, fmt.Errorf("listing hook pods: %w", err)
	}
	pods := list.Items
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	for i := range pods {
		if pods[i].Status.Phase == corev1.PodRunning && pods[i].DeletionTimestamp == nil && ready(&pods[i]) {
			return &pods[i], nil
		}
	}
	return nil, fmt.Errorf("no running and ready pod in %s matches %q for the hook", ec.Namespace, ec.Selector)
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
