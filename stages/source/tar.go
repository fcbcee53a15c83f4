package source

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// TarPaths streams a tar archive of paths (relative to root; the whole of
// root when none) as it walks them. Symbolic links are stored as links, not
// followed; sockets and devices are skipped.
func TarPaths(root string, paths []string) io.ReadCloser {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := writeTar(tw, root, paths)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr
}

func writeTar(tw *tar.Writer, root string, paths []string) error {
	for _, p := range paths {
		clean := path.Clean(strings.TrimPrefix(p, "/"))
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("path %q is outside the volume", p)
		}
		start := filepath.Join(root, filepath.FromSlash(clean))
		if _, err := os.Lstat(start); err != nil {
			return fmt.Errorf("path %q: %w", p, err)
		}
		err := filepath.WalkDir(start, func(file string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, file)
			if err != nil {
				return err
			}
			if rel == "." {
				return nil
			}
			return writeTarEntry(tw, file, filepath.ToSlash(rel), d)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func writeTarEntry(tw *tar.Writer, file, name string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	var link string
	switch mode := info.Mode(); {
	case mode.IsRegular(), mode.IsDir():
	case mode&fs.ModeSymlink != 0:
		if link, err = os.Readlink(file); err != nil {
			return err
		}
	default:
		fmt.Fprintf(os.Stderr, "skipping %s: not a file, directory or link\n", name)
		return nil
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file that shrinks while it is read would corrupt the archive; one that
	// grows is cut at the size in its header.
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// Untar extracts a tar stream into dir. Every operation is confined to dir
// (os.Root), so entries with '..' or absolute names, or that would write
// through a symbolic link, fail instead of landing outside it.
func Untar(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the archive: %w", err)
		}
		name := path.Clean(hdr.Name)
		if path.IsAbs(hdr.Name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q points outside the target directory", hdr.Name)
		}
		if name == "." {
			continue
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		}
		mode := hdr.FileInfo().Mode().Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			_ = root.Remove(name)
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("extracting %q: %w", hdr.Name, err)
			}
		default:
			fmt.Fprintf(os.Stderr, "skipping %s: unsupported entry type %c\n", hdr.Name, hdr.Typeflag)
		}
		if hdr.Typeflag != tar.TypeSymlink {
			_ = root.Chtimes(name, hdr.AccessTime, hdr.ModTime)
		}
	}
}

// TreeSize is the total size of the regular files below paths, for progress;
// errors count as zero.
func TreeSize(root string, paths []string) int64 {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	var total int64
	for _, p := range paths {
		_ = filepath.WalkDir(filepath.Join(root, filepath.FromSlash(p)), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return nil
		})
	}
	return total
}
