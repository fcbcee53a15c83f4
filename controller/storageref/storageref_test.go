package storageref

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/internal/fakeclient"
)

func TestS3Config(t *testing.T) {
	storage := func(creds v1.S3Credentials) *v1.BackupStorage {
		st := &v1.BackupStorage{}
		st.Spec.S3 = v1.S3Storage{Endpoint: "https://s3.example", Bucket: "b", Prefix: "p/", Region: "eu", ForcePathStyle: true, PartSizeMiB: 16,
			Credentials: creds, TLS: &v1.StorageTLS{InsecureSkipVerify: true}}
		st.Spec.S3.Credentials.SecretRef.Name = "creds"
		return st
	}
	defaults := map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id"), "AWS_SECRET_ACCESS_KEY": []byte("secret")}
	for _, tc := range []struct {
		name           string
		creds          v1.S3Credentials
		data           map[string][]byte
		id, key, token string
		err            string
	}{
		{name: "default keys", data: defaults, id: "id", key: "secret"},
		{name: "keys the storage names", creds: v1.S3Credentials{AccessKeyIDKey: "user", SecretAccessKeyKey: "password", SessionTokenKey: "token"},
			data: map[string][]byte{"user": []byte("u"), "password": []byte("p"), "token": []byte("t")}, id: "u", key: "p", token: "t"},
		{name: "no access key id", data: map[string][]byte{"AWS_SECRET_ACCESS_KEY": []byte("secret")}, err: "credentials Secret creds has no key AWS_ACCESS_KEY_ID"},
		{name: "no secret key under the named key", creds: v1.S3Credentials{SecretAccessKeyKey: "password"}, data: defaults, err: "credentials Secret creds has no key password"},
		{name: "a session token key without a value", creds: v1.S3Credentials{SessionTokenKey: "token"}, data: defaults, id: "id", key: "secret"},
		// Present but empty: an error, never a fall back to an ambient or
		// anonymous identity.
		{name: "empty access key id", data: map[string][]byte{"AWS_ACCESS_KEY_ID": {}, "AWS_SECRET_ACCESS_KEY": []byte("secret")},
			err: "credentials Secret creds has an empty AWS_ACCESS_KEY_ID"},
		{name: "empty secret key under the named key", creds: v1.S3Credentials{SecretAccessKeyKey: "password"},
			data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id"), "password": {}}, err: "credentials Secret creds has an empty password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := s3Config(storage(tc.creds), tc.data)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := cfg.Credentials; c.AccessKeyID != tc.id || c.SecretAccessKey != tc.key || c.SessionToken != tc.token {
				t.Errorf("credentials %+v", c)
			}
			if cfg.Endpoint != "https://s3.example" || cfg.Bucket != "b" || cfg.Prefix != "p/" || cfg.Region != "eu" || !cfg.PathStyle || cfg.PartSizeMiB != 16 || !cfg.InsecureSkipVerify {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]v1.ConditionReason{
		fmt.Errorf("%w: BackupStorage a/b does not exist", ErrNotFound):   v1.ReasonStorageNotFound,
		fmt.Errorf("%w: BackupStorage a/b does not list c", ErrForbidden): v1.ReasonStorageForbidden,
		errors.New("connection refused"):                                  "",
	} {
		got, ok := Reason(err)
		if got != want || ok != (want != "") {
			t.Errorf("Reason(%v) = %q, %v; want %q", err, got, ok, want)
		}
	}
}

// The index value of a reference is the storage's key as the storage itself
// gives it, with the namespace defaulting to the referrer's.
func TestIndexValue(t *testing.T) {
	st := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "minio"}}
	for _, tc := range []struct {
		ref  v1.StorageReference
		ns   string
		same bool
	}{
		{v1.StorageReference{Name: "minio"}, "store", true},
		{v1.StorageReference{Name: "minio", Namespace: "store"}, "apps", true},
		{v1.StorageReference{Name: "minio"}, "apps", false},
		{v1.StorageReference{Name: "other", Namespace: "store"}, "store", false},
	} {
		if got := IndexValue(tc.ref, tc.ns) == client.ObjectKeyFromObject(st).String(); got != tc.same {
			t.Errorf("%+v from %s: same as %s is %v", tc.ref, tc.ns, client.ObjectKeyFromObject(st), got)
		}
	}
}

