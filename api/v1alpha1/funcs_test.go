package v1alpha1

import "testing"

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.0KiB", 1536: "1.5KiB", 43200000: "41.2MiB", 5 << 40: "5.0TiB"} {
		if got := FormatSize(in); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestAllowsNamespace(t *testing.T) {
	s := &BackupStorage{}
	s.Namespace = "backup"
	s.Spec.AllowedNamespaces = []string{"apps"}
	for ns, want := range map[string]bool{"backup": true, "apps": true, "other": false} {
		if got := s.AllowsNamespace(ns); got != want {
			t.Errorf("%s: %v", ns, got)
		}
	}
	s.Spec.AllowedNamespaces = []string{"*"}
	if !s.AllowsNamespace("other") {
		t.Error("* allows every namespace")
	}
}

func TestNamespacePrefix(t *testing.T) {
	for tmpl, want := range map[string]string{"": "alice/", DefaultNamespacePrefix: "alice/", "tenants/{{ .Namespace }}/": "tenants/alice/", "t/ns-{{ .Namespace }}.d/": "t/ns-alice.d/"} {
		s := &BackupStorage{Spec: BackupStorageSpec{NamespacePrefix: tmpl}}
		if got := s.NamespacePrefix("alice"); got != want {
			t.Errorf("%q: %q, want %q", tmpl, got, want)
		}
	}
}
