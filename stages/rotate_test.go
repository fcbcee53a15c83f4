package stages_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/retention"
	"github.com/backflow-dev/backflow/stages/storage"
)

// series names one series of backups in one storage.
type series struct{ namespace, name, storageID string }

var (
	shop = series{"apps", "shop", "apps/minio"}
	blog = series{"apps", "blog", "apps/minio"}
)

// dumpAt stores a backup of the series, made at the given time, and verifies
// it when asked.
func dumpAt(t *testing.T, b storage.Backend, template string, s series, at time.Time, verify bool) string {
	t.Helper()
	ctx := context.Background()
	m, err := stages.Dump(ctx, stages.DumpConfig{
		Source: commandSource("echo " + s.name + " " + at.String()), Storage: b, PathTemplate: template,
		Namespace: s.namespace, Name: s.name, Series: s.name, StorageID: s.storageID, Now: func() time.Time { return at },
	})
	if err != nil {
		t.Fatal(err)
	}
	if verify {
		if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: b, Key: m.Key}); err != nil {
			t.Fatal(err)
		}
	}
	return m.Key
}

func rotate(t *testing.T, b storage.Backend, template string, s series, rules retention.Rules, now time.Time) *stages.RotateResult {
	t.Helper()
	res, err := stages.Rotate(context.Background(), rotateConfig(t, b, template, s, rules, now))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func rotateConfig(t *testing.T, b storage.Backend, template string, s series, rules retention.Rules, now time.Time) stages.RotateConfig {
	t.Helper()
	scope, err := pathtemplate.Scope(template, s.namespace, s.name)
	if err != nil {
		t.Fatal(err)
	}
	return stages.RotateConfig{
		Storage: b, Scope: scope, Namespace: s.namespace, Series: s.name, StorageID: s.storageID,
		Rules: rules, Now: func() time.Time { return now },
	}
}

// listAll is every key of the backend.
func listAll(t *testing.T, b storage.Backend) []string {
	t.Helper()
	objects, err := b.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objects {
		keys = append(keys, o.Key)
	}
	return keys
}

// withManifests is each key and its manifest, sorted.
func withManifests(keys ...string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k, k+stages.ManifestSuffix)
	}
	sort.Strings(out)
	return out
}

