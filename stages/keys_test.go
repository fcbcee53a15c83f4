package stages_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/retention"
)

// The steps check every key against the namespace's prefix they are given
// (--key-prefix), again after the controller did: a Workflow that passes
// them a key of another namespace (a hand-made one, or a Strict run
// template's arguments) writes, reads, lists and deletes nothing there.
// Without a prefix (a platform team's own Workflow) they do what their
// arguments say.
func TestStepsKeepToTheKeyPrefix(t *testing.T) {
	ctx := context.Background()
	backend := s3(t)
	bob := series{"bob", "nightly", "bob/minio"}
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	template := `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`
	// bob's own backups, written and verified without a prefix.
	bobKeys := []string{dumpAt(t, backend, template, bob, now.Add(-48*time.Hour), true), dumpAt(t, backend, template, bob, now.Add(-24*time.Hour), true)}
	before := listAll(t, backend)
	outside := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, pathtemplate.ErrOutsidePrefix) || !strings.Contains(err.Error(), `"alice/"`) {
			t.Errorf("%s: %v, want a refusal naming the prefix alice/", what, err)
		}
	}

	// dump renders a key of bob's: refused before the source runs.
	marker := filepath.Join(t.TempDir(), "ran")
	for _, path := range []string{`bob/{{ .Name }}{{ .Extension }}`, `{{ "bob" }}/x`, `alice{{ .Name }}`} {
		_, err := stages.Dump(ctx, stages.DumpConfig{
			Source: commandSource("touch " + marker + "; echo data"), Storage: backend, PathTemplate: path, KeyPrefix: "alice/",
			Namespace: "alice", Name: "nightly", Series: "nightly", Stderr: io.Discard,
		})
		outside("dump to "+path, err)
		if err != nil && !strings.Contains(err.Error(), "nothing was stored") {
			t.Errorf("dump to %s: %v does not say nothing was stored", path, err)
		}
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("the source ran for a key outside the prefix")
	}

	// verify and restore of bob's backup from alice's prefix.
	_, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: bobKeys[0], KeyPrefix: "alice/"})
	outside("verify", err)
	_, err = stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: "alice/../" + bobKeys[0], KeyPrefix: "alice/"})
	outside("verify through ..", err)
	target := v1.RestoreTarget{Command: &v1.CommandTarget{Image: "x", Command: []string{"sh", "-c", "cat > " + marker}}}
	_, err = stages.Restore(ctx, stages.RestoreConfig{Storage: backend, Key: bobKeys[1], KeyPrefix: "alice/", Target: target, VerifyFirst: true, Stderr: io.Discard})
	outside("restore", err)
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("the restore target ran for a key outside the prefix")
	}

	// rotate of bob's series with alice's prefix: its scope is bob's.
	keepNone := retention.Rules{Days: n(0)}
	cfg := rotateConfig(t, backend, template, bob, keepNone, now)
	cfg.KeyPrefix = "alice/"
	_, err = stages.Rotate(ctx, cfg)
	outside("rotate of bob's scope", err)
	// A scope inside alice's prefix with bob's backup as the one just
	// written.
	cfg = rotateConfig(t, backend, template, series{"alice", "nightly", "bob/minio"}, keepNone, now)
	cfg.KeyPrefix, cfg.Key = "alice/", bobKeys[1]
	_, err = stages.Rotate(ctx, cfg)
	outside("rotate with bob's key", err)
	// The top of the storage is outside every prefix.
	cfg = rotateConfig(t, backend, `{{ .Series }}-{{ .Timestamp | date "20060102T150405Z" }}`, bob, keepNone, now)
	cfg.KeyPrefix = "alice/"
	_, err = stages.Rotate(ctx, cfg)
	outside("rotate of the whole storage", err)

	if after := listAll(t, backend); !slices.Equal(before, after) {
		t.Errorf("the storage changed:\nbefore %v\nafter  %v", before, after)
	}

	// Inside the prefix every step works, also a prefix of the storage's
	// own namespace layout.
	alice := series{"alice", "nightly", "alice/minio"}
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source: commandSource("echo alice"), Storage: backend, PathTemplate: "tenants/" + template, KeyPrefix: "tenants/alice/",
		Namespace: alice.namespace, Name: alice.name, Series: alice.name, StorageID: alice.storageID, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key, KeyPrefix: "tenants/alice/"}); err != nil {
		t.Fatal(err)
	}
	cfg = rotateConfig(t, backend, "tenants/"+template, alice, retention.Rules{KeepLast: n(1)}, now)
	cfg.KeyPrefix, cfg.Key = "tenants/alice/", m.Key
	if res, err := stages.Rotate(ctx, cfg); err != nil || res.Kept != 1 {
		t.Fatalf("rotate inside the prefix: %+v, %v", res, err)
	}
}