func TestResolve(t *testing.T) {
	st := &v1.BackupStorage{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "minio"}}
	st.Spec.AllowedNamespaces = []string{"apps"}
	st.Spec.S3.Bucket = "backups"
	st.Spec.S3.Credentials.SecretRef.Name = "creds"
	c := fakeclient.NewBuilder().WithObjects(st,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "store", Name: "creds"}, Data: map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id")}},
	).Build()
	ctx := context.Background()

	access, err := Resolve(ctx, c, v1.StorageReference{Name: "minio"}, "store")
	if err != nil || access.Storage.Spec.S3.Bucket != "backups" {
		t.Errorf("same namespace: %+v, %v", access, err)
	}
	if _, err := Resolve(ctx, c, v1.StorageReference{Name: "gone"}, "store"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing storage: %v, want ErrNotFound", err)
	}
	if _, err := Resolve(ctx, c, v1.StorageReference{Name: "minio", Namespace: "store"}, "other"); !errors.Is(err, ErrForbidden) || !strings.Contains(err.Error(), "other") {
		t.Errorf("namespace not allowed: %v, want ErrForbidden naming it", err)
	}

	// From an allowed namespace nothing is copied: the run Secret, written
	// once the Workflow exists, carries the credentials.
	if access, err = Resolve(ctx, c, v1.StorageReference{Name: "minio", Namespace: "store"}, "apps"); err != nil || access.Storage.Name != "minio" {
		t.Fatalf("allowed namespace: %+v, %v", access, err)
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace("apps")); err != nil || len(secrets.Items) != 0 {
		t.Errorf("Secrets in apps: %v, %v", secrets.Items, err)
	}
}

// The controller sends no request to a link-local or cloud metadata
// endpoint, named or resolved, unless the storage allows it. The lookup is
// a table: no DNS server here answers with such addresses.
func TestCheckEndpoint(t *testing.T) {
	resolves := map[string][]netip.Addr{
		"minio.minio.svc":   {netip.MustParseAddr("10.96.0.12")},
		"rebound.example":   {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("169.254.169.254")},
		"linklocal.example": {netip.MustParseAddr("fe80::1")},
		"ec2v6.example":     {netip.MustParseAddr("fd00:ec2::254")},
		"mapped.example":    {netip.MustParseAddr("::ffff:169.254.1.1")},
	}
	lookup := func(_ context.Context, _, host string) ([]netip.Addr, error) {
		if addrs, ok := resolves[host]; ok {
			return addrs, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for endpoint, refused := range map[string]bool{
		"http://minio.minio.svc:9000":      false,
		"https://s3.amazonaws.com":         false,
		"http://10.0.0.1:9000":             false,
		"http://169.254.169.254":           true,
		"http://169.254.10.20:9000":        true,
		"http://[fe80::1]:9000":            true,
		"http://[fd00:ec2::254]":           true,
		"http://metadata.google.internal":  true,
		"http://METADATA.google.internal.": true,
		"http://metadata":                  true,
		"http://rebound.example:9000":      true,
		"http://linklocal.example":         true,
		"http://ec2v6.example":             true,
		"http://mapped.example":            true,
		"http://unresolvable.example:9000": false,
	} {
		err := CheckEndpoint(context.Background(), v1.S3Storage{Endpoint: endpoint}, lookup)
		if refused != errors.Is(err, ErrEndpointNotAllowed) || (refused && !strings.Contains(err.Error(), "s3.allowMetadataEndpoint")) {
			t.Errorf("%s: %v, want refused %v", endpoint, err, refused)
		}
		if err := CheckEndpoint(context.Background(), v1.S3Storage{Endpoint: endpoint, AllowMetadataEndpoint: true}, lookup); err != nil {
			t.Errorf("%s with allowMetadataEndpoint: %v", endpoint, err)
		}
	}

	// The same rule as each connection is dialled.
	st := &v1.BackupStorage{}
	st.Spec.S3 = v1.S3Storage{Endpoint: "http://rebound.example:9000", Credentials: v1.S3Credentials{SecretRef: v1.LocalObjectReference{Name: "creds"}}}
	creds := map[string][]byte{"AWS_ACCESS_KEY_ID": []byte("id"), "AWS_SECRET_ACCESS_KEY": []byte("secret")}
	cfg, err := s3Config(st, creds)
	if err != nil || cfg.RefuseAddr == nil {
		t.Fatalf("%v: no RefuseAddr", err)
	}
	if err := cfg.RefuseAddr(netip.MustParseAddr("169.254.169.254")); !errors.Is(err, ErrEndpointNotAllowed) {
		t.Errorf("dialling the metadata address: %v", err)
	}
	if err := cfg.RefuseAddr(netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Errorf("dialling 10.0.0.1: %v", err)
	}
	st.Spec.S3.AllowMetadataEndpoint = true
	if cfg, _ := s3Config(st, creds); cfg.RefuseAddr != nil {
		t.Error("allowMetadataEndpoint still refuses addresses as they are dialled")
	}
}
