package source

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// An Engine is one kind of source and restore target: postgresql, mysql,
// mongodb, pvc or command. Each lives in a package of its own that calls
// Register from its init function; the package source/engines imports them
// all. Everything that differs from one kind to the next is asked of the
// engine, so that adding a kind adds a package and touches no switch.
type Engine interface {
	// Name is the engine's key in spec.source and spec.target, which finds
	// it (see ForSource), and the source kind that manifests and path
	// templates record.
	Name() string
	// Title names the engine in messages: PostgreSQL.
	Title() string
	// Formats are the raw stream formats the engine writes.
	Formats() []Format

	Planner
	Runner
}

// Planner is what the controller's compiler asks of an engine: pure
// functions of the spec, so that the compiler stays pure.
type Planner interface {
	// ClientImages are the default images with the engine's client tools,
	// by the key a Pod's ClientImage names; none when its steps run in the
	// backflow image.
	ClientImages() map[string]string
	// CheckSource rejects what a source spec asks for and the engine cannot
	// do, before any Workflow runs. The error names the field below
	// spec.source.
	CheckSource(src v1.BackupSource) error
	// DumpPod and RestorePod are what the dump and restore steps need in
	// their pod.
	DumpPod(src v1.BackupSource) Pod
	RestorePod(target v1.RestoreTarget) Pod
	// DescribeSource and DescribeTarget say in a few words what a Backup
	// dumps and what a Restore restores into, for the Workflow's
	// description.
	DescribeSource(src v1.BackupSource) string
	DescribeTarget(target v1.RestoreTarget) string
}

// Runner is what the stages ask of an engine: they run the dump and the
// restore.
type Runner interface {
	// Format is the format of the stream a source's dump writes, one of
	// Formats.
	Format(src v1.BackupSource) Format
	// DatabaseName is the database a source dumps, as resolved from its spec
	// and connection Secret, for path templates; empty when it dumps several
	// or none.
	DatabaseName(src v1.BackupSource, opts Options) string
	// EstimateSize is the source's own estimate of the raw stream's size,
	// for progress when the series has no verified backup yet: the
	// database's size as its server reports it, the files of a volume. 0
	// when the engine has none. An error is no failure of the dump: the dump
	// says so and runs without an expected size.
	EstimateSize(ctx context.Context, src v1.BackupSource, opts Options) (int64, error)
	// StartDump starts the dump of a source. Its diagnostics go to stderr.
	StartDump(ctx context.Context, src v1.BackupSource, opts Options, stderr io.Writer) (*Producer, error)
	// Accepts says whether the engine can restore a stream of the format.
	Accepts(format string) bool
	// StartRestore starts the restore of a stream whose format it accepts
	// (callers go through the package's StartRestore, which checks). What
	// the restoring program prints goes to stdout and stderr.
	StartRestore(ctx context.Context, target v1.RestoreTarget, format string, opts Options, stdout, stderr io.Writer) (*Consumer, error)
}

// A RestoreTester is an engine that can restore a backup into a scratch
// database and check it, for verify.restoreTest.connection.
type RestoreTester interface {
	Engine
	// ScratchEngines are the names the verify step's --engine takes for the
	// engine: its name, and the flavors whose client tools differ (mariadb).
	ScratchEngines() []string
	// ScratchEngine is the --engine of the restore test of a source.
	ScratchEngine(src v1.BackupSource) string
	// ScratchTarget is the target that restores into the scratch database
	// conn, for one of ScratchEngines.
	ScratchTarget(scratchEngine string, conn v1.DatabaseConnection) v1.RestoreTarget
	// StartRestoreTest restores into the target and, once the stream ended,
	// runs the check (see v1alpha1.RestoreTest.CheckQuery; none when query
	// is empty). The format is one the engine accepts.
	StartRestoreTest(ctx context.Context, target v1.RestoreTarget, format, query string, opts Options, stderr io.Writer) (*Consumer, error)
}

// An ArchiveChecker is an engine that can check the structure of some of its
// backups without a database: the restore test of a Backup whose
// verify.restoreTest names no connection.
type ArchiveChecker interface {
	Engine
	// ChecksArchive says whether a stream of the format can be checked.
	ChecksArchive(format string) bool
	// StartArchiveCheck checks a stream of a format it checks.
	StartArchiveCheck(ctx context.Context, stderr io.Writer) (*Consumer, error)
}

// A Format is the format of a raw stream, before compression and
// encryption. Its name is recorded in the manifest and decides how the
// stream is restored; its extension ends the object's key, before those of
// the compression and the encryption. Both are part of what is in storage:
// they never change.
type Format struct {
	Name      string
	Extension string
}

// Pod is what an engine's step needs in its pod, as data: the compiler
// makes it the step's image and part of its pod spec patch.
type Pod struct {
	// ClientImage is the key of the controller's client image (see
	// Planner.ClientImages) the step runs in; empty for the backflow image.
	ClientImage string
	// Image, when set, is the image the step runs in instead: the spec's own
	// image.
	Image string
	// Connection's Secret keys are passed to the step as the BACKFLOW_DB_*
	// variables (see ResolveConnection).
	Connection *v1.DatabaseConnection
	// Env is set on the step's container as it is.
	Env []corev1.EnvVar
	// Volume is mounted where the stages expect the data volume (the
	// compiler's VolumeRoot), read-only when VolumeReadOnly.
	Volume         *corev1.VolumeSource
	VolumeReadOnly bool
}

