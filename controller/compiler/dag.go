package compiler

import (
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// dagBuilder collects the tasks of a DAG in order.
type dagBuilder struct {
	tasks []wfv1.DAGTask
	// tolerated are tasks whose failure must not fail the run.
	tolerated map[string]bool
}

func (d *dagBuilder) add(t wfv1.DAGTask) { d.tasks = append(d.tasks, t) }

// addTolerated adds a task whose failure does not fail the run (a hook with
// onError: Continue). Argo refuses continueOn beside depends; leaving the
// task out of the DAG's targets has the same effect.
func (d *dagBuilder) addTolerated(t wfv1.DAGTask) {
	if d.tolerated == nil {
		d.tolerated = map[string]bool{}
	}
	d.tolerated[t.Name] = true
	d.add(t)
}

func (d *dagBuilder) has(name string) bool {
	for _, t := range d.tasks {
		if t.Name == name {
			return true
		}
	}
	return false
}

// template is the DAG template. Every task but the tolerated ones is a
// target, so that the DAG fails when any of them fails, even one whose
// failure a later task handles (a post-hook that runs after a failed dump
// must not make the run green).
func (d *dagBuilder) template(name string) wfv1.Template {
	var names []string
	for _, t := range d.tasks {
		if !d.tolerated[t.Name] {
			names = append(names, t.Name)
		}
	}
	return wfv1.Template{Name: name, DAG: &wfv1.DAGTemplate{Target: strings.Join(names, " "), Tasks: d.tasks}}
}

// succeeded is a depends clause for a task that must have succeeded, or
// merely finished when its failure is tolerated.
func succeeded(task string, tolerateFailure bool) string {
	if tolerateFailure {
		return "(" + anyOutcome(task) + ")"
	}
	return task + ".Succeeded"
}

// anyOutcome is a depends clause that holds once a task finished, however.
func anyOutcome(task string) string {
	return task + ".Succeeded || " + failed(task)
}

func failed(task string) string { return task + ".Failed || " + task + ".Errored" }

// addHook adds a hook task, tolerated when its onError is Continue.
func (d *dagBuilder) addHook(t wfv1.DAGTask, h *v1.Hook) {
	if h.OnError == v1.HookErrorContinue {
		d.addTolerated(t)
		return
	}
	d.add(t)
}
