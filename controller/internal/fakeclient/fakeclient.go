// Package fakeclient builds controller-runtime fake clients that know
// backflow's kinds and Kubernetes' own, for the fast tests of the
// reconcilers' watches and helpers.
package fakeclient

import (
	"slices"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// NewBuilder is a fake client builder with a scheme of backflow's kinds and
// Kubernetes' own.
func NewBuilder() *fake.ClientBuilder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return fake.NewClientBuilder().WithScheme(scheme)
}

// RequestNames are the namespace/name of what a map function enqueued,
// sorted, for comparing with what a test expects.
func RequestNames(reqs []reconcile.Request) []string {
	names := make([]string, 0, len(reqs))
	for _, req := range reqs {
		names = append(names, req.String())
	}
	slices.Sort(names)
	return names
}
