// Package pathtemplate renders the object keys of backups from the Go
// templates in spec.storage.path, with sprig's functions minus every one that
// reaches outside the template's data (the environment, DNS).
package pathtemplate

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/Masterminds/sprig/v3"
)

// Data is what a path template can refer to.
type Data struct {
	// Namespace of the Backup.
	Namespace string
	// Name of the Backup.
	Name string
	// Series is the BackupSchedule's name, or the Backup's for a one-shot
	// backup.
	Series string
	// Source kind: postgresql, mysql, mongodb, pvc or command.
	Source string
	// Database dumped, when the source names one.
	Database string
	// Timestamp is when the dump started, in UTC.
	Timestamp time.Time
	// Extension of the object, such as .pgdump.zst.age.
	Extension string
}

// unsafeFunctions read the process environment or the network, or reveal the
// host: a path template must depend on its data only.
var unsafeFunctions = []string{"env", "expandenv", "getHostByName"}

// funcMap is sprig's text function map without the unsafe functions, with
// dates formatted in UTC so that a key does not depend on the time zone of
// the pod that renders it.
var funcMap = func() template.FuncMap {
	m := sprig.TxtFuncMap()
	for _, name := range unsafeFunctions {
		delete(m, name)
	}
	m["date"] = func(layout string, date any) string {
		return toTime(date).UTC().Format(layout)
	}
	m["now"] = func() time.Time { return time.Now().UTC() }
	return m
}()

func toTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case *time.Time:
		return *t
	case int64:
		return time.Unix(t, 0)
	case int:
		return time.Unix(int64(t), 0)
	default:
		return time.Time{}
	}
}

// Parse parses a path template, naming the problem when it does not parse or
// calls a function that is not allowed.
func Parse(text string) (*template.Template, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("path template is empty")
	}
	t, err := template.New("path").Option("missingkey=error").Funcs(funcMap).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("path template: %w", err)
	}
	return t, nil
}

// Render renders a path template and checks that the key it makes is usable:
// relative, without '..' segments, empty segments or control characters.
func Render(text string, data Data) (string, error) {
	t, err := Parse(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("path template: %w", err)
	}
	key := b.String()
	if err := CheckKey(key); err != nil {
		return "", fmt.Errorf("path template rendered %q: %w", key, err)
	}
	return key, nil
}

// CheckKey says why a rendered object key is not usable, or nil.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("the key is empty")
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("the key must be relative: it starts with '/'")
	case strings.HasSuffix(key, "/"):
		return fmt.Errorf("the key must name an object: it ends with '/'")
	case len(key) > 1024:
		return fmt.Errorf("the key is longer than 1024 bytes")
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return fmt.Errorf("the key has an empty segment ('//')")
		case ".", "..":
			return fmt.Errorf("the key has a %q segment", seg)
		}
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("the key has a control character")
		}
	}
	return nil
}

// scopeSamples are values of what a path template may vary from run to run
// (the start of the dump, the Backup's name: a scheduled run is named after
// its Workflow, the database and the extension) and of the source kind, which
// rotate is not told. They differ in every part of a date and in every
// character of a name.
var scopeSamples = []struct {
	name, source, database, extension string
	timestamp                         time.Time
}{
	{"a", "a", "a", ".a", time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)},
	{"z-9", "z", "z_9", ".z", time.Date(2098, 11, 27, 22, 58, 59, 0, time.UTC)},
	{"m0", "m", "m0", ".m", time.Date(2050, 7, 14, 13, 31, 32, 0, time.UTC)},
}

// sampleData is the data of sample i of scopeSamples for a series.
func sampleData(i int, namespace, series string) Data {
	s := scopeSamples[i]
	return Data{
		Namespace: namespace, Series: series, Source: s.source,
		Name: s.name, Database: s.database, Extension: s.extension, Timestamp: s.timestamp,
	}
}

