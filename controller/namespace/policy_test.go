package namespace

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPolicy(t *testing.T) {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	for _, c := range []struct {
		names, selector string
		ns              *corev1.Namespace
		admits          bool
		refusal         string
	}{
		{"*", "", ns("apps", nil), true, ""},
		{"apps,shop", "", ns("shop", nil), true, ""},
		{"apps, shop", "", ns("wiki", nil), false, "workflow.namespaces (apps, shop): add wiki"},
		{"*", "team=a", ns("apps", map[string]string{"team": "a"}), true, ""},
		{"*", "team=a", ns("apps", map[string]string{"team": "b"}), false, "workflow.namespaceSelector (team=a): label namespace apps"},
		{"apps", "team in (a,b),!frozen", ns("apps", map[string]string{"team": "b", "frozen": ""}), false, "workflow.namespaceSelector"},
	} {
		p, err := NewPolicy(strings.Split(c.names, ","), c.selector)
		if err != nil {
			t.Fatalf("%s %s: %v", c.names, c.selector, err)
		}
		if got := p.Admits(c.ns); got != c.admits {
			t.Errorf("%s %s admits %s: %t", c.names, c.selector, c.ns.Name, got)
		}
		if !c.admits && !strings.Contains(p.refusal(c.ns), c.refusal) {
			t.Errorf("%s %s: refusal %q, want it to say %q", c.names, c.selector, p.refusal(c.ns), c.refusal)
		}
	}
	for _, c := range []struct{ names, selector, want string }{
		{"", "", "no namespace"},
		{"*,apps", "", "list no other"},
		{"*", "team in a", "namespace selector"},
	} {
		if _, err := NewPolicy(strings.Split(c.names, ","), c.selector); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q %q: %v, want an error saying %q", c.names, c.selector, err, c.want)
		}
	}
	if (Policy{}).Admits(ns("apps", nil)) {
		t.Error("the zero Policy admits a namespace")
	}
}
