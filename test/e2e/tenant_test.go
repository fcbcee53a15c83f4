//go:build e2e

package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/test/clusterkit"
)

// Namespaces of the tenancy scenario: alice owns the storage and lets
// mallory use it.
const (
	nsAlice   = "e2e-alice"
	nsMallory = "e2e-mallory"
)

// A command source in mallory's namespace that dumps everything its
// container can read about itself (the environment of every process in
// it, the service account token directory) stores what it found: a real
// pod, so the test sees what a hostile command would. It must find no
// bucket-wide secret key and no service account token.
// tokenDirMarker separates, in what the command stores, its environment
// from what it found where Kubernetes mounts a service-account token.
const tokenDirMarker = "BACKFLOW-E2E-TOKEN-DIRECTORY"

func TestTenantCommandFindsNoKeyOrToken(t *testing.T) {
	t.Parallel()
	for _, ns := range []string{nsAlice, nsMallory} {
		st.Namespace(t, ns, bucket)
	}
	st.Apply(t, nsAlice, `
apiVersion: v1
kind: Secret
metadata: {name: minio-credentials}
stringData:
  AWS_ACCESS_KEY_ID: `+st.Env["BACKFLOW_CLUSTER_MINIO_USER"]+`
  AWS_SECRET_ACCESS_KEY: `+st.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"]+`
---
apiVersion: backflow.dev/v1alpha1
kind: BackupStorage
metadata: {name: shared}
spec:
  allowedNamespaces: [`+nsMallory+`]
  s3:
    endpoint: http://minio.minio.svc:9000
    bucket: `+bucket+`
    forcePathStyle: true
    credentials: {secretRef: {name: minio-credentials}}
`)
	st.Apply(t, nsMallory, `
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: snoop}
spec:
  source:
    command:
      image: `+st.Env["BACKFLOW_CLUSTER_IMAGE_CLIENTS"]+`
      command: [sh, -c, 'for f in /proc/[0-9]*/environ; do tr "\0" "\n" < "$f"; done; echo `+tokenDirMarker+`; ls -la /var/run/secrets/kubernetes.io/serviceaccount/ 2>&1; cat /var/run/secrets/kubernetes.io/serviceaccount/token 2>&1; true']
  storage: {name: shared, namespace: `+nsAlice+`}
  compression: {algorithm: none}
`)
	b := &v1.Backup{}
	b.Namespace, b.Name = nsMallory, "snoop"
	clusterkit.WaitForPhase(t, st, b, v1.PhaseSucceeded, 3*time.Minute)
	key := st.StoredKey(t, b)
	if !strings.HasPrefix(key, nsMallory+"/") {
		t.Errorf("mallory's backup is stored at %s, outside %s/", key, nsMallory)
	}
	obj, err := st.S3.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(found), st.Env["BACKFLOW_CLUSTER_MINIO_PASSWORD"]) {
		t.Error("a command in mallory's namespace read the bucket-wide secret key of alice's storage from its container")
	}
	// The environment holds the step's own session token (a JWT from
	// MinIO's STS, scoped to mallory's prefix): only what the command found
	// in the token directory counts.
	_, tokenDir, _ := strings.Cut(string(found), tokenDirMarker)
	if strings.Contains(tokenDir, "eyJ") || strings.Contains(tokenDir, "token ->") || strings.Contains(tokenDir, " token\n") {
		// Not printed: the token is a credential.
		t.Error("a command in mallory's namespace found a service account token in /var/run/secrets/kubernetes.io/serviceaccount")
	}
}
