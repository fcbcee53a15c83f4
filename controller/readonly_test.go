package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/test/argotest"
)

// A storage whose credentials may only read objects (s3:GetObject, as MinIO
// enforces for these) is reported for what it is, and a Restore from it runs:
// the controller makes no call that needs more, and the Restore's verify step
// is told not to write the manifest.
func TestRestoreWithReadOnlyStorage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := newNamespace(t)
	key, secret, token, err := minioServer.ReadOnlyCredentials()
	if err != nil {
		t.Fatal(err)
	}
	st := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "readonly"}, Spec: v1.BackupStorageSpec{S3: v1.S3Storage{
		Endpoint: minioServer.Endpoint, Bucket: minioServer.Bucket, ForcePathStyle: true,
		Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "readonly"}, SessionTokenKey: "AWS_SESSION_TOKEN"},
	}}}
	for _, obj := range []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "readonly"}, StringData: map[string]string{
			v1.DefaultAccessKeyIDKey: key, v1.DefaultSecretAccessKeyKey: secret, "AWS_SESSION_TOKEN": token,
		}},
		st,
		&v1.Restore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fromro"}, Spec: v1.RestoreSpec{
			From:   v1.RestoreSource{Object: &v1.StoredObject{Storage: v1.StorageReference{Name: "readonly"}, Key: ns + "/old/20261101T030000Z.bin.zst"}},
			Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "busybox", Command: []string{"sh", "-c", "cat > /dev/null"}}},
		}},
	} {
		if err := stack.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	argotest.WaitFor(t, "the read-only storage's Ready condition", 30*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKeyFromObject(st), st)
		c := meta.FindStatusCondition(st.Status.Conditions, v1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && v1.ConditionReason(c.Reason) == v1.ReasonReadOnly, fmt.Sprintf("%+v", st.Status)
	})
	r := &v1.Restore{}
	argotest.WaitFor(t, "the Restore to succeed", 60*time.Second, func() (bool, string) {
		_ = stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fromro"}, r)
		return r.Status.Phase == v1.PhaseSucceeded, fmt.Sprintf("%+v", r.Status)
	})
	for _, task := range stack.Workflow(t, ns, "fromro").Spec.Templates[0].DAG.Tasks {
		if task.Name != compiler.StepVerify {
			continue
		}
		for _, p := range task.Arguments.Parameters {
			if p.Name == compiler.ParamMarkVerified && p.Value.String() != "false" {
				t.Errorf("a Restore's verify step marks the manifest verified: %s=%s", p.Name, p.Value)
			}
		}
	}
}
