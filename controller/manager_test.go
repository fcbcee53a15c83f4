package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/backflow-dev/backflow/controller"
	"github.com/backflow-dev/backflow/test/argotest"
)

// The manager's cache holds of a Secret its name, labels and owners, but
// not the annotations, where kubectl apply copies the whole Secret, data
// included.
func TestCachedSecretMetadataHoldsNoData(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ns := newNamespace(t)
	opts := controller.CacheOptions(nil)
	opts.Scheme = controller.Scheme()
	c, err := cache.New(stack.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Start(ctx) }()

	applied := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied"},"stringData":{"password":"hunter2"}}`
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "applied", Labels: map[string]string{"app": "db"},
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: applied}},
		StringData: map[string]string{"password": "hunter2"},
	}
	if err := stack.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	cached := &metav1.PartialObjectMetadata{}
	cached.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	argotest.WaitFor(t, "the Secret in the cache", 30*time.Second, func() (bool, string) {
		err := c.Get(ctx, client.ObjectKeyFromObject(secret), cached)
		return err == nil, fmt.Sprint(err)
	})
	if len(cached.Annotations) > 0 || len(cached.ManagedFields) > 0 {
		t.Errorf("cached Secret metadata has annotations %v and %d managed fields, want none", cached.Annotations, len(cached.ManagedFields))
	}
	if cached.Labels["app"] != "db" || cached.UID != secret.UID {
		t.Errorf("cached Secret metadata lost its labels or UID: %+v", cached.ObjectMeta)
	}
}