// The registry, filled by Register from the engines' init functions and
// only read afterwards.
var (
	engines        = map[string]Engine{}
	formatWriters  = map[string]Engine{}
	clientImages   = map[string]string{}
	scratchEngines = map[string]RestoreTester{}
)

// Register adds an engine. It panics when the engine's name, one of its
// formats, client image keys or scratch engine names is taken, and then
// registers nothing: two engines would answer for the same thing.
func Register(e Engine) {
	var scratch []string
	if t, ok := e.(RestoreTester); ok {
		scratch = t.ScratchEngines()
	}
	for _, claim := range []struct {
		what  string
		keys  []string
		taken func(string) bool
	}{
		{"engine", []string{e.Name()}, func(k string) bool { _, ok := engines[k]; return ok }},
		{"format", formatNames(e.Formats()), func(k string) bool { _, ok := formatWriters[k]; return ok }},
		{"client image", slices.Collect(maps.Keys(e.ClientImages())), func(k string) bool { _, ok := clientImages[k]; return ok }},
		{"scratch engine", scratch, func(k string) bool { _, ok := scratchEngines[k]; return ok }},
	} {
		for _, key := range claim.keys {
			if claim.taken(key) {
				panic(fmt.Sprintf("source.Register(%s): %s %q is already registered", e.Name(), claim.what, key))
			}
		}
	}
	engines[e.Name()] = e
	for _, f := range e.Formats() {
		formatWriters[f.Name] = e
	}
	maps.Copy(clientImages, e.ClientImages())
	for _, name := range scratch {
		scratchEngines[name] = e.(RestoreTester)
	}
}

func formatNames(formats []Format) []string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.Name
	}
	return names
}

// Names are the registered engines' names, sorted.
func Names() []string { return slices.Sorted(maps.Keys(engines)) }

// All are the registered engines, sorted by name.
func All() []Engine {
	all := make([]Engine, 0, len(engines))
	for _, name := range Names() {
		all = append(all, engines[name])
	}
	return all
}

// ByName is the engine of a name.
func ByName(name string) (Engine, bool) {
	e, ok := engines[name]
	return e, ok
}

// ForSource is the engine of the one field of a Backup's spec.source that
// is set.
func ForSource(src v1.BackupSource) (Engine, error) { return engineOfSpec("spec.source", src) }

// ForTarget is the engine of the one field of a Restore's spec.target that
// is set.
func ForTarget(target v1.RestoreTarget) (Engine, error) {
	return engineOfSpec("spec.target", target)
}

// engineOfSpec finds the engine of a spec by the one JSON key that is set
// and names an engine, as the API's JSON says it: the engine's field is the
// only place that names it. Other keys (allowEmpty) are not engines.
func engineOfSpec(field string, spec any) (Engine, error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	var set []string
	for key, value := range keys {
		if _, ok := engines[key]; ok && string(value) != "null" {
			set = append(set, key)
		}
	}
	if len(set) == 1 {
		return engines[set[0]], nil
	}
	msg := fmt.Sprintf("%s: set exactly one of %s", field, list(Names(), "and"))
	if len(set) > 1 {
		slices.Sort(set)
		msg += fmt.Sprintf(" (%s are set)", list(set, "and"))
	}
	return nil, fmt.Errorf("%s", msg)
}

// list joins words as a sentence does: a, b and c.
func list(words []string, conjunction string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conjunction + " " + words[len(words)-1]
}

// Formats are the formats of every registered engine, sorted by name.
func Formats() []Format {
	var all []Format
	for _, e := range All() {
		all = append(all, e.Formats()...)
	}
	slices.SortFunc(all, func(a, b Format) int { return strings.Compare(a.Name, b.Name) })
	return all
}

// WriterOf is the engine that writes a format.
func WriterOf(format string) (Engine, bool) {
	e, ok := formatWriters[format]
	return e, ok
}

// ClientImages are the default client images of every registered engine,
// by key: the controller's defaults, which the chart's clientImages repeat.
// The map is the caller's.
func ClientImages() map[string]string { return maps.Clone(clientImages) }

// ScratchEngineNames are the names the verify step's --engine takes, sorted.
func ScratchEngineNames() []string { return slices.Sorted(maps.Keys(scratchEngines)) }

// ScratchTarget is the target of a restore test into the scratch database
// conn of an engine (one of ScratchEngineNames).
func ScratchTarget(scratchEngine string, conn v1.DatabaseConnection) (v1.RestoreTarget, error) {
	t, ok := scratchEngines[scratchEngine]
	if !ok {
		return v1.RestoreTarget{}, fmt.Errorf("the engine of a scratch database must be %s, not %q", list(ScratchEngineNames(), "or"), scratchEngine)
	}
	return t.ScratchTarget(scratchEngine, conn), nil
}
