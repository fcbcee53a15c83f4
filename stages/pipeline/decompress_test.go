package pipeline

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// The dump's frames are each decoded on their own: every one says its size
// and fits.
func TestDumpFramesSplitForParallelDecoding(t *testing.T) {
	data := testData(3*zstdChunkSize + 12345)
	stored := roundTrip(t, data, Zstd, DefaultLevel(Zstd), false)
	br := bufio.NewReader(bytes.NewReader(stored))
	frames := 0
	for {
		frame, err := readZstdFrame(br, nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", frames, err)
		}
		frames++
		out, err := allAtOnce.DecodeAll(frame, nil)
		if err != nil || len(out) > zstdChunkSize {
			t.Fatalf("frame %d decodes to %d bytes: %v", frames, len(out), err)
		}
	}
	if frames != 4 {
		t.Errorf("%d frames, want 4", frames)
	}
}

// Streams of other encoders decode too: a frame without its size (the zstd
// tool reading a pipe), one larger than a frame decoded on its own, after
// frames of the dump's, and skippable frames between them.
func TestParallelReaderDecodesOtherStreams(t *testing.T) {
	data := testData(3*zstdChunkSize + 7)
	var streams = map[string][]byte{}

	var whole bytes.Buffer
	enc, _ := zstd.NewWriter(&whole, zstd.WithWindowSize(8<<20))
	_, _ = enc.Write(bytes.Repeat(data, 4)) // a frame of 24 MiB
	_ = enc.Close()
	dump := roundTrip(t, data, Zstd, 1, false)
	// A frame that asks for a 16 MiB window (Window_Descriptor exponent 14)
	// for 100 kB of content, as encoders with long windows write them.
	narrow, _ := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	wide := narrow.EncodeAll(data[:100_000], nil)
	if wide[4]&(1<<5) != 0 {
		t.Fatal("the frame has no window descriptor")
	}
	wide[5] = 14 << 3
	if _, err := allAtOnce.DecodeAll(wide, nil); err == nil {
		t.Fatal("the frame with a 16 MiB window decoded all at once: the test does not test the fallback")
	}
	streams["a small frame with a large window"] = wide
	streams["dump frames, then a large frame"] = append(append([]byte{}, dump...), whole.Bytes()...)
	skippable := []byte{0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c'}
	streams["skippable frames between"] = append(append(append(append([]byte{}, skippable...), dump...), skippable...), dump...)
	if _, err := exec.LookPath("zstd"); err == nil {
		cmd := exec.Command("zstd", "-3", "-c")
		cmd.Stdin = io.MultiReader(bytes.NewReader(data)) // a pipe: no content size
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		streams["the zstd tool on a pipe"] = out
	}
	want := map[string][]byte{
		"dump frames, then a large frame":   append(append([]byte{}, data...), bytes.Repeat(data, 4)...),
		"skippable frames between":          append(append([]byte{}, data...), data...),
		"the zstd tool on a pipe":           data,
		"a small frame with a large window": data[:100_000],
	}
	for name, stream := range streams {
		for _, how := range []string{"Read", "WriteTo"} {
			dec, err := NewDecompressor(bytes.NewReader(stream), Zstd)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if how == "Read" {
				_, err = io.Copy(&got, struct{ io.Reader }{dec})
			} else {
				_, err = io.Copy(&got, dec)
			}
			_ = dec.Close()
			if err != nil || !bytes.Equal(got.Bytes(), want[name]) {
				t.Errorf("%s with %s: %d bytes, want %d: %v", name, how, got.Len(), len(want[name]), err)
			}
		}
	}
}

// A damaged or cut stream fails, whichever way it is read.
func TestParallelReaderReportsDamage(t *testing.T) {
	data := testData(3 * zstdChunkSize)
	stored := roundTrip(t, data, Zstd, 1, false)
	flipped := append([]byte{}, stored...)
	flipped[len(flipped)/2] ^= 0x40
	for name, stream := range map[string][]byte{
		"cut":     stored[:len(stored)-100],
		"flipped": flipped,
		"garbage": append(append([]byte{}, stored[:len(stored)/3]...), "not zstd at all"...),
	} {
		dec, _ := NewDecompressor(bytes.NewReader(stream), Zstd)
		got, err := io.ReadAll(dec)
		_ = dec.Close()
		if err == nil && bytes.Equal(got, data) {
			t.Errorf("%s: decoded as if intact", name)
		} else if err == nil {
			// Without frame checksums a flipped byte may decode to other
			// bytes: the plain stream's checksum catches those.
			t.Logf("%s: decoded to other bytes without an error", name)
		}
	}
}

// Closing a reader midway stops its splitter, which would otherwise wait on
// its full queue forever (the input here never ends).
func TestParallelReaderCloseMidway(t *testing.T) {
	stored := roundTrip(t, testData(8*zstdChunkSize), Zstd, 1, false)
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(stored) }()
	dec, _ := NewDecompressor(pr, Zstd)
	if _, err := io.ReadFull(dec, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	_ = dec.Close()
	for range dec.(*parallelZstdReader).frames {
		// The splitter closes the queue when it returns.
	}
}

// io.Copy into the zstd writer reads straight into its chunks (ReadFrom),
// whatever sizes the reader returns, and the frames decode to the input.
func TestZstdWriterReadFrom(t *testing.T) {
	data := testData(3*zstdChunkSize + 999)
	var stored bytes.Buffer
	comp, err := NewCompressor(&stored, Zstd, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := comp.(io.ReaderFrom); !ok {
		t.Fatal("the zstd writer does not read from its source itself")
	}
	// Short reads, 100,003 bytes at most, end inside and across chunks.
	src := &shortReader{data: data, max: 100_003}
	if n, err := io.Copy(comp, src); err != nil || n != int64(len(data)) {
		t.Fatalf("copied %d of %d: %v", n, len(data), err)
	}
	if err := comp.Close(); err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecompressor(&stored, Zstd)
	got, err := io.ReadAll(dec)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("decoded %d bytes, want %d: %v", len(got), len(data), err)
	}
}

type shortReader struct {
	data []byte
	max  int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), s.max)], s.data)
	s.data = s.data[n:]
	return n, nil
}
