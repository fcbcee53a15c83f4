package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// The times below are when the watch saw a change, on this machine's clock:
// the API's own timestamps have whole seconds only, and a step's overhead is
// a few of them.

// podTimes is when a pod was seen created, scheduled, each init container
// done, its main container running and ended, and the pod done.
type podTimes struct {
	workflow, step           string
	added, scheduled         time.Time
	initDone                 map[string]time.Time
	initOrder                []string
	running, terminated, end time.Time
	phase                    corev1.PodPhase
}

// runTimes is when a Backup or Workflow was seen created and in each phase.
type runTimes struct {
	added  time.Time
	phases map[string]time.Time
}

type watcher struct {
	mu        sync.Mutex
	pods      map[string]*podTimes
	backups   map[string]*runTimes
	workflows map[string]*runTimes
	stopCh    chan struct{}
}

var (
	backupsResource   = schema.GroupVersionResource{Group: "backflow.dev", Version: "v1alpha1", Resource: "backups"}
	workflowsResource = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "workflows"}
)

func startWatcher(kubeconfig, ns string) (*watcher, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	w := &watcher{pods: map[string]*podTimes{}, backups: map[string]*runTimes{}, workflows: map[string]*runTimes{}, stopCh: make(chan struct{})}
	podInformer := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(ns)).Core().V1().Pods().Informer()
	if _, err := podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { w.seePod(obj) },
		UpdateFunc: func(_, obj any) { w.seePod(obj) },
	}); err != nil {
		return nil, err
	}
	dynFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	for gvr, runs := range map[schema.GroupVersionResource]map[string]*runTimes{backupsResource: w.backups, workflowsResource: w.workflows} {
		see := func(obj any) { w.seeRun(runs, obj) }
		if _, err := dynFactory.ForResource(gvr).Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: see, UpdateFunc: func(_, obj any) { see(obj) },
		}); err != nil {
			return nil, err
		}
	}
	go podInformer.Run(w.stopCh)
	dynFactory.Start(w.stopCh)
	if !cache.WaitForCacheSync(w.stopCh, podInformer.HasSynced) {
		return nil, fmt.Errorf("pod watch did not sync")
	}
	for _, ok := range dynFactory.WaitForCacheSync(w.stopCh) {
		if !ok {
			return nil, fmt.Errorf("the watch of Backups or Workflows did not sync")
		}
	}
	return w, nil
}

func (w *watcher) stop() { close(w.stopCh) }

func (w *watcher) seePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pods[pod.Name]
	// Every run of the bench has names of its own.
	if p == nil {
		p = &podTimes{added: now, initDone: map[string]time.Time{}}
		w.pods[pod.Name] = p
		p.workflow = pod.Labels["workflows.argoproj.io/workflow"]
		// Argo's node name is "<workflow>.<task>(<retry>)".
		step := pod.Annotations["workflows.argoproj.io/node-name"]
		step = step[strings.LastIndex(step, ".")+1:]
		if i := strings.Index(step, "("); i > 0 {
			step = step[:i]
		}
		p.step = step
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && p.scheduled.IsZero() {
			p.scheduled = now
		}
	}
	for _, c := range pod.Status.InitContainerStatuses {
		if c.State.Terminated != nil {
			if _, seen := p.initDone[c.Name]; !seen {
				p.initDone[c.Name] = now
				p.initOrder = append(p.initOrder, c.Name)
			}
		}
	}
	for _, c := range pod.Status.ContainerStatuses {
		if c.Name == "wait" {
			continue
		}
		if (c.State.Running != nil || c.State.Terminated != nil) && p.running.IsZero() {
			p.running = now
		}
		if c.State.Terminated != nil && p.terminated.IsZero() {
			p.terminated = now
		}
	}
	if (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) && p.end.IsZero() {
		p.end, p.phase = now, pod.Status.Phase
	}
}

func (w *watcher) seeRun(runs map[string]*runTimes, obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	now := time.Now()
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	w.mu.Lock()
	defer w.mu.Unlock()
	r := runs[u.GetName()]
	if r == nil {
		r = &runTimes{added: now, phases: map[string]time.Time{}}
		runs[u.GetName()] = r
	}
	if _, seen := r.phases[phase]; !seen && phase != "" {
		r.phases[phase] = now
	}
}

