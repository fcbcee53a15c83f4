// Package catalog says what backups a storage holds, from their manifests
// alone: for backflow list and show, and for restore and verify --latest,
// which need nothing but the bucket's credentials (no cluster). It reads
// the storage with stages.ReadManifestsBelow, the reader rotate decides on.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/storage"
)

// Filter selects backups by what their manifest records; an empty field
// selects every value.
type Filter struct {
	Namespace string
	Series    string
	// Storage is the BackupStorage as <namespace>/<name>.
	Storage string
}

func (f Filter) matches(m *stages.Manifest) bool {
	return (f.Namespace == "" || m.Namespace == f.Namespace) &&
		(f.Series == "" || m.Series == f.Series) &&
		(f.Storage == "" || m.Storage == f.Storage)
}

// Backup is one backup as a manifest describes it, with what the listing
// adds: whether it was verified and whether its object is there.
type Backup struct {
	stages.Manifest
	Verified bool `json:"verified"`
	// ObjectMissing says the manifest's object is gone (a deletion was
	// interrupted): it cannot be restored.
	ObjectMissing bool `json:"objectMissing,omitempty"`
}

// seriesID names the series a backup belongs to.
func (b Backup) seriesID() seriesID {
	return seriesID{b.Namespace, b.Series, b.Storage}
}

type seriesID struct{ namespace, series, storage string }

func (s seriesID) String() string {
	storage := s.storage
	if storage == "" {
		storage = "(none recorded)"
	}
	return fmt.Sprintf("series %s/%s of storage %s", s.namespace, s.series, storage)
}

// Catalog is what a listing found.
type Catalog struct {
	// Backups that the filter selects, by namespace, series and storage,
	// newest first within a series.
	Backups []Backup
	// WithoutManifest counts the objects below the prefix that have no
	// manifest: they are not backups (files backflow did not write, a dump
	// killed before its manifest, the hidden segments of a running dump).
	WithoutManifest int
	// Unreadable are the manifests this backflow cannot read.
	Unreadable []string
}

// ListManifests lists the backups below prefix (a key prefix ending in '/',
// or "" for the whole storage) that the filter selects.
func ListManifests(ctx context.Context, b storage.Backend, prefix string, f Filter) (*Catalog, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		return nil, fmt.Errorf("prefix %q must end with '/'", prefix)
	}
	listing, err := stages.ReadManifestsBelow(ctx, b, prefix)
	if err != nil {
		return nil, err
	}
	c := &Catalog{WithoutManifest: len(listing.WithoutManifest), Unreadable: listing.Unreadable}
	for _, l := range listing.Manifests {
		if !f.matches(l.Manifest) {
			continue
		}
		c.Backups = append(c.Backups, Backup{Manifest: *l.Manifest, Verified: l.VerifiedAt != nil, ObjectMissing: l.ObjectMissing})
	}
	sort.SliceStable(c.Backups, func(i, j int) bool {
		a, b := c.Backups[i], c.Backups[j]
		if a.seriesID() != b.seriesID() {
			return a.seriesID().String() < b.seriesID().String()
		}
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.After(b.StartedAt)
		}
		return a.Key > b.Key
	})
	return c, nil
}

// Show is the backup whose object is key: its manifest, whether it was
// verified and whether the object is there.
func Show(ctx context.Context, b storage.Backend, key string) (*Backup, error) {
	m, err := stages.ReadManifest(ctx, b, key)
	if err != nil {
		return nil, err
	}
	m.Key = key
	_, err = b.Stat(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	}
	return &Backup{Manifest: *m, Verified: m.VerifiedAt != nil, ObjectMissing: err != nil}, nil
}

// AmbiguousError says that the newest verified backup is not one: several
// series match, each with its own newest.
type AmbiguousError struct {
	Candidates []Backup
}

func (e *AmbiguousError) Error() string {
	var lines []string
	for _, c := range e.Candidates {
		lines = append(lines, fmt.Sprintf("  %s: %s (%s)", c.seriesID(), c.Key, c.StartedAt.UTC().Format("2006-01-02T15:04:05Z")))
	}
	return fmt.Sprintf("%d series hold verified backups that match; name one with --namespace, --series and --storage-id:\n%s",
		len(e.Candidates), strings.Join(lines, "\n"))
}

// LatestVerified is the newest verified backup of the catalog whose object
// is there. It must belong to one series: when several series (of other
// namespaces or storages) match, it refuses with an *AmbiguousError that
// lists each series' newest verified backup, rather than pick one.
func (c *Catalog) LatestVerified() (*Backup, error) {
	newest := map[seriesID]int{}
	var order []seriesID
	for i, b := range c.Backups {
		if !b.Verified || b.ObjectMissing {
			continue
		}
		id := b.seriesID()
		if _, ok := newest[id]; ok {
			continue // Backups are newest first within a series.
		}
		newest[id] = i
		order = append(order, id)
	}
	switch len(order) {
	case 0:
		unverified := 0
		for _, b := range c.Backups {
			if !b.Verified {
				unverified++
			}
		}
		return nil, fmt.Errorf("no verified backup matches (%d backups match, %d of them unverified)", len(c.Backups), unverified)
	case 1:
		b := c.Backups[newest[order[0]]]
		return &b, nil
	}
	err := &AmbiguousError{}
	for _, id := range order {
		err.Candidates = append(err.Candidates, c.Backups[newest[id]])
	}
	return nil, err
}
