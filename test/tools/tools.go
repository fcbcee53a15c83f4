// Package tools locates the third-party binaries test/tools/build.sh builds
// from the Go module proxy into a cache outside the repository.
package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// CacheDir is where the project's built binaries and images are cached:
// $BACKFLOW_CACHE, or ~/.cache/backflow.
func CacheDir() string {
	if c := os.Getenv("BACKFLOW_CACHE"); c != "" {
		return c
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "backflow")
}

// Binary returns the path of one of build.sh's pinned binaries (helm,
// kubectl, promtool, ...), building it first if the cache lacks it.
func Binary(name string) (string, error) { return buildSh(name) }

// Cached returns the path of one of build.sh's pinned binaries, or an error
// when it is not built yet: a test never starts a build of many minutes.
func Cached(name string) (string, error) { return buildSh("--cached", name) }

func buildSh(args ...string) (string, error) {
	_, file, _, _ := goruntime.Caller(0)
	var stderr strings.Builder
	cmd := exec.Command(filepath.Join(filepath.Dir(file), "build.sh"), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("test/tools/build.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
