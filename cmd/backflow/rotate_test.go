package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
)

// backflow rotate --dry-run prints the decision for every backup of the
// series, in the time zone asked for, and deletes nothing; -o json prints it
// as data.
func TestRotateDryRunPrintsTheDecision(t *testing.T) {
	dir := t.TempDir()
	backend, err := storage.NewFileBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var keys []string
	for day := range 4 {
		at := time.Date(2026, 11, 27+day, 23, 30, 0, 0, time.UTC)
		m, err := stages.Dump(ctx, stages.DumpConfig{
			Source:  v1.BackupSource{Command: &v1.CommandSource{Command: []string{"sh", "-c", "echo data"}}},
			Storage: backend, PathTemplate: `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`,
			Namespace: "apps", Name: "nightly", Series: "nightly", StorageID: "apps/minio", Now: func() time.Time { return at },
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: m.Key}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, m.Key)
	}
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := newRootCommand()
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"rotate", "--storage", "file://" + dir, "--key", keys[3], "--keep-daily", "2", "--timezone", "Europe/Berlin", "--dry-run"}, args...))
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %s", err, out.String())
		}
		return out.String()
	}
	table := run()
	t.Log("\n" + table)
	for _, want := range []string{
		`series apps/nightly of storage "apps/minio", listed below apps/nightly/:`,
		"KEY                                    TIME                  VERIFIED  ACTION        WHY",
		keys[3] + "  2026-12-01 00:30 CET  yes       kept          newest verified, keepDaily 2026-12-01",
		keys[2] + "  2026-11-30 00:30 CET  yes       kept          keepDaily 2026-11-30",
		keys[0] + "  2026-11-28 00:30 CET  yes       would delete  not in any rule",
		"kept 2, would delete (dry run) 2; left alone 0 objects below the scope",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("the table has no line\n%s", want)
		}
	}
	var res stages.RotateResult
	if err := json.Unmarshal([]byte(run("-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Kept != 2 || res.Deleted != 2 || len(res.Decisions) != 4 || !res.DryRun {
		t.Errorf("json %+v", res)
	}
	for _, key := range keys {
		if _, err := backend.Stat(ctx, key); err != nil {
			t.Errorf("a dry run deleted %s", key)
		}
	}
}
