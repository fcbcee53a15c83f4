package stages_test

import (
	"testing"

	"github.com/backflow-dev/backflow/stages"
)

func TestProgressLine(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		name        string
		done, total int64
		complete    bool
		want        string
	}{
		{"nothing yet", 0, 300 * mib, false, "0/300"},
		{"a third", 100*mib + 5, 300 * mib, false, "100/300"},
		{"a total that is no whole MiB rounds up", 10 * mib, 300*mib + 1, false, "10/301"},
		{"never above 99% while running: the total grows", 299 * mib, 300 * mib, false, "299/303"},
		{"exactly the total, not ended", 300 * mib, 300 * mib, false, "300/304"},
		{"99% of the total", 297 * mib, 300 * mib, false, "297/300"},
		{"more than expected: 99% of a total that grows", 1000 * mib, 300 * mib, false, "1000/1011"},
		{"a total under a MiB", 512 << 10, 1000, false, "0/1"},
		{"no total", 50 * mib, 0, false, "0/1"},
		{"the end", 299*mib + 1, 300 * mib, true, "300/300"},
		{"the end of more than expected", 1000 * mib, 300 * mib, true, "1000/1000"},
		{"the end without a total", 50 * mib, 0, true, "50/50"},
		{"the end of an empty stream", 0, 0, true, "1/1"},
	} {
		if got := stages.ProgressLine(c.done, c.total, c.complete); got != c.want {
			t.Errorf("%s: ProgressLine(%d, %d, %v) = %s, want %s", c.name, c.done, c.total, c.complete, got, c.want)
		}
	}
}
