package storage

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

// A change to a Secret reaches the storages of its namespace that read it,
// as credentials or as CA bundle; no others.
func TestStoragesReading(t *testing.T) {
	storage := func(ns, name, credentials string, tls *v1.StorageTLS) *v1.BackupStorage {
		st := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		st.Spec.S3.Credentials.SecretRef.Name = credentials
		st.Spec.S3.TLS = tls
		return st
	}
	c := fakeclient.NewBuilder().WithIndex(&v1.BackupStorage{}, SecretIndex, secretsOf).WithObjects(
		storage("store", "credentials", "minio", nil),
		storage("store", "ca", "other", &v1.StorageTLS{CASecretRef: &v1.SecretKeySelector{Name: "minio", Key: "ca.crt"}}),
		storage("store", "unrelated", "other", nil),
		storage("apps", "other-namespace", "minio", nil),
	).Build()
	r := &Reconciler{Client: c}
	got := fakeclient.RequestNames(r.storagesReading(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "minio"}}))
	if want := []string{"store/ca", "store/credentials"}; !slices.Equal(got, want) {
		t.Errorf("enqueued %v, want %v", got, want)
	}
}
