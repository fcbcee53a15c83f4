package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// partialSuffix marks a file being written; such files are never listed.
const partialSuffix = ".backflow-partial"

// FileBackend keeps objects as files below a directory. A file appears under
// its name only once it is complete.
type FileBackend struct {
	dir string
}

// NewFileBackend stores below dir, creating it when needed.
func NewFileBackend(dir string) (*FileBackend, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("file storage needs an absolute directory, got %q", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	return &FileBackend{dir: dir}, nil
}

func (b *FileBackend) String() string { return "file://" + b.dir }

func (b *FileBackend) path(key string) string {
	return filepath.Join(b.dir, filepath.FromSlash(key))
}

func (b *FileBackend) Put(ctx context.Context, key string, r io.Reader, _ map[string]string) error {
	return b.write(ctx, key, r, os.Rename)
}

// Create links the complete file to its name, which fails when the name
// exists: no other writer's file is ever replaced.
func (b *FileBackend) Create(ctx context.Context, key string, r io.Reader, _ map[string]string) error {
	err := b.write(ctx, key, r, func(tmp, dst string) error {
		defer os.Remove(tmp)
		return os.Link(tmp, dst)
	})
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s/%s: %w", b, key, ErrExists)
	}
	return err
}

// write writes r into a partial file beside key and publishes it with
// publish(partial, final).
func (b *FileBackend) write(ctx context.Context, key string, r io.Reader, publish func(tmp, dst string) error) (err error) {
	dst := b.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*"+partialSuffix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, contextReader{ctx, r}); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return publish(f.Name(), dst)
}

func (b *FileBackend) Get(_ context.Context, key string) (io.ReadCloser, error) {
	f, err := os.Open(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s/%s: %w", b, key, ErrNotFound)
	}
	return f, err
}

func (b *FileBackend) Stat(_ context.Context, key string) (ObjectInfo, error) {
	fi, err := os.Stat(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("%s/%s: %w", b, key, ErrNotFound)
	}
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Key: key, Size: fi.Size(), LastModified: fi.ModTime()}, nil
}

func (b *FileBackend) List(_ context.Context, dir string) ([]ObjectInfo, error) {
	root := b.path(dir)
	var out []ObjectInfo
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted meanwhile, or no such directory
			}
			return err
		}
		if e.IsDir() || strings.HasSuffix(e.Name(), partialSuffix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: filepath.ToSlash(rel), Size: fi.Size(), LastModified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (b *FileBackend) Delete(_ context.Context, key string) error {
	err := os.Remove(b.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// contextReader fails reads once ctx is done, so that a cancelled Put stops.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
