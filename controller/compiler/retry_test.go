package compiler

import (
	"testing"

	"github.com/argoproj/argo-workflows/v3/util/expr/argoexpr"
	"github.com/argoproj/argo-workflows/v3/util/expr/env"
)

// The retry expression, evaluated as Argo evaluates it, on what Argo records
// about failed attempts. (The real workflow-controller runs it in
// controller/retry_test.go.)
func TestRetryExpression(t *testing.T) {
	for _, tc := range []struct {
		name, exitCode, status, message string
		retry                           bool
	}{
		{"the step said retry", "75", "Failed", "main: Error (exit code 75): storage unreachable", true},
		{"exit 75 whatever the message", "75", "Failed", "main: Error (exit code 75): bucket not found", true},
		{"the step failed", "1", "Failed", "main: Error (exit code 1): connection refused", false},
		{"the pod went with its node", "-1", "Error", "pod deleted", true},
		{"an init container failed", "-1", "Error", "install-backflow: Error (exit code 1)", true},
		{"evicted", "137", "Failed", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi.", true},
		{"node shutdown", "-1", "Failed", "Pod was terminated in response to imminent node shutdown.", true},
		{"stopped from outside (its pod deleted)", "75", "Failed", "main: Error (exit code 75): backflow: stopped by signal terminated", true},
		{"stopped at the step's deadline", "75", "Failed", "Pod was active on the node longer than the specified deadline", false},
		{"the step's deadline", "-1", "Failed", "Pod was active on the node longer than the specified deadline", false},
		{"no service account", "-1", "Error", `pods "nosa-dump-1" is forbidden: error looking up service account apps/backflow-workflow: serviceaccount "backflow-workflow" not found`, false},
		{"invalid pod", "-1", "Error", `Pod "x" is invalid: spec.containers[0].image: Required value`, false},
		{"a Secret not found", "-1", "Error", `secret "minio" not found`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scope := env.GetFuncMap(map[string]any{
				"lastRetry.exitCode": tc.exitCode, "lastRetry.status": tc.status, "lastRetry.message": tc.message, "lastRetry.duration": "3",
			})
			got, err := argoexpr.EvalBool(retryExpression, scope)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.retry {
				t.Errorf("retry %v, want %v", got, tc.retry)
			}
		})
	}
}
