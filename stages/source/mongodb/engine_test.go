package mongodb

import (
	"net/url"
	"strings"
	"testing"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

const secret = "s3cr3t-p@ss:word/\"'"

var secretConnection = v1.DatabaseConnection{SecretRef: &v1.ConnectionSecretRef{Name: "db"}}

func secretEnv(name string) string {
	return map[string]string{
		source.EnvHost: "db.internal", source.EnvPort: "6543", source.EnvUsername: "app", source.EnvPassword: secret,
	}[name]
}

// The driver gets the password as a credential, never inside its URI, so
// no error can quote it; the user is looked up in admin unless the
// connection says otherwise, and a Secret's URI keeps its hosts and options.
func TestMongoClientOptions(t *testing.T) {
	c, err := source.ResolveConnection(secretConnection, "ns", DefaultPort, secretEnv)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := clientOptions(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := opts.GetURI(); got != "mongodb://db.internal:6543/" {
		t.Errorf("URI %q", got)
	}
	if a := opts.Auth; a == nil || a.Username != "app" || a.Password != secret || a.AuthSource != "admin" {
		t.Errorf("credential %+v", opts.Auth)
	}
	c.Params = url.Values{"authSource": {"shop"}, "tls": {"true"}}
	if opts, err = clientOptions(c); err != nil {
		t.Fatal(err)
	}
	if opts.Auth.AuthSource != "shop" || opts.GetURI() != "mongodb://db.internal:6543/?tls=true" {
		t.Errorf("the connection's authSource and tls: %q, %+v", opts.GetURI(), opts.Auth)
	}

	uriEnv := func(name string) string {
		if name == source.EnvURI {
			return "mongodb://app:" + "topsecret" + "@mongo-0:27017,mongo-1:27017/events?replicaSet=rs0"
		}
		return ""
	}
	c, err = source.ResolveConnection(secretConnection, "ns", DefaultPort, uriEnv)
	if err != nil {
		t.Fatal(err)
	}
	if opts, err = clientOptions(c); err != nil {
		t.Fatal(err)
	}
	if got := opts.GetURI(); strings.Contains(got, "topsecret") || len(opts.Hosts) != 2 || opts.ReplicaSet == nil || *opts.ReplicaSet != "rs0" {
		t.Errorf("from the Secret's URI: %q, hosts %v", got, opts.Hosts)
	}
	if opts.Auth.Password != "topsecret" || c.Database != "events" {
		t.Errorf("credential %+v, database %q", opts.Auth, c.Database)
	}
	c.Params = url.Values{"replicaSet": {"a"}, "directConnection": {"true"}}
	if _, err := clientOptions(c); err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("invalid settings: %v", err)
	}
}