// Scope is the directory (a key prefix ending in '/', or "" for the top of
// the storage) below which every key a path template renders for one series
// lies: the longest directory prefix that stays the same when only what
// varies from run to run varies (the timestamp, the name, the database, the
// extension and the source kind); Namespace and Series are the series' own.
// Listing a wider scope costs time, never a backup: rotate selects by
// manifest, not by place. A series
// whose keys spread over dated directories ({{ .Timestamp | date "2006/01" }})
// has the directory above them as its scope. Scope is pure: it renders the
// template, it reads no storage.
func Scope(text, namespace, series string) (string, error) {
	var common string
	for i := range scopeSamples {
		key, err := Render(text, sampleData(i, namespace, series))
		if err != nil {
			return "", err
		}
		if i == 0 {
			common = key
			continue
		}
		n := 0
		for n < len(common) && n < len(key) && common[n] == key[n] {
			n++
		}
		common = common[:n]
	}
	return common[:strings.LastIndex(common, "/")+1], nil
}

// ErrOutsidePrefix says that a key, or a directory a step lists, does not
// lie inside the prefix of the namespace it is used for.
var ErrOutsidePrefix = errors.New("outside the namespace's prefix")

// checkPrefix says why a namespace's prefix cannot confine keys: it must be
// a clean relative directory, ending in '/'.
func checkPrefix(prefix string) error {
	if !strings.HasSuffix(prefix, "/") {
		return fmt.Errorf("the prefix %q does not end with '/': %w", prefix, ErrOutsidePrefix)
	}
	if err := CheckKey(strings.TrimSuffix(prefix, "/")); err != nil {
		return fmt.Errorf("the prefix %q: %v: %w", prefix, err, ErrOutsidePrefix)
	}
	return nil
}

// Confine is nil when key is a clean relative key (CheckKey) strictly
// inside prefix, a namespace's prefix (a directory ending in '/'), and an
// error wrapping ErrOutsidePrefix otherwise: a key with a '..' or empty
// segment could be resolved by a store to a key outside however it begins.
func Confine(prefix, key string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("%q: %v, so it cannot be proven inside %q: %w", key, err, prefix, ErrOutsidePrefix)
	}
	if !strings.HasPrefix(key, prefix) {
		return fmt.Errorf("%q is %w %q", key, ErrOutsidePrefix, prefix)
	}
	return nil
}

// ConfineScope is Confine for a directory a step lists (a Scope): nil when
// it is prefix or a directory below it.
func ConfineScope(prefix, scope string) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if scope == prefix {
		return nil
	}
	if !strings.HasSuffix(scope, "/") || CheckKey(strings.TrimSuffix(scope, "/")) != nil {
		return fmt.Errorf("the directory %q is not a clean relative directory, so it cannot be proven inside %q: %w", scope, prefix, ErrOutsidePrefix)
	}
	if !strings.HasPrefix(scope, prefix) {
		what := fmt.Sprintf("%q", scope)
		if scope == "" {
			what = "the top of the storage"
		}
		return fmt.Errorf("the directory %s is %w %q", what, ErrOutsidePrefix, prefix)
	}
	return nil
}

// ConfineTemplate renders a series' path template as Scope does and says
// why it cannot be used in a namespace whose prefix is prefix: an error from
// Render when it does not parse or renders an unclean key, one wrapping
// ErrOutsidePrefix when the keys it renders leave the prefix. Every key
// Scope renders begins with the scope, so a scope inside the prefix puts
// them all inside; a key that only the real values of a run render outside
// (a template that branches on them) is refused by the dump itself.
func ConfineTemplate(text, prefix, namespace, series string) (scope string, err error) {
	if err := checkPrefix(prefix); err != nil {
		return "", err
	}
	scope, err = Scope(text, namespace, series)
	if err != nil {
		return "", err
	}
	if err := ConfineScope(prefix, scope); err != nil {
		// Scope rendered the samples: they render again.
		key, _ := Render(text, sampleData(0, namespace, series))
		return "", fmt.Errorf("it renders keys such as %q, which lie %w %q", key, ErrOutsidePrefix, prefix)
	}
	return scope, nil
}
