package pipeline

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os/exec"
	"strings"
	"testing"

	"filippo.io/age"
)

// testData is compressible text with random runs, long enough to span
// several zstd chunks.
func testData(size int) []byte {
	r := mrand.New(mrand.NewPCG(1, 2))
	var b bytes.Buffer
	words := []string{"INSERT", "INTO", "accounts", "VALUES", "(", ")", "'", "backflow", "\n", "ü", "日本"}
	for b.Len() < size {
		if r.IntN(50) == 0 {
			junk := make([]byte, 64)
			_, _ = rand.Read(junk)
			b.Write(junk)
		}
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:size]
}

func roundTrip(t *testing.T, data []byte, a Algorithm, level int, encrypt bool) []byte {
	t.Helper()
	var recipients []age.Recipient
	var identities []age.Identity
	if encrypt {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		recipients, identities = []age.Recipient{id.Recipient()}, []age.Identity{id}
	}
	var stored bytes.Buffer
	enc, err := NewEncryptor(&stored, recipients)
	if err != nil {
		t.Fatal(err)
	}
	comp, err := NewCompressor(enc, a, level)
	if err != nil {
		t.Fatal(err)
	}
	// Odd-sized writes cross chunk boundaries at every offset.
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 100_003)
		if _, err := comp.Write(rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := comp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	src := io.Reader(bytes.NewReader(stored.Bytes()))
	if encrypt {
		if src, err = NewDecryptor(src, identities); err != nil {
			t.Fatal(err)
		}
	}
	dec, err := NewDecompressor(src, a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(dec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s level %d encrypt=%v: round trip changed the data (%d bytes in, %d out)", a, level, encrypt, len(data), len(got))
	}
	return stored.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := testData(3*zstdChunkSize + 12345)
	for _, a := range []Algorithm{Zstd, Gzip, None} {
		for _, encrypt := range []bool{false, true} {
			stored := roundTrip(t, data, a, DefaultLevel(a), encrypt)
			if a != None && !encrypt && len(stored) >= len(data)/2 {
				t.Errorf("%s compressed %d bytes only to %d", a, len(data), len(stored))
			}
		}
	}
	roundTrip(t, nil, Zstd, 3, true)
	roundTrip(t, []byte("x"), Gzip, 9, false)
	roundTrip(t, data[:zstdChunkSize], Zstd, 19, false)
}

// The parallel zstd writer's frames must decode with the reference tool.
func TestZstdFramesDecodeWithTheZstdTool(t *testing.T) {
	if _, err := exec.LookPath("zstd"); err != nil {
		t.Skip("zstd tool not installed")
	}
	data := testData(2*zstdChunkSize + 7)
	stored := roundTrip(t, data, Zstd, 3, false)
	cmd := exec.Command("zstd", "-d", "-c")
	cmd.Stdin = bytes.NewReader(stored)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Fatal("zstd -d decoded different data")
	}
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk on fire")
	}
	return len(p), nil
}

func TestCompressorReportsWriteErrors(t *testing.T) {
	for _, a := range []Algorithm{Zstd, Gzip} {
		comp, err := NewCompressor(&failingWriter{after: 1000}, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := io.Copy(comp, bytes.NewReader(testData(3*zstdChunkSize)))
		cerr := comp.Close()
		if werr == nil && cerr == nil {
			t.Errorf("%s: a failing destination went unnoticed", a)
		}
	}
}

func TestWrongIdentity(t *testing.T) {
	right, _ := age.GenerateX25519Identity()
	wrong, _ := age.GenerateX25519Identity()
	var stored bytes.Buffer
	enc, _ := NewEncryptor(&stored, []age.Recipient{right.Recipient()})
	_, _ = enc.Write([]byte("secret"))
	_ = enc.Close()
	_, err := NewDecryptor(&stored, []age.Identity{wrong})
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("got %v, want ErrWrongIdentity", err)
	}
}

func TestParseAlgorithm(t *testing.T) {
	cases := []struct {
		name      string
		level     int
		want      Algorithm
		wantLevel int
		err       string
	}{
		{"", 0, Zstd, 1, ""},
		{"zstd", 19, Zstd, 19, ""},
		{"gzip", 0, Gzip, 6, ""},
		{"gzip", 10, "", 0, "out of range 1-9"},
		{"zstd", 23, "", 0, "out of range 1-22"},
		{"none", 3, "", 0, "level 3 given for algorithm none"},
		{"lz4", 0, "", 0, "unknown compression algorithm"},
	}
	for _, tc := range cases {
		a, l, err := ParseAlgorithm(tc.name, tc.level)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s/%d: got %v, want error %q", tc.name, tc.level, err, tc.err)
			}
			continue
		}
		if err != nil || a != tc.want || l != tc.wantLevel {
			t.Errorf("%s/%d: got %s/%d/%v", tc.name, tc.level, a, l, err)
		}
	}
}

func TestParseRecipientsNeverEchoesKeys(t *testing.T) {
	id, _ := age.GenerateX25519Identity()
	_, names, err := ParseRecipients("# team keys\n"+id.Recipient().String()+"\n\n", id.Recipient().String())
	if err != nil || len(names) != 2 {
		t.Fatalf("got %v %v", names, err)
	}
	_, _, err = ParseRecipients(id.String())
	if err == nil || strings.Contains(err.Error(), id.String()) {
		t.Fatalf("a secret key given as recipient must fail without echoing it, got %v", err)
	}
	if fp := Fingerprint(id.Recipient().String()); len(fp) != 16 {
		t.Errorf("fingerprint %q", fp)
	}
}
