package source

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

const secret = "s3cr3t-p@ss:word/\"'"

func secretEnv(name string) string {
	return map[string]string{
		EnvHost: "db.internal", EnvPort: "6543", EnvUsername: "app", EnvPassword: secret, EnvDatabase: "shop",
	}[name]
}

func TestResolveConnectionPrecedence(t *testing.T) {
	port := int32(5433)
	spec := v1.DatabaseConnection{ServiceRef: &v1.ServiceReference{Name: "pg", Port: &port}, Database: "orders", SecretRef: &v1.ConnectionSecretRef{Name: "x"}}
	c, err := ResolveConnection(spec, "shop", 5432, secretEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "pg.shop.svc" || c.Port != 5433 || c.Database != "orders" || c.Username != "app" || c.Password != secret {
		t.Errorf("spec values must win over the Secret's: %+v", c)
	}
	uri := func(n string) string {
		if n == EnvURI {
			return "postgresql://u:p%40w@10.0.0.5:7777/app?sslmode=require"
		}
		return ""
	}
	c, err = ResolveConnection(v1.DatabaseConnection{}, "ns", 5432, uri)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "10.0.0.5" || c.Port != 7777 || c.Username != "u" || c.Password != "p@w" || c.Database != "app" {
		t.Errorf("URI not applied: %+v", c)
	}
	if c.Params.Get("sslmode") != "require" {
		t.Errorf("the URI's parameters are kept: %v", c.Params)
	}
	bad := func(n string) string {
		if n == EnvURI {
			return "::not a uri with password hunter2"
		}
		return ""
	}
	if _, err := ResolveConnection(v1.DatabaseConnection{}, "ns", 1, bad); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a bad URI must fail without echoing it: %v", err)
	}
	if _, err := ResolveConnection(v1.DatabaseConnection{}, "ns", 1, func(string) string { return "" }); err == nil {
		t.Error("a connection without a host must fail")
	}
}

func TestFailedProcessNeverEndsItsOutputCleanly(t *testing.T) {
	for script, want := range map[string]string{
		"echo partial; echo 'disk full' >&2; exit 3": "exit code 3: disk full",
		"echo partial; kill -9 $$":                   "killed by signal",
	} {
		p := Process{Args: []string{"sh", "-c", script}}
		r, err := p.Start(context.Background(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(r.Output())
		if string(out) != "partial\n" {
			t.Errorf("output %q", out)
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error saying %q", script, err, want)
		}
	}
}

func TestProcessFilesArePrivateAndRemoved(t *testing.T) {
	p := Process{Args: []string{"sh", "-c", `echo "$1"; stat -c %a "$1"; cat "$1"`, "sh", "{file:cfg}"}, Files: map[string]string{"cfg": "password=x"}}
	r, err := p.Start(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r.Output())
	if err != nil {
		t.Fatal(err)
	}
	path, rest, _ := strings.Cut(string(out), "\n")
	if rest != "600\npassword=x" {
		t.Errorf("got %q", rest)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s was not removed after the process ended: %v", path, err)
	}
}

func TestProcessDoesNotInheritBackflowSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "storage-secret")
	t.Setenv(EnvPassword, "db-secret")
	t.Setenv("APP_SETTING", "kept")
	r, err := Process{Args: []string{"env"}}.Start(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r.Output())
	if strings.Contains(string(out), "secret") || !strings.Contains(string(out), "APP_SETTING=kept") {
		t.Errorf("environment of the child:\n%s", out)
	}
}

func TestTarRoundTrip(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{"media/a.jpg": "jpeg", "media/sub/b.txt": "text ü", "thumbnails/c": "", "other/skip": "no"}
	for name, content := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.jpg", filepath.Join(src, "media", "link")); err != nil {
		t.Fatal(err)
	}
	if got := TreeSize(src, []string{"media", "thumbnails"}); got != int64(len("jpeg")+len("text ü")) {
		t.Errorf("TreeSize = %d", got)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	if err := Untar(TarPaths(src, []string{"media", "thumbnails"}), dst); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if name == "other/skip" {
			if err == nil {
				t.Errorf("%s was archived but not asked for", name)
			}
			continue
		}
		if err != nil || string(got) != content {
			t.Errorf("%s: got %q, %v", name, got, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "media", "link")); err != nil || l != "a.jpg" {
		t.Errorf("symlink: %q %v", l, err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "media", "a.jpg")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
}

func TestUntarRefusesToEscape(t *testing.T) {
	build := func(entries ...*tar.Header) io.Reader {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			_ = tw.WriteHeader(h)
			if h.Size > 0 {
				_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		_ = tw.Close()
		return &b
	}
	outside := t.TempDir()
	cases := map[string]io.Reader{
		"dot-dot":  build(&tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"absolute": build(&tar.Header{Name: "/tmp/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
		"through a symlink": build(
			&tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "link/evil", Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}),
	}
	for name, archive := range cases {
		dst := t.TempDir()
		if err := Untar(archive, dst); err == nil {
			t.Errorf("%s: extracted", name)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("a file landed outside the target: %v", entries)
	}
}
