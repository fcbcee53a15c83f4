package stages_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
	"github.com/backflow-dev/backflow/test/servers"
)

// Two dumps that render the same key at the same time, both past the check
// that the key is free: one stores its backup, the other fails naming the
// key, stores nothing and leaves the winner's object and manifest alone.
func TestConcurrentDumpsToOneKey(t *testing.T) {
	backend := s3(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	manifests := make([]*stages.Manifest, 2)
	errs := make([]error, 2)
	for i := range 2 {
		// Each writes 20 MB, then waits until both have, so that both
		// uploads complete at about the same time.
		script := fmt.Sprintf(`head -c 20000000 /dev/urandom; touch %[1]s/ready-%[2]d
while [ ! -e %[1]s/ready-0 ] || [ ! -e %[1]s/ready-1 ]; do sleep 0.05; done`, dir, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			manifests[i], errs[i] = stages.Dump(context.Background(), stages.DumpConfig{
				Source: commandSource(script), Storage: backend, PathTemplate: "series/{{ .Name }}", Name: "same", Stderr: io.Discard,
			})
		}()
	}
	wg.Wait()
	winner, loser := 0, 1
	if errs[0] != nil {
		winner, loser = 1, 0
	}
	if errs[winner] != nil {
		t.Fatalf("both dumps failed: %v; %v", errs[0], errs[1])
	}
	err := errs[loser]
	if err == nil || !errors.Is(err, storage.ErrExists) || !strings.Contains(err.Error(), backend.String()+"/series/same already exists") ||
		!strings.Contains(err.Error(), "nothing was stored") || storage.IsTransient(err) {
		t.Fatalf("the second dump: %v, want a refusal to overwrite naming the key", err)
	}
	m, err := stages.ReadManifest(context.Background(), backend, "series/same")
	if err != nil {
		t.Fatal(err)
	}
	r, err := backend.Get(context.Background(), "series/same")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != m.Checksum || m.Checksum != manifests[winner].Checksum {
		t.Errorf("object %s, manifest %s, winner %s: the winner's backup was touched", got, m.Checksum, manifests[winner].Checksum)
	}
	assertNoUploads(t, backend)
}

func assertNoUploads(t *testing.T, b *storage.S3Backend) {
	t.Helper()
	for up := range b.Client().ListIncompleteUploads(context.Background(), b.Bucket(), b.FullKey(""), true) {
		t.Errorf("unfinished multipart upload left: %s %s (%v)", up.Key, up.UploadID, up.Err)
	}
}

// The storage going away mid-dump fails the dump as transient (what the
// step's exit code 75 is made of), with the storage's error rather than the
// pipe's, and leaves nothing once the storage is back.
func TestDumpDuringStorageOutageIsTransient(t *testing.T) {
	server, err := servers.StartMinIO()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	b, err := storage.Open(server.StorageURL("outage"), storage.Credentials{AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	backend := b.(*storage.S3Backend)
	started := filepath.Join(t.TempDir(), "started")
	go func() {
		for {
			if _, err := os.Stat(started); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		server.Kill()
		time.Sleep(3 * time.Second) // the outage; the dump's abort keeps trying
		if err := server.Restart(); err != nil {
			t.Error(err)
		}
	}()
	// 40 MB, a marker once the upload is under way, then more.
	script := fmt.Sprintf("head -c 40000000 /dev/urandom; touch %s; head -c 40000000 /dev/urandom", started)
	_, err = stages.Dump(context.Background(), stages.DumpConfig{
		Source: commandSource(script), Storage: backend, PathTemplate: "{{ .Name }}", Name: "x", Stderr: io.Discard,
	})
	if !storage.IsTransient(err) || !strings.Contains(err.Error(), "nothing was stored") || strings.Contains(err.Error(), "the upload ended") {
		t.Fatalf("err = %v, want a transient storage failure", err)
	}
	assertBucketEmpty(t, backend)
}
