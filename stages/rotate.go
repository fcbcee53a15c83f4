package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/retention"
	"github.com/backflow-dev/backflow/stages/storage"
)

// RotateConfig is what a rotation needs.
type RotateConfig struct {
	Storage storage.Backend
	// Scope is the directory (a key prefix ending in '/', or "" for the top)
	// listed, with its subdirectories, for the series' backups: see
	// pathtemplate.Scope. Nothing outside it is read or touched.
	Scope string
	// KeyPrefix, when set, is the namespace's prefix that Scope and Key must
	// lie inside: a rotation outside it lists and deletes nothing.
	KeyPrefix string
	// Namespace, Series and StorageID (<namespace>/<name> of the
	// BackupStorage) name the series: a backup belongs to it when its
	// manifest names all three. Everything else below Scope is left alone.
	Namespace, Series, StorageID string
	// Key is the backup that was just written, if any: it must lie inside
	// Scope and belong to the series, or the rotation deletes nothing and
	// fails (the path template or series it was given are not the dump's).
	Key string
	// Rules of the retention; at least one must be set.
	Rules retention.Rules
	// Location is the time zone of the calendar periods; nil for UTC.
	Location *time.Location
	// DryRun decides and reports, and deletes nothing.
	DryRun bool
	Now    func() time.Time
}

// RotateResult says what a rotation decided and did.
type RotateResult struct {
	// Decisions are about every object of the series: its backups newest
	// first, then orphans and manifests without an object.
	Decisions []retention.Decision `json:"decisions"`
	// Kept and Deleted count the decisions by action.
	Kept    int `json:"kept"`
	Deleted int `json:"deleted"`
	// Foreign counts the objects below the scope that are not the series'
	// own (other series, other namespaces or storages, files backflow did not
	// write, manifests without a storage): they were left alone.
	Foreign int  `json:"foreign"`
	DryRun  bool `json:"dryRun,omitempty"`
}

// OrphanGrace is how old an object without a manifest must be before rotate
// deletes it, besides being older than the newest verified backup and proven
// the series' own by its metadata: a dump that is finishing writes its
// manifest within moments.
const OrphanGrace = time.Hour

