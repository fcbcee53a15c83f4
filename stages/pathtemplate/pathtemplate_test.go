package pathtemplate

import (
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