// without is keys minus the removed ones, sorted.
func without(keys []string, removed []string) []string {
	gone := map[string]bool{}
	for _, k := range removed {
		gone[k] = true
	}
	var out []string
	for _, k := range keys {
		if !gone[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func actions(res *stages.RotateResult) map[string]string {
	out := map[string]string{}
	for _, d := range res.Decisions {
		out[d.Key] = string(d.Action) + ": " + d.Why()
	}
	return out
}

func n(v int) *int { return &v }

// Two series, a backup of another namespace's series of the same name, a
// manifest without a storage, an unreadable manifest and files backflow did
// not write share one directory, as backup-operator.io's examples do:
// rotating one series deletes its own backups and nothing else.
func TestRotateTouchesOnlyItsSeries(t *testing.T) {
	backend := s3(t)
	template := `backups/{{ .Series }}-{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	var shopKeys, blogKeys []string
	for day := range 4 {
		shopKeys = append(shopKeys, dumpAt(t, backend, template, shop, base.AddDate(0, 0, day), true))
		blogKeys = append(blogKeys, dumpAt(t, backend, template, blog, base.AddDate(0, 0, day).Add(time.Minute), true))
	}
	otherNamespace := dumpAt(t, backend, template, series{"other", "shop", "other/minio"}, base.Add(-time.Hour), true)
	otherStorage := dumpAt(t, backend, template, series{"apps", "shop", "apps/offsite"}, base.Add(-2*time.Hour), true)
	legacy := dumpAt(t, backend, template, series{"apps", "shop", ""}, base.Add(-3*time.Hour), true)
	ctx := context.Background()
	for key, data := range map[string]string{
		"backups/README.txt":                           "not backflow's",
		"backups/shop-notes.txt":                       "not backflow's either",
		"backups/shop-garbage" + stages.ManifestSuffix: "{not json",
	} {
		if err := backend.Put(ctx, key, strings.NewReader(data), nil); err != nil {
			t.Fatal(err)
		}
	}
	before := listAll(t, backend)
	now := base.AddDate(0, 0, 10)

	// Two rotations at once each decide the same and delete the same keys;
	// deleting is idempotent.
	results := make([]*stages.RotateResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i], errs[i] = stages.Rotate(ctx, rotateConfig(t, backend, template, shop, retention.Rules{KeepLast: n(1)}, now))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Each keeps the newest; together they delete the older three, each
	// skipping what the other had deleted already.
	deleted := map[string]bool{}
	for _, res := range results {
		for key, action := range actions(res) {
			switch {
			case key == shopKeys[3] && action == "kept: newest verified, keepLast 1":
			case (key == shopKeys[0] || key == shopKeys[1] || key == shopKeys[2]) && action == "deleted: not in any rule":
				deleted[key] = true
			default:
				t.Errorf("%s %s", key, action)
			}
		}
		if res.Kept != 1 {
			t.Errorf("kept %d", res.Kept)
		}
	}
	if len(deleted) != 3 {
		t.Errorf("deleted %v, want the three older backups", deleted)
	}
	// Once they are done, what is left below the scope: the newest backup of
	// the series, and as foreign blog's 4, the other namespace's, the other
	// storage's, the legacy one, the unreadable manifest and the two files.
	cfg := rotateConfig(t, backend, template, shop, retention.Rules{KeepLast: n(1)}, now)
	cfg.DryRun = true
	res, err := stages.Rotate(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Kept != 1 || res.Deleted != 0 || res.Foreign != 10 {
		t.Errorf("kept %d, deleted %d, foreign %d", res.Kept, res.Deleted, res.Foreign)
	}
	if got, want := listAll(t, backend), without(before, withManifests(shopKeys[:3]...)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left:\n%v\nwant:\n%v", got, want)
	}
	for _, key := range append(blogKeys, otherNamespace, otherStorage, legacy) {
		if _, err := stages.ReadManifest(ctx, backend, key); err != nil {
			t.Errorf("a backup of another series was touched: %v", err)
		}
	}

	// Without any rule, rotate refuses.
	if _, err := stages.Rotate(ctx, rotateConfig(t, backend, template, shop, retention.Rules{}, now)); err == nil {
		t.Error("rotate without rules must refuse")
	}
}

// A series whose keys spread over dated directories is rotated across them,
// and a series whose name starts with this one's is not part of it.
func TestRotateSeriesOverDatedDirectories(t *testing.T) {
	backend := s3(t)
	template := `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "2006/01/02" }}/db{{ .Extension }}`
	var keys []string
	for _, day := range []string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"} {
		at, _ := time.Parse(time.DateOnly, day)
		keys = append(keys, dumpAt(t, backend, template, shop, at.Add(3*time.Hour), true))
	}
	sibling := dumpAt(t, backend, template, series{"apps", "shop-eu", "apps/minio"}, time.Date(2026, 10, 29, 3, 0, 0, 0, time.UTC), true)
	before := listAll(t, backend)
	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)

	// The backup just written must be one of the series below the scope.
	cfg := rotateConfig(t, backend, template, shop, retention.Rules{KeepDaily: n(2)}, now)
	cfg.Key = sibling
	if _, err := stages.Rotate(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "outside the scope") {
		t.Errorf("a key outside the scope: %v", err)
	}
	cfg.Scope, cfg.Key = "apps/", sibling
	if _, err := stages.Rotate(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "is not a backup of series apps/shop") {
		t.Errorf("a key of another series: %v", err)
	}
	if got := listAll(t, backend); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a refused rotation deleted %v", without(before, got))
	}

	cfg = rotateConfig(t, backend, template, shop, retention.Rules{KeepDaily: n(2)}, now)
	cfg.Key = keys[3]
	if cfg.Scope != "apps/shop/" {
		t.Errorf("scope %q", cfg.Scope)
	}
	res, err := stages.Rotate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		keys[3]: "kept: newest verified, keepDaily 2026-11-02", keys[2]: "kept: keepDaily 2026-11-01",
		keys[1]: "deleted: not in any rule", keys[0]: "deleted: not in any rule",
	}
	if got := actions(res); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decisions %v\nwant %v", got, want)
	}
	if got, want := listAll(t, backend), without(before, withManifests(keys[:2]...)); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left:\n%v\nwant:\n%v", got, want)
	}
}

// An object without a manifest is deleted only when its metadata proves the
// series' dump wrote it, it is older than the grace period and older than the
// newest verified backup; a manifest without its object only when it names
// the series; and nothing while the series has no verified backup.
func TestRotateOrphans(t *testing.T) {
	ctx := context.Background()
	backend := s3(t)
	template := `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`
	proof := func(s series) map[string]string {
		return map[string]string{stages.MetadataNamespace: s.namespace, stages.MetadataSeries: s.name, stages.MetadataStorage: s.storageID}
	}
	orphans := map[string]map[string]string{
		"apps/shop/proven.pgdump":        proof(shop),
		"apps/shop/foreign.pgdump":       nil,
		"apps/shop/other-series.pgdump":  proof(blog),
		"apps/shop/other-storage.pgdump": proof(series{"apps", "shop", "apps/offsite"}),
	}
	for key, metadata := range orphans {
		if err := backend.Put(ctx, key, strings.NewReader("a dump whose manifest was never written"), metadata); err != nil {
			t.Fatal(err)
		}
	}
	// The backups come after the orphans: their dumps start in a minute.
	start := time.Now().Add(time.Minute).Truncate(time.Second)
	older := dumpAt(t, backend, template, shop, start, false)
	newer := dumpAt(t, backend, template, shop, start.Add(time.Minute), false)
	halfDeleted := dumpAt(t, backend, template, shop, start.Add(-time.Hour), true)
	if err := backend.Delete(ctx, halfDeleted); err != nil {
		t.Fatal(err)
	}
	before := listAll(t, backend)
	later := start.Add(3 * time.Hour)

	// No verified backup: nothing is deleted, not a proven orphan, not a
	// manifest without its object.
	res := rotate(t, backend, template, shop, retention.Rules{KeepLast: n(0)}, later)
	if got := listAll(t, backend); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("without a verified backup rotate deleted %v", without(before, got))
	}
	if a := actions(res); a[older] != "kept: "+retention.ReasonNoVerified || a[newer] != "kept: "+retention.ReasonNoVerified || a[halfDeleted] != "kept: "+retention.ReasonNoVerified {
		t.Errorf("decisions %v", a)
	}

	for _, key := range []string{older, newer} {
		if _, err := stages.Verify(ctx, stages.VerifyConfig{Storage: backend, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	// Within the grace period the proven orphan stays; the manifest without
	// its object, which names the series, goes.
	rotate(t, backend, template, shop, retention.Rules{KeepLast: n(5)}, time.Now().Add(30*time.Minute))
	if got, want := listAll(t, backend), without(before, []string{halfDeleted + stages.ManifestSuffix}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("within the grace period rotate deleted %v", without(before, got))
	}
	before = listAll(t, backend)
	// Past it, the proven orphan goes, and nothing else.
	res = rotate(t, backend, template, shop, retention.Rules{KeepLast: n(5)}, later)
	if got, want := listAll(t, backend), without(before, []string{"apps/shop/proven.pgdump"}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left:\n%v\nwant:\n%v", got, want)
	}
	if a := actions(res); !strings.HasPrefix(a["apps/shop/proven.pgdump"], "deleted: no manifest; written by this series' dump") {
		t.Errorf("decisions %v", a)
	}

	// A proven orphan newer than the newest verified backup stays: the run
	// that wrote it may still be writing its manifest.
	past := time.Now().Add(-10 * time.Hour).Truncate(time.Second)
	dumpAt(t, backend, template, blog, past, true)
	if err := backend.Put(ctx, "apps/blog/late.pgdump", strings.NewReader("late"), proof(blog)); err != nil {
		t.Fatal(err)
	}
	rotate(t, backend, template, blog, retention.Rules{KeepLast: n(1)}, time.Now().Add(3*time.Hour))
	if _, err := backend.Stat(ctx, "apps/blog/late.pgdump"); err != nil {
		t.Errorf("an orphan newer than the newest verified backup was deleted: %v", err)
	}
}

// A manifest without its object is removed when it names the series; one of
// another series stays.
func TestRotateHalfDeletedBackups(t *testing.T) {
	ctx := context.Background()
	backend := s3(t)
	template := `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`
	base := time.Date(2026, 11, 1, 3, 0, 0, 0, time.UTC)
	kept := dumpAt(t, backend, template, shop, base.Add(time.Hour), true)
	half := dumpAt(t, backend, template, shop, base, true)
	if err := backend.Delete(ctx, half); err != nil {
		t.Fatal(err)
	}
	foreign := &stages.Manifest{Key: "apps/shop/blog-manifest-only", Namespace: "apps", Series: "blog", Storage: "apps/minio"}
	if err := stages.WriteManifest(ctx, backend, foreign); err != nil {
		t.Fatal(err)
	}
	res := rotate(t, backend, template, shop, retention.Rules{KeepLast: n(3)}, base.AddDate(0, 0, 1))
	want := []string{kept, kept + stages.ManifestSuffix, foreign.Key + stages.ManifestSuffix}
	if got := listAll(t, backend); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if a := actions(res); a[half] != "deleted: manifest without its object (a deletion was interrupted)" {
		t.Errorf("decisions %v", a)
	}
}

// The report an output parameter carries stays small whatever the series.
func TestRotationReportIsBounded(t *testing.T) {
	var backups []retention.Backup
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5000 {
		at := base.Add(time.Duration(i) * time.Hour)
		backups = append(backups, retention.Backup{Key: "apps/shop/" + strings.Repeat("x", 200) + at.Format(time.RFC3339), Time: at, Verified: true})
	}
	decisions := retention.Decide(backups, retention.Rules{KeepDaily: n(7)}, base.AddDate(1, 0, 0), time.UTC)
	res := &stages.RotateResult{Decisions: decisions, Kept: 7, Deleted: len(decisions) - 7}
	rep := res.Report()
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > stages.MaxReportedBytes {
		t.Errorf("report of %d bytes", len(data))
	}
	if rep.Deleted != 4993 || rep.Kept != 7 || len(rep.DeletedKeys) == 0 || rep.Omitted+len(rep.Decisions) != 5000 {
		t.Errorf("kept %d deleted %d keys %d omitted %d decisions %d", rep.Kept, rep.Deleted, len(rep.DeletedKeys), rep.Omitted, len(rep.Decisions))
	}
	if rep.Decisions[0].Action != retention.ActionDeleted {
		t.Errorf("the deleted decisions come first: %+v", rep.Decisions[0])
	}
}
