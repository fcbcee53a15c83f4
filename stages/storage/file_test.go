package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestFileCreateNeverReplaces(t *testing.T) {
	b, err := NewFileBackend(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := b.Create(ctx, "dir/key", strings.NewReader("first"), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Create(ctx, "dir/key", strings.NewReader("second"), nil); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "dir/key") {
		t.Fatalf("second Create: %v, want ErrExists naming the key", err)
	}
	r, err := b.Get(ctx, "dir/key")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); string(got) != "first" {
		t.Errorf("the object holds %q", got)
	}
	entries, err := os.ReadDir(b.path("dir"))
	if err != nil || len(entries) != 1 {
		t.Errorf("the directory holds %v (%v), want only the object", entries, err)
	}
}