// Rotate applies retention to one series (see Decide for the rules). A
// backup belongs to the series when its manifest names the series'
// namespace, series and storage; an object without a manifest is deleted
// only when the metadata dump stored on it names the series, and it is older
// than OrphanGrace and than the newest verified backup; a manifest without
// its object only when it names the series. A manifest that names no storage
// (written before backflow recorded it) belongs to no series a storage is
// named for: it is reported as foreign and never deleted.
//
// Deleting removes the manifest first, so a backup that is half deleted is
// no longer a backup. Two rotations of the same series at once do no harm:
// both delete the same keys, and deleting is idempotent.
func Rotate(ctx context.Context, cfg RotateConfig) (*RotateResult, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Scope != "" && !strings.HasSuffix(cfg.Scope, "/") {
		return nil, fmt.Errorf("scope %q must end with '/'", cfg.Scope)
	}
	if cfg.Namespace == "" || cfg.Series == "" {
		return nil, errors.New("rotate needs the namespace and the series whose backups it rotates")
	}
	if cfg.Rules.IsEmpty() {
		return nil, errors.New("retention has no rule: set days, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly or keepYearly")
	}
	if cfg.KeyPrefix != "" {
		if err := pathtemplate.ConfineScope(cfg.KeyPrefix, cfg.Scope); err != nil {
			return nil, fmt.Errorf("rotate refused, nothing was listed or deleted: the series' scope: %w", err)
		}
	}
	if err := ConfineKey(cfg.KeyPrefix, cfg.Key); cfg.Key != "" && err != nil {
		return nil, fmt.Errorf("rotate refused, nothing was listed or deleted: the backup just written: %w", err)
	}
	if cfg.Key != "" && !strings.HasPrefix(cfg.Key, cfg.Scope) {
		return nil, fmt.Errorf("the backup just written, %s, lies outside the scope %q rotate lists; nothing was deleted (the path template rotate was given is not the dump's)", cfg.Key, cfg.Scope)
	}
	listing, err := ReadManifestsBelow(ctx, cfg.Storage, cfg.Scope)
	if err != nil {
		return nil, err
	}
	// Manifests this backflow cannot read are not ours to judge.
	res := &RotateResult{DryRun: cfg.DryRun, Foreign: len(listing.Unreadable)}
	var backups []retention.Backup
	var halfDeleted []retention.Decision
	for _, l := range listing.Manifests {
		if !cfg.owns(l.Manifest) {
			res.Foreign++
			continue
		}
		if l.ObjectMissing {
			halfDeleted = append(halfDeleted, retention.Decision{Key: l.Key, Time: l.StartedAt, Verified: l.VerifiedAt != nil, Kind: retention.KindManifest,
				Action: retention.ActionDeleted, Reasons: []string{"manifest without its object (a deletion was interrupted)"}})
			continue
		}
		backups = append(backups, retention.Backup{Key: l.Key, Time: l.StartedAt, Verified: l.VerifiedAt != nil})
	}
	if cfg.Key != "" && !containsBackup(backups, cfg.Key) {
		return nil, fmt.Errorf("the backup just written, %s, is not a backup of series %s/%s in storage %q below %q; nothing was deleted", cfg.Key, cfg.Namespace, cfg.Series, cfg.StorageID, cfg.Scope)
	}

	now := cfg.Now()
	res.Decisions = retention.Decide(backups, cfg.Rules, now, cfg.Location)
	var newestVerified time.Time
	for _, d := range res.Decisions {
		if d.Verified {
			newestVerified = d.Time
			break
		}
	}
	orphans, foreign, err := cfg.orphans(ctx, listing.WithoutManifest, newestVerified, now)
	if err != nil {
		return nil, err
	}
	res.Foreign += foreign
	if newestVerified.IsZero() {
		for i := range halfDeleted {
			halfDeleted[i].Action, halfDeleted[i].Reasons = retention.ActionKept, []string{retention.ReasonNoVerified}
		}
	}
	res.Decisions = append(append(res.Decisions, orphans...), halfDeleted...)

	var toDelete []string
	for _, d := range res.Decisions {
		if d.Action == retention.ActionKept {
			res.Kept++
			continue
		}
		res.Deleted++
		switch d.Kind {
		case retention.KindBackup:
			toDelete = append(toDelete, d.Key+ManifestSuffix, d.Key)
		case retention.KindOrphan:
			toDelete = append(toDelete, d.Key)
		case retention.KindManifest:
			toDelete = append(toDelete, d.Key+ManifestSuffix)
		}
	}
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

// owns says whether a manifest names the series being rotated.
func (cfg RotateConfig) owns(m *Manifest) bool {
	return m.Namespace == cfg.Namespace && m.Series == cfg.Series && m.Storage == cfg.StorageID
}

// orphans decides about the objects without a manifest: those the series'
// dump proved its own by their metadata are deleted once older than
// OrphanGrace and than the newest verified backup, and kept before; the
// others are counted as foreign, unread when they are too young to be
// deleted anyway.
func (cfg RotateConfig) orphans(ctx context.Context, data map[string]storage.ObjectInfo, newestVerified, now time.Time) ([]retention.Decision, int, error) {
	var out []retention.Decision
	foreign := 0
	for key, o := range data {
		oldEnough := !newestVerified.IsZero() && o.LastModified.Before(newestVerified) && now.Sub(o.LastModified) > OrphanGrace
		if !oldEnough {
			foreign++
			continue
		}
		info, err := cfg.Storage.Stat(ctx, key)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if info.Metadata[MetadataNamespace] != cfg.Namespace || info.Metadata[MetadataSeries] != cfg.Series || info.Metadata[MetadataStorage] != cfg.StorageID {
			foreign++
			continue
		}
		out = append(out, retention.Decision{Key: key, Time: o.LastModified, Kind: retention.KindOrphan, Action: retention.ActionDeleted, Reasons: []string{
			fmt.Sprintf("no manifest; written by this series' dump (its metadata), older than %s and than the newest verified backup", OrphanGrace),
		}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, foreign, nil
}

func containsBackup(backups []retention.Backup, key string) bool {
	for _, b := range backups {
		if b.Key == key {
			return true
		}
	}
	return false
}

// RotationReport is a rotation's result in bounded form: the rotate step's
// output parameter, which the controller reads into the Backup's status.
type RotationReport struct {
	Kept    int  `json:"kept"`
	Deleted int  `json:"deleted"`
	Foreign int  `json:"foreign,omitempty"`
	DryRun  bool `json:"dryRun,omitempty"`
	// DeletedKeys are the keys deleted, at most MaxReportedKeys of them.
	DeletedKeys []string `json:"deletedKeys,omitempty"`
	// Decisions are the result's decisions, the deleted ones first, as many
	// as fit; Omitted counts those left out.
	Decisions []retention.Decision `json:"decisions"`
	Omitted   int                  `json:"omitted,omitempty"`
}

// Bounds of a RotationReport: an output parameter lives in the Workflow's
// status, which etcd holds.
const (
	MaxReportedKeys  = 100
	MaxReportedBytes = 32 << 10
)

// Report is the result in bounded form, at most MaxReportedBytes of JSON.
func (r *RotateResult) Report() RotationReport {
	rep := RotationReport{Kept: r.Kept, Deleted: r.Deleted, Foreign: r.Foreign, DryRun: r.DryRun}
	var deleted, kept []retention.Decision
	for _, d := range r.Decisions {
		if d.Action == retention.ActionDeleted {
			deleted = append(deleted, d)
			if len(rep.DeletedKeys) < MaxReportedKeys {
				rep.DeletedKeys = append(rep.DeletedKeys, d.Key)
			}
		} else {
			kept = append(kept, d)
		}
	}
	rep.Decisions = append(deleted, kept...)
	for {
		data, _ := json.Marshal(rep)
		if len(data) <= MaxReportedBytes {
			break
		}
		// Drop a quarter at a time (the size is roughly linear in the count):
		// decisions first, then keys (Deleted still counts them all).
		if n := len(rep.Decisions); n > 0 {
			drop := max(1, n/4)
			rep.Decisions = rep.Decisions[:n-drop]
			rep.Omitted += drop
			continue
		}
		rep.DeletedKeys = rep.DeletedKeys[:len(rep.DeletedKeys)*3/4]
	}
	if rep.Decisions == nil {
		rep.Decisions = []retention.Decision{}
	}
	return rep
}
