// Package source is what the engines (postgresql, mysql, mongodb, pvc,
// command; see Engine) share: their interface and registry, and the plumbing
// that runs the commands that produce a backup and the ones that consume it
// on restore, as argument lists with their secrets in the environment or in
// files only they can read, never on the command line, the connections they
// resolve and the tar archives of volumes.
package source

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// Environment variables that carry a connection Secret's values into the
// step container; the controller fills them from secretKeyRefs.
const (
	EnvHost     = "BACKFLOW_DB_HOST"
	EnvPort     = "BACKFLOW_DB_PORT"
	EnvUsername = "BACKFLOW_DB_USERNAME"
	EnvPassword = "BACKFLOW_DB_PASSWORD"
	EnvDatabase = "BACKFLOW_DB_DATABASE"
	EnvURI      = "BACKFLOW_DB_URI"
)

// Connection is a database connection with every value resolved.
type Connection struct {
	Host     string
	Port     int
	Username string
	Password string
	Database string
	// Params are extra settings from a URI's query, such as sslmode or
	// authSource.
	Params url.Values
	// URI is the connection URI from the Secret, if there was one.
	URI string
}

// ResolveConnection merges a connection spec with the Secret's values
// (getenv reads them): values in the spec win, then the URI's, then the
// Secret's separate keys, then the engine's default port.
func ResolveConnection(spec v1.DatabaseConnection, namespace string, defaultPort int, getenv func(string) string) (Connection, error) {
	c := Connection{
		Host:     getenv(EnvHost),
		Username: getenv(EnvUsername),
		Password: getenv(EnvPassword),
		Database: getenv(EnvDatabase),
		URI:      getenv(EnvURI),
	}
	if p := getenv(EnvPort); p != "" {
		port, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || port < 1 || port > 65535 {
			return c, fmt.Errorf("the connection Secret's port %q is not a port number", p)
		}
		c.Port = port
	}
	if c.URI != "" {
		if err := c.applyURI(c.URI); err != nil {
			return c, err
		}
	}
	switch {
	case spec.Host != "":
		c.Host = spec.Host
	case spec.ServiceRef != nil:
		c.Host = fmt.Sprintf("%s.%s.svc", spec.ServiceRef.Name, namespace)
		if spec.ServiceRef.Port != nil {
			c.Port = int(*spec.ServiceRef.Port)
		}
	}
	if spec.Port != nil {
		c.Port = int(*spec.Port)
	}
	if spec.Username != "" {
		c.Username = spec.Username
	}
	if spec.Database != "" {
		c.Database = spec.Database
	}
	if c.Port == 0 {
		c.Port = defaultPort
	}
	if c.Host == "" {
		return c, fmt.Errorf("no database host: set connection.host or connection.serviceRef, or a host (or URI) key in the connection Secret")
	}
	return c, nil
}

// applyURI fills the connection from a postgresql://, mysql:// or mongodb://
// URI. Errors never repeat the URI, which may hold a password.
func (c *Connection) applyURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("the connection Secret's URI is not a valid URI (scheme://user:password@host:port/database)")
	}
	host := u.Host
	// A mongodb:// URI may list several hosts; keep them as they are.
	if !strings.Contains(host, ",") {
		host = u.Hostname()
		if p := u.Port(); p != "" {
			port, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("the connection Secret's URI has an invalid port")
			}
			c.Port = port
		}
	}
	c.Host = host
	if u.User != nil {
		c.Username = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			c.Password = pw
		}
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		c.Database = db
	}
	c.Params = u.Query()
	return nil
}

// DatabaseName is the database of an engine that dumps databases, for
// Runner.DatabaseName: the one of databases when it names one, none when it
// names several, and otherwise the connection's, resolved with the
// connection Secret's values when opts can read them.
func DatabaseName(databases []string, conn v1.DatabaseConnection, opts Options) string {
	switch len(databases) {
	case 0:
	case 1:
		return databases[0]
	default:
		return ""
	}
	if opts.Getenv == nil {
		return conn.Database
	}
	resolved, err := ResolveConnection(conn, opts.Namespace, 1, opts.Getenv)
	if err != nil {
		return conn.Database
	}
	return resolved.Database
}

// DescribeConnection says which database a connection names and where, for
// the engines' descriptions.
func DescribeConnection(c v1.DatabaseConnection) string {
	where := c.Host
	if c.ServiceRef != nil {
		where = "service " + c.ServiceRef.Name
	}
	if where == "" {
		where = "from Secret " + c.SecretRef.Name
	}
	if c.Database != "" {
		return fmt.Sprintf("database %s on %s", c.Database, where)
	}
	return "on " + where
}
