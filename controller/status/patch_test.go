package status

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

func TestPatch(t *testing.T) {
	b := &v1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "nightly"}}
	b.Status.Message = "older"
	patches := 0
	c := fakeclient.NewBuilder().WithObjects(b).WithStatusSubresource(b).WithInterceptorFuncs(interceptor.Funcs{
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			patches++
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}).Build()
	ctx := context.Background()
	if err := c.Get(ctx, client.ObjectKeyFromObject(b), b); err != nil {
		t.Fatal(err)
	}

	wrote, err := Patch(ctx, c, b, func() { b.Status.SetAsPending(1, v1.ReasonStorageNotFound, "no storage") })
	if err != nil || !wrote || patches != 1 {
		t.Fatalf("a change: wrote %v, %d patches, %v", wrote, patches, err)
	}
	var stored v1.Backup
	if err := c.Get(ctx, client.ObjectKeyFromObject(b), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Status.Message != "no storage" || stored.Status.Phase != v1.PhasePending || len(stored.Status.Conditions) != 1 {
		t.Errorf("stored status %+v", stored.Status)
	}

	wrote, err = Patch(ctx, c, b, func() { b.Status.SetAsPending(1, v1.ReasonStorageNotFound, "no storage") })
	if err != nil || wrote || patches != 1 {
		t.Errorf("no change: wrote %v, %d patches, %v", wrote, patches, err)
	}
}
