package stages_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/minio/minio-go/v7"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pipeline"
	"github.com/backflow-dev/backflow/stages/source"
	"github.com/backflow-dev/backflow/stages/storage"
)

// readOnly opens the test's prefix of the bucket with credentials that may
// only GetObject.
func readOnly(t *testing.T) storage.Backend {
	t.Helper()
	key, secret, token, err := minioServer.ReadOnlyCredentials()
	if err != nil {
		t.Fatal(err)
	}
	b, err := storage.Open(minioServer.StorageURL(strings.ReplaceAll(t.Name(), "/", "-")),
		storage.Credentials{AccessKeyID: key, SecretAccessKey: secret, SessionToken: token})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyObject copies a stored object over another, as someone with write
// access to the bucket could.
func copyObject(t *testing.T, b *storage.S3Backend, from, to string) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.Client().CopyObject(ctx, minio.CopyDestOptions{Bucket: b.Bucket(), Object: b.FullKey(to)},
		minio.CopySrcOptions{Bucket: b.Bucket(), Object: b.FullKey(from)}); err != nil {
		t.Fatal(err)
	}
}

func readObject(t *testing.T, b storage.Backend, key string) []byte {
	t.Helper()
	r, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// A Restore pins the checksum its Backup recorded: a manifest or an object
// replaced in the bucket since (here by another genuine backup, whose own
// checksums all match) is refused before the target database sees a byte,
// with a message that says what differs. The genuine backup restores with
// credentials that may only read objects.
func TestRestorePinsTheBackedUpChecksum(t *testing.T) {
	ctx := context.Background()
	pgQuery(t, "postgres", "CREATE DATABASE pinned_src")
	pgQuery(t, "pinned_src", "CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders SELECT i, 'genuine ' || i FROM generate_series(1, 2000) i")
	want := pgFingerprint(t, "pinned_src")
	id, recipients, names := newIdentity(t)
	ids := []age.Identity{id}
	backend := s3(t)
	dump := func(name string) *stages.Manifest {
		m, err := stages.Dump(ctx, stages.DumpConfig{
			Source: v1.BackupSource{PostgreSQL: &v1.PostgreSQLSource{Format: v1.PostgreSQLFormatCustom,
				Connection: v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}}},
			SourceOptions: source.Options{Getenv: pgEnv("pinned_src")}, Storage: backend,
			PathTemplate: "apps/shop/{{ .Name }}{{ .Extension }}", Namespace: "apps", Name: name, Series: "shop",
			Compression: pipeline.Zstd, Recipients: recipients, RecipientNames: names, Version: "test",
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	genuine := dump("genuine")
	pgQuery(t, "pinned_src", "UPDATE orders SET note = 'forged ' || id")
	forged := dump("forged")

	pgQuery(t, "postgres", "CREATE DATABASE pinned_dst")
	pgQuery(t, "pinned_dst", "CREATE TABLE sentinel (v text); INSERT INTO sentinel VALUES ('untouched')")
	target := v1.RestoreTarget{PostgreSQL: &v1.PostgreSQLTarget{Connection: v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}}}
	restore := func(b storage.Backend, key string) error {
		_, err := stages.Restore(ctx, stages.RestoreConfig{
			Storage: b, Key: key, Identities: ids, Target: target, VerifyFirst: true, ExpectChecksum: genuine.Checksum,
			SourceOptions: source.Options{Getenv: pgEnv("pinned_dst")}, Stderr: io.Discard,
		})
		return err
	}
	untouched := func(what string) {
		t.Helper()
		if got := pgQuery(t, "pinned_dst", "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'"); strings.TrimSpace(got) != "sentinel" {
			t.Errorf("%s: the target database changed: tables %q", what, got)
		}
	}

	// The object and its manifest both replaced: the manifest's checksum is
	// not the one the Backup recorded.
	stolen := "apps/shop/replaced.bin"
	copyObject(t, backend, genuine.Key, stolen)
	copyObject(t, backend, genuine.Key+stages.ManifestSuffix, stolen+stages.ManifestSuffix)
	copyObject(t, backend, forged.Key, genuine.Key)
	copyObject(t, backend, forged.Key+stages.ManifestSuffix, genuine.Key+stages.ManifestSuffix)
	err := restore(backend, genuine.Key)
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), "refused before it started") ||
		!strings.Contains(err.Error(), forged.Checksum) || !strings.Contains(err.Error(), genuine.Checksum) {
		t.Errorf("a replaced backup: %v, want a refusal naming both checksums", err)
	}
	untouched("replaced manifest")
	_, err = stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: genuine.Key, Identities: ids, ExpectChecksum: genuine.Checksum, ReadOnly: true})
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), forged.Checksum) {
		t.Errorf("verify of a replaced backup: %v", err)
	}

	// Only the object replaced, the genuine manifest back in place: the
	// object's sha256 differs from the one pinned.
	copyObject(t, backend, stolen+stages.ManifestSuffix, genuine.Key+stages.ManifestSuffix)
	err = restore(backend, genuine.Key)
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), "refused before it started") ||
		!strings.Contains(err.Error(), forged.Checksum) || !strings.Contains(err.Error(), genuine.Checksum) {
		t.Errorf("a replaced object: %v, want a refusal naming the object's and the pinned checksum", err)
	}
	untouched("replaced object")

	// The genuine object back: it restores, with read-only credentials.
	copyObject(t, backend, stolen, genuine.Key)
	ro := readOnly(t)
	if err := ro.Put(ctx, "apps/shop/probe", strings.NewReader("x"), nil); err == nil {
		t.Fatal("the read-only credentials may write: the test would prove nothing")
	}
	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: ro, Key: genuine.Key, Identities: ids, ExpectChecksum: genuine.Checksum, ReadOnly: true}); err != nil {
		t.Errorf("read-only verify, as a Restore's verify step runs: %v", err)
	}
	pgQuery(t, "pinned_dst", "DROP TABLE sentinel")
	if err := restore(ro, genuine.Key); err != nil {
		t.Fatalf("restore with read-only credentials: %v", err)
	}
	if got := pgFingerprint(t, "pinned_dst"); !maps.Equal(got, want) {
		t.Errorf("restored rows differ:\n got %v\nwant %v", got, want)
	}
}

