package compiler

import (
	"maps"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/backflow-dev/backflow/stages/source"
)

// The chart starts the controller with --client-image flags from its
// clientImages: they are the engines' defaults, the ones a controller
// started without flags uses.
func TestChartClientImagesAreTheEnginesDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "charts", "backflow", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		ClientImages map[string]string `json:"clientImages"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	defaults := source.ClientImages()
	if !maps.Equal(values.ClientImages, defaults) {
		t.Errorf("the chart's clientImages are %v, the engines' defaults %v", values.ClientImages, defaults)
	}
	if got := DefaultOptions().ClientImages; !maps.Equal(got, defaults) {
		t.Errorf("DefaultOptions().ClientImages = %v, the engines' defaults %v", got, defaults)
	}
}
