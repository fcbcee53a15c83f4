package mongodb

import (
	"fmt"
	"strings"
)

// Rename maps namespaces matching From to To, as mongorestore's --nsFrom and
// --nsTo: '*' in From matches any run of characters, and each '*' in To is
// replaced by the corresponding match.
type Rename struct {
	From, To string
}

// matchWildcard matches s against a pattern whose '*' match any run of
// characters (the shortest that lets the rest match), and returns what each
// '*' matched.
func matchWildcard(pattern, s string) ([]string, bool) {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return nil, pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return nil, false
	}
	rest := s[len(parts[0]):]
	captures := make([]string, 0, len(parts)-1)
	for i, part := range parts[1:] {
		last := i == len(parts)-2
		var at int
		switch {
		case last && part == "":
			at = len(rest)
		case last:
			if !strings.HasSuffix(rest, part) {
				return nil, false
			}
			at = len(rest) - len(part)
		default:
			at = strings.Index(rest, part)
			if at < 0 {
				return nil, false
			}
		}
		captures = append(captures, rest[:at])
		rest = rest[at+len(part):]
	}
	return captures, true
}

// renameNamespace applies the first rule that matches db.collection and
// splits the result at its first dot; a namespace no rule matches keeps its
// name.
func renameNamespace(rules []Rename, db, collection string) (string, string, error) {
	ns := db + "." + collection
	for _, r := range rules {
		captures, ok := matchWildcard(r.From, ns)
		if !ok {
			continue
		}
		parts := strings.Split(r.To, "*")
		if len(parts) != len(captures)+1 {
			return "", "", fmt.Errorf("rename %q to %q: the patterns must have the same number of '*'", r.From, r.To)
		}
		var b strings.Builder
		for i, part := range parts {
			b.WriteString(part)
			if i < len(captures) {
				b.WriteString(captures[i])
			}
		}
		newDB, newColl, ok := strings.Cut(b.String(), ".")
		if !ok || newDB == "" || newColl == "" {
			return "", "", fmt.Errorf("rename %q to %q makes %s into %q, which is not a database.collection namespace", r.From, r.To, ns, b.String())
		}
		return newDB, newColl, nil
	}
	return db, collection, nil
}
