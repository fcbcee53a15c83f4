// Command build-image writes a container image as a docker-archive tarball
// without a Docker engine or a registry: the backflow image from the static
// binary, and the images of the local stack (the pause and argoexec images,
// the database client image from a Debian root filesystem). containerd
// imports the tarball (`ctr images import`).
//
//	build-image --tag ghcr.io/backflow-dev/backflow:v1 --out backflow.tar \
//	    --file usr/local/bin/backflow=bin/backflow --user 65532 --entrypoint backflow
//	build-image --tag backflow.dev/clients:bookworm --out clients.tar --rootfs-tar rootfs.tar
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		tag, out, rootfsTar, user, workdir string
		files, env, entrypoint, cmd        listFlag
	)
	flag.StringVar(&tag, "tag", "", "image reference, e.g. ghcr.io/backflow-dev/backflow:v1")
	flag.StringVar(&out, "out", "", "docker-archive tarball to write")
	flag.StringVar(&rootfsTar, "rootfs-tar", "", "a tarball of a root filesystem, added as the first layer")
	flag.Var(&files, "file", "IMAGE_PATH=HOST_PATH: a file added to the top layer, mode kept (repeatable)")
	flag.Var(&env, "env", "NAME=VALUE in the image config (repeatable)")
	flag.Var(&entrypoint, "entrypoint", "entrypoint argument (repeatable)")
	flag.Var(&cmd, "cmd", "default argument (repeatable)")
	flag.StringVar(&user, "user", "", "user the image runs as, e.g. 65532")
	flag.StringVar(&workdir, "workdir", "", "working directory")
	flag.Parse()
	if tag == "" || out == "" {
		return fmt.Errorf("--tag and --out are required")
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}

	var layers []v1.Layer
	if rootfsTar != "" {
		l, err := tarball.LayerFromFile(rootfsTar)
		if err != nil {
			return fmt.Errorf("layer from %s: %w", rootfsTar, err)
		}
		layers = append(layers, l)
	}
	if len(files) > 0 {
		l, err := filesLayer(files, user != "" && rootfsTar == "")
		if err != nil {
			return err
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = "amd64", "linux"
	cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	cfg.Config.Entrypoint, cfg.Config.Cmd = entrypoint, cmd
	cfg.Config.User, cfg.Config.WorkingDir = user, workdir
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// filesLayer is one layer with the given files, their parent directories, a
// world-writable /tmp and, for an image without a root filesystem that runs
// as a numeric user, an /etc/passwd naming that user (some tools look the
// running user up).
func filesLayer(specs []string, withPasswd bool) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	dirs := map[string]bool{}
	addDirs := func(p string) error {
		var parents []string
		for d := path.Dir(p); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		sort.Strings(parents)
		for _, d := range parents {
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: epoch}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: epoch}); err != nil {
		return nil, err
	}
	dirs["tmp"] = true
	if withPasswd {
		passwd := []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
		if err := addDirs("etc/passwd"); err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: "etc/passwd", Mode: 0o644, Size: int64(len(passwd)), ModTime: epoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(passwd); err != nil {
			return nil, err
		}
	}
	for _, spec := range specs {
		dst, src, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("--file %q: want IMAGE_PATH=HOST_PATH", spec)
		}
		dst = strings.TrimPrefix(path.Clean("/"+dst), "/")
		if err := addDirs(dst); err != nil {
			return nil, err
		}
		if err := addFile(tw, dst, src, epoch); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

func addFile(tw *tar.Writer, dst, src string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: dst, Mode: int64(st.Mode().Perm()), Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}
