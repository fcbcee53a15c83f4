package stages

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/stages/storage"
)

// RotateConfig is what a rotation needs.
type RotateConfig struct {
	Storage storage.Backend
	// Series is the directory whose backups are rotated (a key prefix ending
	// in '/'); nothing outside it is touched.
	Series string
	// Days keeps backups younger than this many days; nil for no such rule.
	Days *int
	// KeepLast keeps this many newest backups; nil for no such rule.
	KeepLast *int
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	Now    func() time.Time
}

// RotateResult says what a rotation did.
type RotateResult struct {
	// Kept and Deleted are backups' keys, newest first.
	Kept    []string
	Deleted []string
	// Orphans are objects without a manifest, left by a dump that failed
	// between upload and manifest, that were deleted.
	Orphans []string
}

// orphanGrace is how old an object without a manifest must be before rotate
// deletes it: a dump that is finishing writes its manifest within moments.
const orphanGrace = time.Hour

// Rotate applies retention to one series. A backup is deleted only when
// every rule set allows it, and the newest verified backup is always kept.
// Deleting removes the manifest first, so a backup that is half deleted is
// no longer a backup. Two rotations of the same series at once do no harm:
// both delete the same keys, and deleting is idempotent.
func Rotate(ctx context.Context, cfg RotateConfig) (*RotateResult, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Series != "" && !strings.HasSuffix(cfg.Series, "/") {
		return nil, fmt.Errorf("series %q must end with '/'", cfg.Series)
	}
	if cfg.Days == nil && cfg.KeepLast == nil {
		return nil, errors.New("retention has no rule: set days, keepLast or both")
	}
	objects, err := cfg.Storage.List(ctx, cfg.Series)
	if err != nil {
		return nil, err
	}
	data := map[string]storage.ObjectInfo{}
	var manifests []string
	for _, o := range objects {
		if IsManifestKey(o.Key) {
			manifests = append(manifests, strings.TrimSuffix(o.Key, ManifestSuffix))
		} else {
			data[o.Key] = o
		}
	}
	var backups []*Manifest
	for _, key := range manifests {
		if _, ok := data[key]; !ok {
			continue // a half-deleted backup: its manifest goes below
		}
		m, err := ReadManifest(ctx, cfg.Storage, key)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted by a concurrent rotation
			}
			return nil, err
		}
		m.Key = key
		backups = append(backups, m)
	}
	sort.Slice(backups, func(i, j int) bool {
		if !backups[i].StartedAt.Equal(backups[j].StartedAt) {
			return backups[i].StartedAt.After(backups[j].StartedAt)
		}
		return backups[i].Key > backups[j].Key
	})

	now := cfg.Now()
	newestGood := -1
	for i, m := range backups {
		if m.VerifiedAt != nil {
			newestGood = i
			break
		}
	}
	res := &RotateResult{}
	var toDelete []string
	for i, m := range backups {
		keep := i == newestGood
		if cfg.KeepLast != nil && i < *cfg.KeepLast {
			keep = true
		}
		if cfg.Days != nil && now.Sub(m.StartedAt) < time.Duration(*cfg.Days)*24*time.Hour {
			keep = true
		}
		// Without a verified backup, nothing is known to be good: keep all.
		if newestGood < 0 {
			keep = true
		}
		if keep {
			res.Kept = append(res.Kept, m.Key)
		} else {
			res.Deleted = append(res.Deleted, m.Key)
			toDelete = append(toDelete, m.Key+ManifestSuffix, m.Key)
		}
	}
	var cutoff time.Time
	if newestGood >= 0 {
		cutoff = backups[newestGood].StartedAt
	}
	isManifest := map[string]bool{}
	for _, k := range manifests {
		isManifest[k] = true
	}
	for key, o := range data {
		if isManifest[key] || newestGood < 0 {
			continue
		}
		if o.LastModified.Before(cutoff) && now.Sub(o.LastModified) > orphanGrace {
			res.Orphans = append(res.Orphans, key)
			toDelete = append(toDelete, key)
		}
	}
	for _, key := range manifests {
		if _, ok := data[key]; !ok {
			toDelete = append(toDelete, key+ManifestSuffix)
		}
	}
	sort.Strings(res.Orphans)
	if cfg.DryRun {
		return res, nil
	}
	for _, key := range toDelete {
		if err := cfg.Storage.Delete(ctx, key); err != nil {
			return res, err
		}
	}
	return res, nil
}
