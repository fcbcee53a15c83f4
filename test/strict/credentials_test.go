package strict_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/controller/storageref"
	"github.com/backflow-dev/backflow/test/argotest"
)

// Under the run template the steps' pods read their own keys of the
// Workflow's run Secret, a fixed argument of the template in which Argo
// renders the Workflow's UID, and mount the storage's CA bundle from it.
func TestStrictStepsReadTheRunSecret(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := stack.NewNamespace(t, minio)
	if err := stack.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ca"}, StringData: map[string]string{"ca.pem": "CA"}}); err != nil {
		t.Fatal(err)
	}
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var st v1.BackupStorage
		if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: argotest.StorageName}, &st); err != nil {
			return err
		}
		st.Spec.S3.TLS = &v1.StorageTLS{CASecretRef: &v1.SecretKeySelector{Name: "ca", Key: "ca.pem"}}
		return stack.Client.Update(ctx, &st)
	}); err != nil {
		t.Fatal(err)
	}
	name := "runsecret"
	stack.Driver.Set(name, compiler.StepVerify, argotest.Outcome{Hold: true})
	s := spec()
	s.Hooks = nil
	createBackup(t, ns, name, s)
	pod := stack.StepPod(t, ns, name, compiler.StepVerify)
	secret := storageref.RunSecretName(stack.Workflow(t, ns, name).UID)
	id, key, token := compiler.CredentialKeys(compiler.StepVerify)
	want := []string{
		"env AWS_ACCESS_KEY_ID: " + secret + "/" + id,
		"env AWS_SECRET_ACCESS_KEY: " + secret + "/" + key,
		"env AWS_SESSION_TOKEN: " + secret + "/" + token + " (optional)",
		"volume storage-ca: " + secret + "/" + compiler.RunCAKey,
	}
	if got := argotest.SecretReferences(pod); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the verify pod reads\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var run corev1.Secret
	if err := stack.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: secret}, &run); err != nil || string(run.Data[compiler.RunCAKey]) != "CA" {
		t.Errorf("run Secret: %v, CA %q", err, run.Data[compiler.RunCAKey])
	}
	stack.Driver.Set(name, compiler.StepVerify, argotest.Outcome{Outputs: argotest.StepOutputs(ns, name, compiler.StepVerify)})
	if b, _ := finished(t, ns, name); b.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("Backup %s %q", b.Status.Phase, b.Status.Message)
	}
}