// verify marks verified the manifest of the key it was asked to check, never
// the key a (tampered) manifest names: another backup's manifest stays as it
// was.
func TestVerifyWritesTheManifestItWasAskedFor(t *testing.T) {
	ctx := context.Background()
	backend := s3(t)
	first := dumpCommand(t, backend, "seq 1 1000", nil, nil)
	second, err := stages.Dump(ctx, stages.DumpConfig{Source: commandSource("seq 1 2000"), Storage: backend,
		PathTemplate: "series/{{ .Name }}{{ .Extension }}", Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	before := readObject(t, backend, first.Key+stages.ManifestSuffix)

	// The second backup's manifest is made to name the first backup's key.
	var m map[string]any
	if err := json.Unmarshal(readObject(t, backend, second.Key+stages.ManifestSuffix), &m); err != nil {
		t.Fatal(err)
	}
	m["key"] = first.Key
	tampered, _ := json.Marshal(m)
	if err := backend.Put(ctx, second.Key+stages.ManifestSuffix, bytes.NewReader(tampered), nil); err != nil {
		t.Fatal(err)
	}

	verified, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: second.Key})
	if err != nil {
		t.Fatal(err)
	}
	if verified.Key != second.Key {
		t.Errorf("verify reports key %s, want %s", verified.Key, second.Key)
	}
	if after := readObject(t, backend, first.Key+stages.ManifestSuffix); !bytes.Equal(after, before) {
		t.Errorf("verify of %s rewrote the manifest of %s:\n%s", second.Key, first.Key, after)
	}
	written, err := stages.ReadManifest(ctx, backend, second.Key)
	if err != nil {
		t.Fatal(err)
	}
	if written.VerifiedAt == nil || written.Key != second.Key {
		t.Errorf("manifest of %s after verify: key %s, verifiedAt %v", second.Key, written.Key, written.VerifiedAt)
	}
}
