package stages

import "github.com/backflow-dev/backflow/stages/pathtemplate"

// ConfineKey checks key against a namespace's prefix, when one is set: a
// step of a platform team's own Workflow, without one, keeps to what its
// arguments say; so does a command run by hand (backflow show).
func ConfineKey(prefix, key string) error {
	if prefix == "" {
		return nil
	}
	return pathtemplate.Confine(prefix, key)
}
