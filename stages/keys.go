package stages

import "github.com/backflow-dev/backflow/stages/pathtemplate"

// confine checks key against a namespace's prefix, when one is set: a step
// of a platform team's own Workflow, without one, keeps to what its
// arguments say.
func confine(prefix, key string) error {
	if prefix == "" {
		return nil
	}
	return pathtemplate.Confine(prefix, key)
}
