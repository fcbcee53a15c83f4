package storageref

import (
	"cmp"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/controller/compiler"
	"github.com/backflow-dev/backflow/stages"
	"github.com/backflow-dev/backflow/stages/pathtemplate"
	"github.com/backflow-dev/backflow/stages/storage"
)

// Grant is what one step of a run may do in its storage, when its
// credentials are minted: the statements of its session policy, and the
// step's deadline, which the credentials outlast.
type Grant struct {
	Step     string
	Deadline time.Duration
	// Scope is the key prefix (or, for a single object, the key) the grant
	// confines the step to, in the bucket: for the Event that says what was
	// minted.
	Scope      string
	statements []statement
	// refused says why the grant allows nothing, when it does not.
	refused string
}

// Policy is the grant's session policy, as AssumeRole takes it.
func (g Grant) Policy() string {
	data, err := json.Marshal(policyDocument{Version: "2012-10-17", Statement: g.statements})
	if err != nil {
		panic(err) // plain strings: cannot fail
	}
	return string(data)
}

type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

type statement struct {
	Effect    string                         `json:"Effect"`
	Action    []string                       `json:"Action"`
	Resource  []string                       `json:"Resource"`
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

func allow(resources []string, actions ...string) statement {
	return statement{Effect: "Allow", Action: actions, Resource: resources}
}

// objectsUnder is the ARN of the objects of bucket whose key starts with
// prefix and ends with suffix.
func objectsUnder(bucket, prefix, suffix string) []string {
	return []string{"arn:aws:s3:::" + bucket + "/" + prefix + "*" + suffix}
}

// BackupGrants are the grants of the steps of a Backup's run (one-shot or a
// schedule's) on storage st. Each is confined to the series' scope: the
// directory every key of the series lies below (pathtemplate.Scope), within
// the namespace's prefix, or the namespace's prefix itself when the scope
// cannot be told or is not inside it.
//
//   - dump writes the object, copies the segments of a multipart upload into
//     it (UploadPartCopy reads them), aborts an upload that failed and
//     deletes its segments;
//   - verify reads, and rewrites nothing but manifests (mark-verified);
//   - rotate lists the scope, reads the manifests and deletes.
func BackupGrants(st *v1.BackupStorage, b *v1.Backup) []Grant {
	s3 := st.Spec.S3
	nsPrefix := st.NamespacePrefix(b.Namespace)
	scope, err := pathtemplate.Scope(cmp.Or(b.Spec.Storage.Path, compiler.DefaultPath), b.Namespace, b.SeriesName())
	if err != nil || !strings.HasPrefix(scope, nsPrefix) {
		scope = nsPrefix
	}
	full := storage.JoinKey(s3.Prefix, scope)
	var grants []Grant
	for _, step := range compiler.BackupStorageSteps(b.Spec) {
		g := Grant{Step: step.Name, Deadline: step.Deadline, Scope: full}
		switch step.Name {
		case compiler.StepDump:
			g.statements = []statement{allow(objectsUnder(s3.Bucket, full, ""),
				"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:DeleteObject")}
		case compiler.StepVerify:
			g.statements = []statement{
				allow(objectsUnder(s3.Bucket, full, ""), "s3:GetObject"),
				allow(objectsUnder(s3.Bucket, full, stages.ManifestSuffix), "s3:PutObject"),
			}
		case compiler.StepRotate:
			list := allow([]string{"arn:aws:s3:::" + s3.Bucket}, "s3:ListBucket")
			list.Condition = map[string]map[string][]string{"StringLike": {"s3:prefix": {full + "*"}}}
			g.statements = []statement{list, allow(objectsUnder(s3.Bucket, full, ""), "s3:GetObject", "s3:DeleteObject")}
		default:
			continue
		}
		grants = append(grants, g)
	}
	return grants
}

// RestoreGrants are the grants of the steps of a Restore's run on storage
// st: reading exactly the object key (relative to the storage's prefix) and
// its manifest. A key outside the namespace's prefix gets grants that allow
// nothing, which no credentials are minted for: the controller refuses such
// a key before it creates the Workflow, and the policy stays confined even
// where it did not.
func RestoreGrants(st *v1.BackupStorage, rs *v1.Restore, key string) []Grant {
	s3 := st.Spec.S3
	full := storage.JoinKey(s3.Prefix, key)
	object := "arn:aws:s3:::" + s3.Bucket + "/" + full
	nsPrefix := st.NamespacePrefix(rs.Namespace)
	inside := path.Clean(key) == key && strings.HasPrefix(key, nsPrefix)
	var grants []Grant
	for _, step := range compiler.RestoreStorageSteps(rs.Spec) {
		g := Grant{Step: step.Name, Deadline: step.Deadline, Scope: full}
		if inside {
			g.statements = []statement{allow([]string{object, object + stages.ManifestSuffix}, "s3:GetObject")}
		} else {
			g.refused = fmt.Sprintf("the key %s is not inside the prefix %s of namespace %s", key, nsPrefix, rs.Namespace)
		}
		grants = append(grants, g)
	}
	return grants
}
