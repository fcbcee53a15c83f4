// Command resync measures how long the backflow controller takes to bring
// 1,000 Backups and 300 BackupSchedules up to date after it starts, and its
// peak memory while it does. It runs the real `backflow controller` binary
// against a real kube-apiserver (envtest) holding the objects, and the
// finished Workflows the Backups mirror. Argo's own controller is not
// running: the figure is backflow's alone. Run it with `make bench-resync`.
package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/envtest"
)

const (
	backups   = 1000
	schedules = 300
	ns        = "bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-resync:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := os.Getenv("BACKFLOW_BIN")
	if bin == "" {
		return fmt.Errorf("set BACKFLOW_BIN (make bench-resync does)")
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-workflows/v3").Output()
	if err != nil {
		return err
	}
	cluster, err := envtest.Start(envtest.WithCRDs(filepath.Join(strings.TrimSpace(string(out)), "manifests", "base", "crds", "minimal")),
		envtest.WithScheme(controller.Scheme()))
	if err != nil {
		return err
	}
	defer cluster.Stop()
	c := cluster.Client
	ctx := context.Background()

	fmt.Printf("creating %d Backups with finished Workflows and %d BackupSchedules\n", backups, schedules)
	start := time.Now()
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"}, StringData: map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}},
		&v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
			Endpoint: "http://127.0.0.1:1", Bucket: "backups", ForcePathStyle: true, Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "s3"}},
		}}},
	} {
		if err := c.Create(ctx, obj); err != nil {
			return err
		}
	}
	spec := v1.BackupSpec{
		Source:  v1.BackupSource{Command: &v1.CommandSource{Image: "busybox", Command: []string{"cat", "/data"}}},
		Storage: v1.BackupStorageTarget{StorageReference: v1.StorageReference{Name: "s3"}},
	}
	for i := 0; i < backups; i++ {
		name := fmt.Sprintf("backup-%04d", i)
		b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: spec}
		if err := c.Create(ctx, b); err != nil {
			return err
		}
		if err := c.Create(ctx, finishedWorkflow(b)); err != nil {
			return err
		}
	}
	for i := 0; i < schedules; i++ {
		s := &v1.BackupSchedule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("schedule-%03d", i)}, Spec: v1.BackupScheduleSpec{
			Schedule: fmt.Sprintf("%d %d * * *", i%60, i%24), Template: v1.BackupTemplate{Spec: spec},
		}}
		if err := c.Create(ctx, s); err != nil {
			return err
		}
	}
	fmt.Printf("  created in %s\n", time.Since(start).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "backflow-resync-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig, err := cluster.WriteKubeconfig(dir, "")
	if err != nil {
		return err
	}

	// First start: every status is empty, so every object is written.
	elapsed, peak, err := runUntil(bin, kubeconfig, func(metrics string) (bool, error) {
		doneB, doneS, err := progress(ctx, c)
		return doneB == backups && doneS == schedules, err
	})
	if err != nil {
		return err
	}
	fmt.Printf("initial sync (every status written): %.1f s, controller peak RSS %d MiB\n", elapsed.Seconds(), peak/1024)
	// Restart: statuses are current; a full resync is every object
	// reconciled once more, which the controller's reconcile counters show.
	resync, resyncPeak, err := runUntil(bin, kubeconfig, func(metrics string) (bool, error) {
		return reconciled(metrics, "backup") >= backups && reconciled(metrics, "backupschedule") >= schedules, nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("full resync after a restart: %.1f s, controller peak RSS %d MiB\n", resync.Seconds(), resyncPeak/1024)
	fmt.Printf("time initial_sync_1000_300_seconds %.1f\n", elapsed.Seconds())
	fmt.Printf("time resync_1000_300_seconds %.1f\n", resync.Seconds())
	fmt.Printf("rss controller_initial_sync %d\n", peak/1024)
	fmt.Printf("rss controller_resync %d\n", resyncPeak/1024)
	return nil
}

// runUntil runs the controller until done holds, and returns how long that
// took and the controller's peak RSS in KiB.
func runUntil(bin, kubeconfig string, done func(metrics string) (bool, error)) (time.Duration, int64, error) {
	port := 18080
	cmd := exec.Command(bin, "controller", "--kubeconfig", kubeconfig, "--metrics-bind-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--health-probe-bind-address", "0", "--zap-log-level", "error")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill(); <-exited }()
	var peak int64
	for {
		if rss := highWaterMark(cmd.Process.Pid); rss > peak {
			peak = rss
		}
		metrics := ""
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); err == nil {
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(data)
		}
		ok, err := done(metrics)
		if err != nil {
			return 0, 0, err
		}
		if ok {
			return time.Since(start), peak, nil
		}
		select {
		case err := <-exited:
			return 0, 0, fmt.Errorf("the controller exited: %v", err)
		default:
		}
		if time.Since(start) > 5*time.Minute {
			return 0, 0, fmt.Errorf("not done after 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconciled is how many reconciles a controller finished, from
// controller-runtime's controller_runtime_reconcile_total.
func reconciled(metrics, controller string) int {
	total := 0
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, "controller_runtime_reconcile_total{") && strings.Contains(line, `controller="`+controller+`"`) {
			var n float64
			fields := strings.Fields(line)
			fmt.Sscanf(fields[len(fields)-1], "%g", &n)
			total += int(n)
		}
	}
	return total
}

// finishedWorkflow is the Workflow of a Backup as Argo leaves it after a
// successful run, controlled by the Backup as the Workflows backflow creates
// are: the controller mirrors no other.
func finishedWorkflow(b *v1.Backup) *wfv1.Workflow {
	name := b.Name
	now := metav1.Now()
	node := func(id, step string, outputs *wfv1.Outputs) wfv1.NodeStatus {
		return wfv1.NodeStatus{ID: id, Name: name + "." + step, DisplayName: step, Type: wfv1.NodeTypePod, Phase: wfv1.NodeSucceeded,
			StartedAt: now, FinishedAt: now, Outputs: outputs}
	}
	outputs := &wfv1.Outputs{Parameters: []wfv1.Parameter{
		{Name: compiler.OutputKey, Value: wfv1.AnyStringPtr(ns + "/" + name + "/20261122T030000Z.bin.zst")},
		{Name: compiler.OutputSize, Value: wfv1.AnyStringPtr("1048576")},
		{Name: compiler.OutputChecksum, Value: wfv1.AnyStringPtr("sha256:" + strings.Repeat("0", 64))},
	}}
	return &wfv1.Workflow{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			v1.LabelBackup: name, v1.LabelNamespace: ns, "workflows.argoproj.io/completed": "true",
		}, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(b, v1.GroupVersion.WithKind("Backup"))}},
		Spec: wfv1.WorkflowSpec{Entrypoint: "backup"},
		Status: wfv1.WorkflowStatus{Phase: wfv1.WorkflowSucceeded, StartedAt: now, FinishedAt: now, Progress: "2/2", Nodes: wfv1.Nodes{
			name + "-1": node(name+"-1", compiler.StepDump, outputs),
			name + "-2": node(name+"-2", compiler.StepVerify, outputs),
		}},
	}
}

// progress counts the Backups whose status mirrors their Workflow and the
// schedules whose CronWorkflow is in place.
func progress(ctx context.Context, c client.Client) (int, int, error) {
	var bl v1.BackupList
	if err := c.List(ctx, &bl, client.InNamespace(ns)); err != nil {
		return 0, 0, err
	}
	doneB := 0
	for _, b := range bl.Items {
		if b.Status.Phase == v1.PhaseSucceeded && b.Status.Checksum != "" {
			doneB++
		}
	}
	var sl v1.BackupScheduleList
	if err := c.List(ctx, &sl, client.InNamespace(ns)); err != nil {
		return 0, 0, err
	}
	doneS := 0
	for _, s := range sl.Items {
		if meta.IsStatusConditionTrue(s.Status.Conditions, v1.ConditionReady) && s.Status.NextScheduleTime != nil {
			doneS++
		}
	}
	return doneB, doneS, nil
}

// highWaterMark is a process's peak resident memory in KiB.
func highWaterMark(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kib int64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%d", &kib)
			return kib
		}
	}
	return 0
}
