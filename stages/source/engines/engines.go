// Package engines registers every engine with the source package: the
// binary, the compiler and the stages import it for its side effect, and
// ask source (ForSource, ForTarget, ByName) for an engine. A new engine is
// one more import here.
package engines

import (
	_ "github.com/backflow-dev/backflow/stages/source/command"
	_ "github.com/backflow-dev/backflow/stages/source/mongodb"
	_ "github.com/backflow-dev/backflow/stages/source/mysql"
	_ "github.com/backflow-dev/backflow/stages/source/postgresql"
	_ "github.com/backflow-dev/backflow/stages/source/pvc"
)
