package stages

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Whatever the sizes of the writes, a holdBack passes everything on in
// order but the last n bytes, and those on Release.
func TestHoldBackKeepsTheTail(t *testing.T) {
	const n = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var out bytes.Buffer
		h := newHoldBack(&out, n)
		var in []byte
		for range rng.IntN(20) {
			p := make([]byte, []int{0, 1, n - 1, n, n + 1, 2 * n, 5 * n, rng.IntN(3 * n)}[rng.IntN(8)])
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if _, err := h.Write(p); err != nil {
				t.Fatal(err)
			}
			in = append(in, p...)
			passed := max(len(in)-n, 0)
			if out.Len() > passed || !bytes.Equal(out.Bytes(), in[:out.Len()]) {
				t.Fatalf("round %d: %d bytes passed on of %d written, at most %d may be", round, out.Len(), len(in), passed)
			}
		}
		if err := h.Release(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("round %d: after Release %d bytes, want the %d written", round, out.Len(), len(in))
		}
	}
}