func (w *watcher) waitBackup(name string, timeout time.Duration) (time.Time, error) {
	return w.waitRun(w.backups, "Backup", name, timeout)
}

func (w *watcher) waitWorkflow(name string, timeout time.Duration) (time.Time, error) {
	return w.waitRun(w.workflows, "Workflow", name, timeout)
}

// waitRun waits for the run name of runs (a Backup or a Workflow) to
// succeed, and says when the watch saw it.
func (w *watcher) waitRun(runs map[string]*runTimes, kind, name string, timeout time.Duration) (time.Time, error) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		w.mu.Lock()
		r := runs[name]
		var done, failed time.Time
		if r != nil {
			done, failed = r.phases["Succeeded"], cmpTime(r.phases["Failed"], r.phases["Error"])
		}
		w.mu.Unlock()
		if !failed.IsZero() {
			return time.Time{}, fmt.Errorf("%s %s failed", kind, name)
		}
		if !done.IsZero() {
			return done, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %s not Succeeded after %s", kind, name, timeout)
}

// cmpTime is the first of ts that is set.
func cmpTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func (w *watcher) waitPod(name string, timeout time.Duration) (time.Time, error) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		p := w.pod(name)
		if !p.end.IsZero() {
			if p.phase != corev1.PodSucceeded {
				return time.Time{}, fmt.Errorf("pod %s %s", name, p.phase)
			}
			return p.end, nil
		}
	}
	return time.Time{}, fmt.Errorf("pod %s not done after %s", name, timeout)
}

func (w *watcher) pod(name string) podTimes {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p := w.pods[name]; p != nil {
		return *p
	}
	return podTimes{}
}

// breakdown prints where one Backup's time went, from its creation (start)
// to its Succeeded (end): the controller's part (up to the Workflow, and
// from the Workflow's end to the Backup's), Argo's (from the Workflow to its
// first pod, between pods, after the last), and each pod's start, work and
// end. A Workflow created directly (viaBackup false: the one-step
// baseline) has no controller part.
func (w *watcher) breakdown(start time.Time, workflow string, end time.Time, viaBackup bool) {
	w.mu.Lock()
	wf := w.workflows[workflow]
	var pods []podTimes
	for _, p := range w.pods {
		if p.workflow == workflow {
			pods = append(pods, *p)
		}
	}
	w.mu.Unlock()
	if wf == nil {
		fmt.Printf("  (Workflow %s not seen)\n", workflow)
		return
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].added.Before(pods[j].added) })
	line := func(what string, from, to time.Time) float64 {
		d := to.Sub(from).Seconds()
		fmt.Printf("  %-34s %6.1f s\n", what, d)
		return d
	}
	var controller, argo, podStart, work, podEnd float64
	if viaBackup {
		controller += line("controller: Backup to Workflow", start, wf.added)
	}
	prev := wf.added
	for i, p := range pods {
		what := "argo: Workflow to first pod"
		if i > 0 {
			what = "argo: pod to next pod"
		}
		argo += line(what, prev, p.added)
		podStart += line(p.step+": pod start (scheduled)", p.added, p.scheduled)
		at := p.scheduled
		for _, c := range p.initOrder {
			podStart += line(p.step+": pod start (init "+c+")", at, p.initDone[c])
			at = p.initDone[c]
		}
		podStart += line(p.step+": pod start (main running)", at, p.running)
		work += line(p.step+": work", p.running, p.terminated)
		podEnd += line(p.step+": pod end (wait container)", p.terminated, p.end)
		prev = p.end
	}
	wfDone := wf.phases["Succeeded"]
	argo += line("argo: last pod to Workflow Succeeded", prev, wfDone)
	if viaBackup {
		controller += line("controller: Workflow to Backup", wfDone, end)
	}
	fmt.Printf("  summary: controller %.1f s, argo %.1f s, pod start %.1f s, work %.1f s, pod end %.1f s (%d pods)\n",
		controller, argo, podStart, work, podEnd, len(pods))
}
