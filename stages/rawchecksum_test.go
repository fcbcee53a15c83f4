package stages_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/zeebo/blake3"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
)

// dumpSeq dumps the output of seq 1 300000 encrypted to a new identity, and
// returns the identity, the storage, the manifest and the plain stream.
func dumpSeq(t *testing.T) (age.Identity, storage.Backend, *stages.Manifest, []byte) {
	t.Helper()
	id, recipients, names := newIdentity(t)
	backend := s3(t)
	m := dumpCommand(t, backend, "seq 1 300000", recipients, names)
	plain, err := exec.Command("seq", "1", "300000").Output()
	if err != nil {
		t.Fatal(err)
	}
	return id, backend, m, plain
}

// The plain stream's checksum is BLAKE3, named in the manifest, and equal to
// BLAKE3 of what the source wrote as another implementation computes it; a
// manifest that records another plain stream fails verify and restore.
func TestRawChecksumIsBLAKE3(t *testing.T) {
	ctx := context.Background()
	id, backend, m, plain := dumpSeq(t)
	sum := blake3.Sum256(plain)
	if want := "blake3:" + hex.EncodeToString(sum[:]); m.RawChecksum != want {
		t.Fatalf("raw checksum %s, want %s", m.RawChecksum, want)
	}
	if !strings.HasPrefix(m.Checksum, "sha256:") {
		t.Errorf("the stored object's checksum %s is not sha256", m.Checksum)
	}
	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}}); err != nil {
		t.Fatal(err)
	}

	other := blake3.Sum256(append(plain, '\n'))
	rewriteRawChecksum(t, backend, m.Key, "blake3:"+hex.EncodeToString(other[:]))
	assertPlainStreamRefused(t, backend, m.Key, id)
}

// A manifest written before BLAKE3 records the plain stream's sha256: verify
// and restore check it with sha256, and refuse a stream it does not match.
func TestManifestWithSHA256RawChecksum(t *testing.T) {
	ctx := context.Background()
	id, backend, m, plain := dumpSeq(t)
	sum := sha256.Sum256(plain)
	rewriteRawChecksum(t, backend, m.Key, "sha256:"+hex.EncodeToString(sum[:]))

	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}}); err != nil {
		t.Fatalf("verify of a manifest with a sha256 raw checksum: %v", err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}, VerifyFirst: true,
		Target: v1.RestoreTarget{Command: &v1.CommandTarget{Image: "x", Command: []string{"sh", "-c", `cat > "$0"`, out}}}}); err != nil {
		t.Fatalf("restore of a manifest with a sha256 raw checksum: %v", err)
	}
	if got, _ := os.ReadFile(out); string(got) != string(plain) {
		t.Errorf("restored %d bytes, want %d", len(got), len(plain))
	}

	other := sha256.Sum256(plain[1:])
	rewriteRawChecksum(t, backend, m.Key, "sha256:"+hex.EncodeToString(other[:]))
	assertPlainStreamRefused(t, backend, m.Key, id)

	// An algorithm backflow does not know is refused, never taken as a match.
	rewriteRawChecksum(t, backend, m.Key, "md5:"+strings.Repeat("0", 32))
	_, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, Identities: []age.Identity{id}})
	if !errors.Is(err, stages.ErrInvalidManifest) || !strings.Contains(err.Error(), "names no hash algorithm") {
		t.Errorf("verify of a raw checksum in md5: %v", err)
	}
}

// rewriteRawChecksum replaces the raw checksum the manifest of key records.
func rewriteRawChecksum(t *testing.T, b storage.Backend, key, checksum string) {
	t.Helper()
	m, err := stages.ReadManifest(context.Background(), b, key)
	if err != nil {
		t.Fatal(err)
	}
	m.RawChecksum = checksum
	if err := stages.WriteManifest(context.Background(), b, m); err != nil {
		t.Fatal(err)
	}
}

// assertPlainStreamRefused checks that verify and a streaming restore of key
// fail on the plain stream's checksum, the stored object's being intact.
func assertPlainStreamRefused(t *testing.T, b storage.Backend, key string, id age.Identity) {
	t.Helper()
	ctx := context.Background()
	_, err := stages.Verify(ctx, stages.VerifyConfig{Storage: b, Key: key, Identities: []age.Identity{id}})
	if !errors.Is(err, stages.ErrChecksumMismatch) || !strings.Contains(err.Error(), "decoded stream") {
		t.Errorf("verify of a plain stream the manifest does not record: %v", err)
	}
	target := v1.RestoreTarget{Command: &v1.CommandTarget{Image: "x", Command: []string{"sh", "-c", "cat > /dev/null"}}}
	_, err = stages.Restore(ctx, stages.RestoreConfig{Storage: b, Key: key, Identities: []age.Identity{id}, Target: target, Stderr: io.Discard})
	if !errors.Is(err, stages.ErrChecksumMismatch) {
		t.Errorf("restore of a plain stream the manifest does not record: %v", err)
	}
}
