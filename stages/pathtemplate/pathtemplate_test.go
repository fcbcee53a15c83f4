package pathtemplate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var data = Data{
	Namespace: "shop", Name: "nightly-29145600", Series: "nightly", Source: "postgresql", Database: "orders",
	Timestamp: time.Date(2026, 11, 22, 3, 0, 5, 0, time.UTC), Extension: ".pgdump.zst.age",
}

func TestRender(t *testing.T) {
	cases := []struct{ tmpl, want string }{
		{`{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`,
			"shop/nightly/20261122T030005Z.pgdump.zst.age"},
		{`{{ .Source }}/{{ .Database | upper }}/{{ .Name }}`, "postgresql/ORDERS/nightly-29145600"},
		{`{{ .Namespace }}/{{ .Timestamp | date "2006/01/02" | replace "/" "-" }}.sql`, "shop/2026-11-22.sql"},
		{`fixed/{{ printf "%s-%d" .Series 7 }}`, "fixed/nightly-7"},
	}
	for _, tc := range cases {
		got, err := Render(tc.tmpl, data)
		if err != nil {
			t.Errorf("%s: %v", tc.tmpl, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

func TestDatesFormatInUTC(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	d := data
	d.Timestamp = time.Date(2026, 11, 22, 0, 30, 0, 0, berlin)
	got, err := Render(`{{ .Timestamp | date "2006-01-02T15:04" }}`, d)
	if err != nil {
		t.Fatal(err)
	}
	if got != "2026-11-21T23:30" {
		t.Errorf("got %q, want the UTC time 2026-11-21T23:30", got)
	}
}

func TestUnsafeFunctionsAreNotAvailable(t *testing.T) {
	t.Setenv("BACKFLOW_SECRET", "hunter2")
	for _, tmpl := range []string{
		`{{ env "BACKFLOW_SECRET" }}`,
		`{{ expandenv "$BACKFLOW_SECRET" }}`,
		`{{ getHostByName "example.com" }}`,
	} {
		got, err := Render(tmpl, data)
		if err == nil {
			t.Errorf("%s rendered %q; it must not parse", tmpl, got)
			continue
		}
		if !strings.Contains(err.Error(), "not defined") {
			t.Errorf("%s: error %q should say the function is not defined", tmpl, err)
		}
	}
}

func TestRenderRejectsBadKeys(t *testing.T) {
	cases := map[string]string{
		`{{ .Missing }}`:              "can't evaluate field Missing",
		`/{{ .Name }}`:                "starts with '/'",
		`{{ .Namespace }}/../x`:       `".." segment`,
		`{{ .Namespace }}//x`:         "empty segment",
		`{{ .Namespace }}/`:           "ends with '/'",
		`{{ "" }}`:                    "empty",
		`{{ .Namespace }}/{{ "\n" }}`: "control character",
		`{{ .Name `:                   "unclosed action",
	}
	for tmpl, want := range cases {
		_, err := Render(tmpl, data)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got error %v, want one saying %q", tmpl, err, want)
		}
	}
}

// A series' scope is the directory that stays the same from run to run.
func TestScope(t *testing.T) {
	for _, tc := range []struct{ template, want string }{
		{`{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`, "apps/shop/"},
		{`{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "2006/01/02" }}/db{{ .Extension }}`, "apps/shop/"},
		{`backups/{{ .Series }}-{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`, "backups/"},
		{`backups/{{ .Name }}.sql`, "backups/"},
		{`{{ .Namespace }}/{{ .Timestamp | date "2006" }}/{{ .Series }}.sql`, "apps/"},
		{`{{ .Source }}/{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}`, ""},
		{`{{ .Timestamp | date "2006" }}/{{ .Namespace }}/{{ .Series }}`, ""},
		{`dumps/{{ .Namespace }}-{{ .Series }}/{{ .Database }}/{{ .Timestamp.Unix }}`, "dumps/apps-shop/"},
	} {
		got, err := Scope(tc.template, "apps", "shop")
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("Scope(%s) = %q, want %q", tc.template, got, tc.want)
		}
	}
	if _, err := Scope(`{{ .Nope }}`, "apps", "shop"); err == nil {
		t.Error("a template that does not render has no scope")
	}
}

// A key is confined to a namespace's prefix only when it is a clean
// relative key strictly below it: a key that a store could resolve
// elsewhere, or that names the prefix itself, is not.
func TestConfine(t *testing.T) {
	for _, tc := range []struct {
		prefix, key string
		inside      bool
	}{
		{"alice/", "alice/nightly/1.dump", true},
		{"tenants/alice/", "tenants/alice/x", true},
		{"alice/", "alice/", false},
		{"alice/", "alice", false},
		{"alice/", "alicebob/x", false},
		{"alice/", "bob/x", false},
		{"alice/", "alice/../bob/x", false},
		{"alice/", "alice//x", false},
		{"alice/", "alice/./x", false},
		{"alice/", "/alice/x", false},
		{"alice/", "alice/x\n", false},
		{"tenants/alice/", "alice/x", false},
		// A prefix that is no clean directory confines nothing.
		{"alice", "alice/x", false},
		{"", "alice/x", false},
		{"a/../alice/", "a/../alice/x", false},
	} {
		err := Confine(tc.prefix, tc.key)
		if (err == nil) != tc.inside {
			t.Errorf("Confine(%q, %q) = %v, want inside %v", tc.prefix, tc.key, err, tc.inside)
		}
		if err != nil && !errors.Is(err, ErrOutsidePrefix) {
			t.Errorf("Confine(%q, %q) = %v, not ErrOutsidePrefix", tc.prefix, tc.key, err)
		}
	}
}

func TestConfineScope(t *testing.T) {
	for _, tc := range []struct {
		prefix, scope string
		inside        bool
	}{
		{"alice/", "alice/", true},
		{"alice/", "alice/nightly/", true},
		{"alice/", "", false},
		{"alice/", "alicebob/", false},
		{"alice/", "alice/../", false},
		{"tenants/alice/", "tenants/", false},
	} {
		if err := ConfineScope(tc.prefix, tc.scope); (err == nil) != tc.inside || (err != nil && !errors.Is(err, ErrOutsidePrefix)) {
			t.Errorf("ConfineScope(%q, %q) = %v, want inside %v", tc.prefix, tc.scope, err, tc.inside)
		}
	}
}

// The controller's check of a path template: one that does not parse or
// renders an unclean key is refused as such, one that leaves the prefix
// (also only for some runs' values, which Scope varies) as outside it.
func TestConfineTemplate(t *testing.T) {
	for _, tc := range []struct {
		text, prefix string
		scope        string
		outside      bool
		invalid      string
	}{
		{text: `{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}`, prefix: "alice/", scope: "alice/nightly/"},
		{text: `tenants/{{ .Namespace }}/{{ .Name }}`, prefix: "tenants/alice/", scope: "tenants/alice/"},
		{text: `{{ "bob" }}/x`, prefix: "alice/", outside: true},
		{text: `bob/{{ .Name }}`, prefix: "alice/", outside: true},
		{text: `{{ .Namespace }}{{ .Name }}/x`, prefix: "alice/", outside: true},
		{text: `{{ .Name }}`, prefix: "alice/", outside: true},
		// Inside for one name, outside for the others: Scope's samples
		// differ in every name.
		{text: `{{ if eq .Name "a" }}alice{{ else }}bob{{ end }}/x`, prefix: "alice/", outside: true},
		{text: `{{ .Namespace }}/x`, prefix: "tenants/alice/", outside: true},
		{text: `../bob/x`, prefix: "alice/", invalid: `".." segment`},
		{text: `/abs`, prefix: "alice/", invalid: "starts with '/'"},
		{text: `{{ .Nope }}`, prefix: "alice/", invalid: "can't evaluate field Nope"},
		{text: `{{ .Namespace }`, prefix: "alice/", invalid: "unexpected"},
		{text: `{{ .Namespace }}//x`, prefix: "alice/", invalid: "empty segment"},
	} {
		scope, err := ConfineTemplate(tc.text, tc.prefix, "alice", "nightly")
		switch {
		case tc.outside:
			if !errors.Is(err, ErrOutsidePrefix) || !strings.Contains(err.Error(), tc.prefix) {
				t.Errorf("%s: %v, want outside %s", tc.text, err, tc.prefix)
			}
		case tc.invalid != "":
			if err == nil || errors.Is(err, ErrOutsidePrefix) || !strings.Contains(err.Error(), tc.invalid) {
				t.Errorf("%s: %v, want an invalid template saying %q", tc.text, err, tc.invalid)
			}
		case err != nil || scope != tc.scope:
			t.Errorf("%s: scope %q, %v; want %q", tc.text, scope, err, tc.scope)
		}
	}
}
