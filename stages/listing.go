package stages

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/backflow-dev/backflow/stages/storage"
)

// ListedManifest is a manifest found by listing a storage, with the object
// beside it.
type ListedManifest struct {
	// Manifest as read; its Key is the key of the object beside it, whatever
	// key the manifest names, so that nothing a manifest says sends a reader
	// to another object.
	*Manifest
	// Object is the object the manifest describes; ObjectMissing says it is
	// gone (a deletion was interrupted between the object and its manifest).
	Object        storage.ObjectInfo
	ObjectMissing bool
}

// ManifestListing is what a storage holds below a directory, as backflow
// sees it: the backups (manifests and their objects), the objects without a
// manifest (not backups), and the manifests it cannot read.
type ManifestListing struct {
	// Manifests in key order.
	Manifests []ListedManifest
	// WithoutManifest are the objects that have no manifest beside them
	// (not even an unreadable one), keyed by their key.
	WithoutManifest map[string]storage.ObjectInfo
	// Unreadable are the keys of the manifests this backflow does not
	// understand (another tool's file of that name, a newer format).
	Unreadable []string
}

// manifestReaders is how many manifests ReadManifestsBelow reads at once:
// a storage that holds thousands of backups answers in seconds, not minutes.
const manifestReaders = 8

// ReadManifestsBelow lists dir (a key prefix ending in '/', or "" for the
// whole storage) with its subdirectories and reads every manifest there.
// It is the one reader of a storage's manifests: rotate decides on what it
// returns, and the catalog (backflow list, restore --latest) shows it. A
// manifest deleted while it is read (a concurrent rotation) is left out.
func ReadManifestsBelow(ctx context.Context, b storage.Backend, dir string) (*ManifestListing, error) {
	objects, err := b.List(ctx, dir)
	if err != nil {
		return nil, err
	}
	data := map[string]storage.ObjectInfo{}
	var keys []string
	for _, o := range objects {
		if IsManifestKey(o.Key) {
			keys = append(keys, strings.TrimSuffix(o.Key, ManifestSuffix))
		} else {
			data[o.Key] = o
		}
	}
	sort.Strings(keys)

	type result struct {
		m   *Manifest
		err error
	}
	results := make([]result, len(keys))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(manifestReaders, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				m, err := ReadManifest(ctx, b, keys[i])
				results[i] = result{m, err}
			}
		}()
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()

	out := &ManifestListing{WithoutManifest: data}
	for i, key := range keys {
		m, err := results[i].m, results[i].err
		// An object beside a manifest is never one without a manifest, even
		// when its manifest is unreadable or was deleted as it was read.
		o, ok := data[key]
		delete(data, key)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			continue
		case errors.Is(err, ErrInvalidManifest):
			out.Unreadable = append(out.Unreadable, key+ManifestSuffix)
			continue
		case err != nil:
			return nil, err
		}
		m.Key = key
		out.Manifests = append(out.Manifests, ListedManifest{Manifest: m, Object: o, ObjectMissing: !ok})
	}
	return out, nil
}
