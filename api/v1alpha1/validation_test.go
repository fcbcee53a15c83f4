package v1alpha1_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/test/envtest"
)

var cluster *envtest.Cluster

func TestMain(m *testing.M) { envtest.Main(m, &cluster) }

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "api-"}}
	if err := cluster.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Client.Delete(context.Background(), ns) })
	return ns.Name
}

// decodeDocuments splits a multi-document YAML file into objects.
func decodeDocuments(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var obj map[string]any
		err := dec.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		if obj != nil {
			objs = append(objs, &unstructured.Unstructured{Object: obj})
		}
	}
}

func TestExamplesAreAccepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(envtest.RepoRoot(), "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 7 {
		t.Fatalf("expected at least 7 examples, found %d", len(files))
	}
	kinds := map[string]bool{}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ns := newNamespace(t)
			objs := decodeDocuments(t, data)
			if len(objs) == 0 {
				t.Fatal("no objects in example")
			}
			for _, obj := range objs {
				obj.SetNamespace(ns)
				if err := cluster.Client.Create(context.Background(), obj); err != nil {
					t.Fatalf("%s %s rejected: %v", obj.GetKind(), obj.GetName(), err)
				}
				kinds[obj.GetKind()] = true
			}
		})
	}
	for _, kind := range []string{"BackupStorage", "Backup", "BackupSchedule", "Restore"} {
		if !kinds[kind] {
			t.Errorf("no example creates a %s", kind)
		}
	}
}

const baseBackup = `
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: base}
spec:
  source:
    postgresql:
      connection: {host: db.example.svc, secretRef: {name: db}}
  storage: {name: minio}
`

const baseStorage = `
apiVersion: backflow.dev/v1alpha1
kind: BackupStorage
metadata: {name: base}
spec:
  s3:
    endpoint: http://minio.example.svc:9000
    bucket: backups
    credentials: {secretRef: {name: minio}}
`

const baseSchedule = `
apiVersion: backflow.dev/v1alpha1
kind: BackupSchedule
metadata: {name: base}
spec:
  schedule: "0 3 * * *"
  template:
    spec:
      source:
        mysql:
          connection: {host: db.example.svc, secretRef: {name: db}}
      storage: {name: minio}
`

const baseRestore = `
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: base}
spec:
  from: {backupRef: {name: nightly}}
  target:
    postgresql:
      connection: {host: db.example.svc, secretRef: {name: db}}
`

// objectFrom applies a JSON merge patch, written as YAML, to a base object.
func objectFrom(t *testing.T, base, patch string) *unstructured.Unstructured {
	t.Helper()
	baseJSON, err := yaml.YAMLToJSON([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	patchJSON, err := yaml.YAMLToJSON([]byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	merged, err := jsonpatch.MergePatch(baseJSON, patchJSON)
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := json.Unmarshal(merged, &obj.Object); err != nil {
		t.Fatal(err)
	}
	return obj
}

const validRecipient = "age1yrprxpvqe969k5fdmdr3xdr7ws6yzyar2gyn4asyvnunw9e6qsaqu7sdmw"

type invalidCase struct {
	name  string
	base  string
	patch string
	// field is the path the apiserver must name; message is a fragment of
	// what it must say about it.
	field, message string
}

var invalidCases = []invalidCase{
	{"backup without source", baseBackup, `spec: {source: {postgresql: null}}`,
		"spec.source", "set exactly one of postgresql, mysql, mongodb, pvc and command"},
	{"backup with two sources", baseBackup, `spec: {source: {pvc: {claimName: data}}}`,
		"spec.source", "set exactly one of postgresql, mysql, mongodb, pvc and command"},
	{"gzip level out of range", baseBackup, `spec: {compression: {algorithm: gzip, level: 12}}`,
		"spec.compression", "between 1 and 9 for gzip"},
	{"zstd level out of range", baseBackup, `spec: {compression: {algorithm: zstd, level: 23}}`,
		"spec.compression", "between 1 and 22 for zstd"},
	{"zstd level zero", baseBackup, `spec: {compression: {level: 0}}`,
		"spec.compression", "between 1 and 22 for zstd"},
	{"level without compression", baseBackup, `spec: {compression: {algorithm: none, level: 3}}`,
		"spec.compression", "must not be set when compression.algorithm is none"},
	{"unknown compression algorithm", baseBackup, `spec: {compression: {algorithm: lz4}}`,
		"spec.compression.algorithm", `supported values: "zstd", "gzip", "none"`},
	{"malformed age recipient", baseBackup, `spec: {encryption: {age: {recipients: [age1notakey]}}}`,
		"spec.encryption.age.recipients", "must be an age public key"},
	{"ssh key as age recipient", baseBackup, `spec: {encryption: {age: {recipients: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG"]}}}`,
		"spec.encryption.age.recipients", "must be an age public key"},
	{"age without recipients", baseBackup, `spec: {encryption: {age: {identitySecretRef: {name: id, key: key}}}}`,
		"spec.encryption.age", "set recipients, recipientsSecretRef or generate"},
	{"generate with an identity of its own", baseBackup, `spec: {encryption: {age: {generate: {secretName: keys}, identitySecretRef: {name: id, key: key}}}}`,
		"spec.encryption.age", "set generate or identitySecretRef, not both"},
	{"generate into no Secret name", baseBackup, `spec: {encryption: {age: {generate: {secretName: "Keys{{x}}"}}}}`,
		"spec.encryption.age.generate.secretName", "should match"},
	{"absolute path template", baseBackup, `spec: {storage: {path: "/backups/{{ .Name }}"}}`,
		"spec.storage.path", "remove the leading '/'"},
	{"path template escaping the prefix", baseBackup, `spec: {storage: {path: "{{ .Namespace }}/../other/{{ .Name }}"}}`,
		"spec.storage.path", "must not contain a '..' segment"},
	{"empty path template", baseBackup, `spec: {storage: {path: ""}}`,
		"spec.storage.path", "at least 1 chars long"},
	{"storage without name", baseBackup, `spec: {storage: {name: null}}`,
		"spec.storage.name", "Required value"},
	{"retention without rules", baseBackup, `spec: {retention: {}}`,
		"spec.retention", "set at least one of days, keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly and keepYearly"},
	{"negative keepHourly", baseBackup, `spec: {retention: {keepHourly: -1}}`,
		"spec.retention.keepHourly", "greater than or equal to 0"},
	{"keepDaily above a hundred years", baseBackup, `spec: {retention: {keepDaily: 36501}}`,
		"spec.retention.keepDaily", "less than or equal to 36500"},
	{"negative keepWeekly", baseBackup, `spec: {retention: {keepWeekly: -2}}`,
		"spec.retention.keepWeekly", "greater than or equal to 0"},
	{"keepMonthly not a number", baseBackup, `spec: {retention: {keepMonthly: "twelve"}}`,
		"spec.retention.keepMonthly", "must be of type integer"},
	{"keepYearly above a century", baseBackup, `spec: {retention: {keepYearly: 101}}`,
		"spec.retention.keepYearly", "less than or equal to 100"},
	{"negative retention days", baseBackup, `spec: {retention: {days: -1}}`,
		"spec.retention.days", "greater than or equal to 0"},
	{"negative keepLast", baseBackup, `spec: {retention: {keepLast: -3}}`,
		"spec.retention.keepLast", "greater than or equal to 0"},
	{"step deadline under a minute", baseBackup, `spec: {stepDeadlineSeconds: {dump: 5}}`,
		"spec.stepDeadlineSeconds.dump", "greater than or equal to 60"},
	{"step deadline longer than the run's", baseBackup, `spec: {activeDeadlineSeconds: 3600, stepDeadlineSeconds: {verify: 7200}}`,
		"spec", "a step's deadline cannot be longer than activeDeadlineSeconds"},
	{"scheduled step deadline longer than the run's", baseSchedule, `spec: {template: {spec: {activeDeadlineSeconds: 600, stepDeadlineSeconds: {rotate: 900}}}}`,
		"spec.template.spec", "a step's deadline cannot be longer than activeDeadlineSeconds"},
	{"restore step deadline longer than the run's", baseRestore, `spec: {activeDeadlineSeconds: 600, stepDeadlineSeconds: {restore: 601}}`,
		"spec", "a step's deadline cannot be longer than activeDeadlineSeconds"},
	{"restore step deadline over a week", baseRestore, `spec: {stepDeadlineSeconds: {verify: 604801}}`,
		"spec.stepDeadlineSeconds.verify", "less than or equal to 604800"},
	{"retention without verification", baseBackup, `spec: {retention: {keepLast: 3}, verify: {checksum: false}}`,
		"spec", "retention needs verify.checksum"},
	{"hook with exec and container", baseBackup,
		`spec: {hooks: {pre: {exec: {podName: app, command: [sync]}, container: {image: busybox, command: [sync]}}}}`,
		"spec.hooks.pre", "set exactly one of exec and container"},
	{"exec hook without a pod", baseBackup, `spec: {hooks: {pre: {exec: {command: [sync]}}}}`,
		"spec.hooks.pre.exec", "set exactly one of podName and podSelector"},
	{"exec hook without command", baseBackup, `spec: {hooks: {post: {exec: {podName: app, command: []}}}}`,
		"spec.hooks.post.exec.command", "should have at least 1 items"},
	{"unknown hook error policy", baseBackup, `spec: {hooks: {post: {exec: {podName: app, command: [sync]}, onError: Ignore}}}`,
		"spec.hooks.post.onError", `supported values: "Continue", "Fail"`},
	{"hook timeout zero", baseBackup, `spec: {hooks: {pre: {exec: {podName: app, command: [sync]}, timeoutSeconds: 0}}}`,
		"spec.hooks.pre.timeoutSeconds", "greater than or equal to 1"},
	{"unknown pg_dump format", baseBackup, `spec: {source: {postgresql: {format: directory}}}`,
		"spec.source.postgresql.format", `supported values: "plain", "custom", "tar"`},
	{"host and serviceRef together", baseBackup, `spec: {source: {postgresql: {connection: {serviceRef: {name: db}}}}}`,
		"spec.source.postgresql.connection", "set at most one of host and serviceRef"},
	{"connection that finds no database", baseBackup, `spec: {source: {postgresql: {connection: {host: null, secretRef: null}}}}`,
		"spec.source.postgresql.connection", "set host, serviceRef or secretRef"},
	{"port out of range", baseBackup, `spec: {source: {postgresql: {connection: {port: 70000}}}}`,
		"spec.source.postgresql.connection.port", "less than or equal to 65535"},
	{"host with shell characters", baseBackup, `spec: {source: {postgresql: {connection: {host: "db;rm -rf /"}}}}`,
		"spec.source.postgresql.connection.host", "should match"},
	{"connection secret without name", baseBackup, `spec: {source: {postgresql: {connection: {secretRef: {name: ""}}}}}`,
		"spec.source.postgresql.connection.secretRef.name", "at least 1 chars long"},
	{"unknown mysql flavor", baseBackup, `spec: {source: {postgresql: null, mysql: {flavor: percona, connection: {host: db}}}}`,
		"spec.source.mysql.flavor", `supported values: "mysql", "mariadb"`},
	{"mongodb parallel collections zero", baseBackup, `spec: {source: {postgresql: null, mongodb: {parallelCollections: 0, connection: {host: db}}}}`,
		"spec.source.mongodb.parallelCollections", "greater than or equal to 1"},
	{"mongodb database name with a slash", baseBackup, `spec: {source: {postgresql: null, mongodb: {databases: [shop, "a/b"], connection: {host: db}}}}`,
		"spec.source.mongodb.databases[1]", "should match"},
	{"mongodb databases beside the connection's", baseBackup, `spec: {source: {postgresql: null, mongodb: {databases: [shop], connection: {host: db, database: crm}}}}`,
		"spec.source.mongodb", "set connection.database or databases, not both"},
	{"mongodb empty collection pattern", baseBackup, `spec: {source: {postgresql: null, mongodb: {excludeCollections: [""], connection: {host: db}}}}`,
		"spec.source.mongodb.excludeCollections[0]", "at least 1 chars long"},
	{"pvc without claim", baseBackup, `spec: {source: {postgresql: null, pvc: {paths: [data]}}}`,
		"spec.source.pvc.claimName", "Required value"},
	{"pvc path outside the volume", baseBackup, `spec: {source: {postgresql: null, pvc: {claimName: data, paths: [media, ../etc]}}}`,
		"spec.source.pvc.paths", "must be relative to the volume root"},
	{"command source without command", baseBackup, `spec: {source: {postgresql: null, command: {image: busybox, command: []}}}`,
		"spec.source.command.command", "should have at least 1 items"},
	{"command source without image", baseBackup, `spec: {source: {postgresql: null, command: {command: [cat]}}}`,
		"spec.source.command.image", "Required value"},
	{"restore test of a volume", baseBackup, `spec: {source: {postgresql: null, pvc: {claimName: data}}, verify: {restoreTest: {}}}`,
		"spec", "verify.restoreTest needs a postgresql, mysql or mongodb source"},
	{"restore test of plain SQL without a database", baseBackup, `spec: {source: {postgresql: {format: plain}}, verify: {restoreTest: {}}}`,
		"spec", "verify.restoreTest.connection is required"},
	{"retries out of range", baseBackup, `spec: {retries: 11}`,
		"spec.retries", "less than or equal to 10"},
	{"unknown deletion policy", baseBackup, `spec: {deletionPolicy: Orphan}`,
		"spec.deletionPolicy", `supported values: "Retain", "Delete"`},
	{"active deadline zero", baseBackup, `spec: {activeDeadlineSeconds: 0}`,
		"spec.activeDeadlineSeconds", "greater than or equal to 1"},

	{"endpoint without scheme", baseStorage, `spec: {s3: {endpoint: "minio:9000"}}`,
		"spec.s3.endpoint", "must be an http:// or https:// URL"},
	{"endpoint with a path", baseStorage, `spec: {s3: {endpoint: "https://s3.example.com/backups"}}`,
		"spec.s3.endpoint", "no path"},
	{"invalid bucket name", baseStorage, `spec: {s3: {bucket: Bad_Bucket}}`,
		"spec.s3.bucket", "should match"},
	{"prefix escaping", baseStorage, `spec: {s3: {prefix: "a/../../b"}}`,
		"spec.s3.prefix", "must not start with '/' or contain '..'"},
	{"insecure TLS with CA", baseStorage, `spec: {s3: {tls: {insecureSkipVerify: true, caSecretRef: {name: ca, key: ca.crt}}}}`,
		"spec.s3.tls", "insecureSkipVerify cannot be combined with a CA bundle"},
	{"storage without credentials", baseStorage, `spec: {s3: {credentials: null}}`,
		"spec.s3.credentials", "Required value"},
	{"part size too small", baseStorage, `spec: {s3: {partSizeMiB: 1}}`,
		"spec.s3.partSizeMiB", "greater than or equal to 5"},
	{"namespace prefix without the namespace", baseStorage, `spec: {namespacePrefix: "tenants/"}`,
		"spec.namespacePrefix", "must hold {{ .Namespace }} exactly once"},
	{"namespace prefix with the namespace twice", baseStorage, `spec: {namespacePrefix: "{{ .Namespace }}/{{ .Namespace }}/"}`,
		"spec.namespacePrefix", "must hold {{ .Namespace }} exactly once"},
	{"namespace prefix spelling the namespace otherwise", baseStorage, `spec: {namespacePrefix: "{{.Namespace}}/"}`,
		"spec.namespacePrefix", "must hold {{ .Namespace }} exactly once"},
	{"namespace prefix with another template", baseStorage, `spec: {namespacePrefix: "{{ .Namespace }}/{{ .Name }}/"}`,
		"spec.namespacePrefix", "and no other template"},
	{"namespace prefix ending in the namespace", baseStorage, `spec: {namespacePrefix: "tenants/{{ .Namespace }}"}`,
		"spec.namespacePrefix", "must end with '/'"},
	{"namespace prefix continuing the namespace's name", baseStorage, `spec: {namespacePrefix: "tenants/{{ .Namespace }}-x"}`,
		"spec.namespacePrefix", "must end with '/'"},
	{"namespace prefix from the top", baseStorage, `spec: {namespacePrefix: "/{{ .Namespace }}/"}`,
		"spec.namespacePrefix", "no leading '/'"},
	{"namespace prefix climbing out", baseStorage, `spec: {namespacePrefix: "../{{ .Namespace }}/"}`,
		"spec.namespacePrefix", "'..' segments"},
	{"namespace prefix with an empty segment", baseStorage, `spec: {namespacePrefix: "tenants//{{ .Namespace }}/"}`,
		"spec.namespacePrefix", "without empty"},
	{"namespace prefix with a dot segment", baseStorage, `spec: {namespacePrefix: "./{{ .Namespace }}/"}`,
		"spec.namespacePrefix", "'.' or '..' segments"},

	{"cron with four fields", baseSchedule, `spec: {schedule: "0 3 * *"}`,
		"spec.schedule", "must be a cron expression with five fields"},
	{"cron in words", baseSchedule, `spec: {schedule: "every day at 3"}`,
		"spec.schedule", "must be a cron expression with five fields"},
	{"unknown cron macro", baseSchedule, `spec: {schedule: "@fortnightly"}`,
		"spec.schedule", "must be a cron expression with five fields"},
	{"unknown time zone", baseSchedule, `spec: {timezone: Mars/Olympus_Mons}`,
		"spec.timezone", "must be an IANA time zone name"},
	{"time zone offset", baseSchedule, `spec: {timezone: "+02:00"}`,
		"spec.timezone", "must be an IANA time zone name"},
	{"unknown concurrency policy", baseSchedule, `spec: {concurrencyPolicy: Sometimes}`,
		"spec.concurrencyPolicy", `supported values: "Allow", "Forbid", "Replace"`},
	{"negative history limit", baseSchedule, `spec: {failedBackupsHistoryLimit: -1}`,
		"spec.failedBackupsHistoryLimit", "greater than or equal to 0"},
	{"invalid backup template", baseSchedule, `spec: {template: {spec: {source: {pvc: {claimName: data}}}}}`,
		"spec.template.spec.source", "set exactly one of postgresql, mysql, mongodb, pvc and command"},
	{"schedule without template", baseSchedule, `spec: {template: null}`,
		"spec.template", "Required value"},

	{"restore from nothing", baseRestore, `spec: {from: {backupRef: null}}`,
		"spec.from", "set exactly one of backupRef, scheduleRef and object"},
	{"restore from two places", baseRestore, `spec: {from: {scheduleRef: {name: nightly}}}`,
		"spec.from", "set exactly one of backupRef, scheduleRef and object"},
	{"restore into two targets", baseRestore, `spec: {target: {command: {image: busybox, command: [cat]}}}`,
		"spec.target", "set exactly one of postgresql, mysql, mongodb, pvc and command"},
	{"restore object with absolute key", baseRestore,
		`spec: {from: {backupRef: null, object: {storage: {name: minio}, key: /etc/passwd}}}`,
		"spec.from.object.key", "must be relative to the storage prefix"},
	{"mongodb rename with unmatched wildcards", baseRestore,
		`spec: {target: {postgresql: null, mongodb: {connection: {host: db}, rename: [{from: "shop.*", to: "copy.orders"}]}}}`,
		"spec.target.mongodb.rename[0]", "from and to must have the same number of '*'"},
	{"mongodb rename without a database", baseRestore,
		`spec: {target: {postgresql: null, mongodb: {connection: {host: db}, rename: [{from: "*", to: "*"}]}}}`,
		"spec.target.mongodb.rename[0].from", "should match"},
	{"backup running its steps as the hook account", baseBackup,
		`spec: {serviceAccountName: backflow-hook}`,
		"spec.serviceAccountName", "backflow-hook is the exec hooks' own account"},
	{"restore running its steps as the hook account", baseRestore,
		`spec: {serviceAccountName: backflow-hook}`,
		"spec.serviceAccountName", "backflow-hook is the exec hooks' own account"},
	{"restore into a path outside the volume", baseRestore,
		`spec: {target: {postgresql: null, pvc: {claimName: data, path: ../../x}}}`,
		"spec.target.pvc.path", "must be relative to the volume root"},
}

func TestInvalidSpecsAreRejected(t *testing.T) {
	if len(invalidCases) < 30 {
		t.Fatalf("the table must hold at least 30 invalid specs, it has %d", len(invalidCases))
	}
	ns := newNamespace(t)
	for _, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := objectFrom(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			err := cluster.Client.Create(context.Background(), obj)
			if err == nil {
				_ = cluster.Client.Delete(context.Background(), obj)
				t.Fatalf("accepted; want rejection naming %s", tc.field)
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.field+": ") {
				t.Errorf("error does not name field %q:\n%s", tc.field, msg)
			}
			if !strings.Contains(msg, tc.message) {
				t.Errorf("error does not say %q:\n%s", tc.message, msg)
			}
		})
	}
}

// The valid edges of the rules above: the rules must not reject these.
func TestValidEdgesAreAccepted(t *testing.T) {
	cases := []struct{ name, base, patch string }{
		{"cron with steps and lists", baseSchedule, `spec: {schedule: "*/15 0-6,22,23 * * *"}`},
		{"cron with day names", baseSchedule, `spec: {schedule: "30 2 * * MON-FRI"}`},
		{"cron with month names", baseSchedule, `spec: {schedule: "0 0 1 JAN,JUL *"}`},
		{"cron macro", baseSchedule, `spec: {schedule: "@daily"}`},
		{"three-part time zone", baseSchedule, `spec: {timezone: America/Argentina/Buenos_Aires}`},
		{"UTC", baseSchedule, `spec: {timezone: UTC}`},
		{"zstd at its best", baseBackup, `spec: {compression: {algorithm: zstd, level: 22}}`},
		{"gzip at its fastest", baseBackup, `spec: {compression: {algorithm: gzip, level: 1}}`},
		{"no compression", baseBackup, `spec: {compression: {algorithm: none}}`},
		{"several recipients", baseBackup, fmt.Sprintf(`spec: {encryption: {age: {recipients: [%s, age1yng9s9l0m2m4g38qca3ga5qul620vjkvwmmhthg7jupr6f3vgp0qepxhw3]}}}`, validRecipient)},
		{"generated identity alone", baseBackup, `spec: {encryption: {age: {generate: {secretName: shop-age}}}}`},
		{"generated identity and an offline recipient", baseBackup, fmt.Sprintf(`spec: {encryption: {age: {generate: {secretName: shop-age}, recipients: [%s]}}}`, validRecipient)},
		{"keepLast zero with days", baseBackup, `spec: {retention: {days: 0, keepLast: 0}}`},
		{"grandfather-father-son alone", baseBackup, `spec: {retention: {keepDaily: 7, keepWeekly: 5, keepMonthly: 12, keepYearly: 3}}`},
		{"keepHourly alone", baseBackup, `spec: {retention: {keepHourly: 24}}`},
		{"dots inside names in path", baseBackup, `spec: {storage: {path: "a/b..c/{{ .Name }}.sql"}}`},
		{"https endpoint with port and slash", baseStorage, `spec: {s3: {endpoint: "https://10.0.0.1:9443/"}}`},
		{"namespace prefix below a directory", baseStorage, `spec: {namespacePrefix: "tenants/{{ .Namespace }}/"}`},
		{"namespace prefix with text around the namespace", baseStorage, `spec: {namespacePrefix: "t/ns-{{ .Namespace }}.d/backups/"}`},
		{"metadata endpoint allowed", baseStorage, `spec: {s3: {endpoint: "http://169.254.169.254", allowMetadataEndpoint: true}}`},
		{"restore from object", baseRestore, `spec: {from: {backupRef: null, object: {storage: {name: minio}, key: a/b/c.sql.zst}}}`},
		{"service reference", baseBackup, `spec: {source: {postgresql: {connection: {host: null, serviceRef: {name: db, port: 5433}}}}}`},
		{"step deadlines up to the run's", baseBackup, `spec: {activeDeadlineSeconds: 3600, stepDeadlineSeconds: {dump: 3600, verify: 60}}`},
		{"step deadlines without a run deadline", baseRestore, `spec: {stepDeadlineSeconds: {verify: 604800, restore: 60}}`},
	}
	ns := newNamespace(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := objectFrom(t, tc.base, tc.patch)
			obj.SetNamespace(ns)
			obj.SetName("")
			obj.SetGenerateName("edge-")
			if err := cluster.Client.Create(context.Background(), obj); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	ns := newNamespace(t)
	obj := objectFrom(t, baseBackup, `{}`)
	obj.SetNamespace(ns)
	if err := cluster.Client.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	var b v1.Backup
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "base"}, &b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Compression == nil || b.Spec.Compression.Algorithm != v1.CompressionZstd {
		t.Errorf("compression defaults to zstd, got %+v", b.Spec.Compression)
	}
	if b.Spec.Verify == nil || b.Spec.Verify.Checksum == nil || !*b.Spec.Verify.Checksum {
		t.Errorf("verify.checksum defaults to true, got %+v", b.Spec.Verify)
	}
	// The controller chooses the path from the storage's namespacePrefix.
	if b.Spec.Storage.Path != "" {
		t.Errorf("storage.path is not defaulted, got %q", b.Spec.Storage.Path)
	}
	if b.Spec.Source.PostgreSQL.Format != v1.PostgreSQLFormatCustom {
		t.Errorf("postgresql.format defaults to custom, got %q", b.Spec.Source.PostgreSQL.Format)
	}
	if ref := b.Spec.Source.PostgreSQL.Connection.SecretRef; ref.PasswordKey != "password" || ref.UsernameKey != "username" || ref.URIKey != "" {
		t.Errorf("secret keys default to username/password and no URI, got %+v", ref)
	}
	if b.Spec.DeletionPolicy != v1.DeletionPolicyRetain || b.Spec.Retries == nil || *b.Spec.Retries != 2 {
		t.Errorf("deletionPolicy Retain and retries 2 by default, got %q %v", b.Spec.DeletionPolicy, b.Spec.Retries)
	}

	sched := objectFrom(t, baseSchedule, `{}`)
	sched.SetNamespace(ns)
	if err := cluster.Client.Create(context.Background(), sched); err != nil {
		t.Fatal(err)
	}
	var s v1.BackupSchedule
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "base"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Spec.ConcurrencyPolicy != v1.ConcurrencyForbid || *s.Spec.SuccessfulBackupsHistoryLimit != 3 ||
		*s.Spec.FailedBackupsHistoryLimit != 1 || s.Spec.MissingAfterIntervals != 2 {
		t.Errorf("schedule defaults: got %+v", s.Spec)
	}
	if s.Spec.Template.Spec.Source.MySQL.Flavor != v1.MySQLFlavorMySQL || !*s.Spec.Template.Spec.Source.MySQL.SingleTransaction {
		t.Errorf("mysql defaults: got %+v", s.Spec.Template.Spec.Source.MySQL)
	}

	storage := objectFrom(t, baseStorage, `{}`)
	storage.SetNamespace(ns)
	if err := cluster.Client.Create(context.Background(), storage); err != nil {
		t.Fatal(err)
	}
	var st v1.BackupStorage
	if err := cluster.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "base"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Spec.NamespacePrefix != v1.DefaultNamespacePrefix || st.NamespacePrefix(ns) != ns+"/" {
		t.Errorf("namespacePrefix defaults to %q, got %q", v1.DefaultNamespacePrefix, st.Spec.NamespacePrefix)
	}
}

func TestBackupAndRestoreSpecsAreImmutable(t *testing.T) {
	ns := newNamespace(t)
	ctx := context.Background()
	for _, base := range []string{baseBackup, baseRestore} {
		obj := objectFrom(t, base, `{}`)
		obj.SetNamespace(ns)
		if err := cluster.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(obj.Object, int64(3600), "spec", "activeDeadlineSeconds"); err != nil {
			t.Fatal(err)
		}
		err := cluster.Client.Update(ctx, obj)
		if err == nil || !strings.Contains(err.Error(), "spec: Invalid value") || !strings.Contains(err.Error(), "spec is immutable") {
			t.Errorf("%s: updating the spec must be refused as immutable, got %v", obj.GetKind(), err)
		}
		// Labels and status stay writable.
		obj.SetLabels(map[string]string{"team": "payments"})
		_ = unstructured.SetNestedField(obj.Object, nil, "spec", "activeDeadlineSeconds")
		if err := cluster.Client.Update(ctx, obj); err != nil {
			t.Errorf("%s: updating labels: %v", obj.GetKind(), err)
		}
	}
}

// The schema text is what `kubectl explain backup.spec.source` prints.
func TestExplainDocumentsFields(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := dc.OpenAPIV3().Paths()
	if err != nil {
		t.Fatal(err)
	}
	gv, ok := paths["apis/backflow.dev/v1alpha1"]
	if !ok {
		t.Fatal("no OpenAPI v3 document for backflow.dev/v1alpha1")
	}
	raw, err := gv.Schema("application/json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schemaNode `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	backup, ok := doc.Components.Schemas["dev.backflow.v1alpha1.Backup"]
	if !ok {
		t.Fatal("Backup schema not published")
	}
	for _, tc := range []struct {
		path []string
		want string
	}{
		{[]string{"spec", "source"}, "what to back up"},
		{[]string{"spec", "source", "postgresql"}, "pg_dump"},
		{[]string{"spec", "storage", "path"}, "sprig functions"},
		{[]string{"spec", "encryption", "age", "identitySecretRef"}, "never into the dump step"},
		{[]string{"status", "displaySize"}, "for people"},
	} {
		node := backup
		for _, p := range tc.path {
			next, ok := node.Properties[p]
			if !ok {
				t.Fatalf("%s: no field %q", strings.Join(tc.path, "."), p)
			}
			node = next
		}
		if !strings.Contains(strings.ToLower(node.Description), strings.ToLower(tc.want)) {
			t.Errorf("backup.%s: description %q does not explain %q", strings.Join(tc.path, "."), node.Description, tc.want)
		}
	}
}

type schemaNode struct {
	Description string                `json:"description"`
	Properties  map[string]schemaNode `json:"properties"`
}

// `kubectl get backflow` lists every kind through the category.
func TestCategoryAndShortNames(t *testing.T) {
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	list, err := dc.ServerResourcesForGroupVersion(v1.GroupVersion.String())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"backupstorages": "bstorage", "backups": "bk", "backupschedules": "bksched", "restores": "rst"}
	for _, r := range list.APIResources {
		short, ok := want[r.Name]
		if !ok {
			continue
		}
		delete(want, r.Name)
		if !slices.Contains(r.Categories, "backflow") {
			t.Errorf("%s is not in the backflow category: %v", r.Name, r.Categories)
		}
		if !slices.Contains(r.ShortNames, short) {
			t.Errorf("%s: short names %v, want %s", r.Name, r.ShortNames, short)
		}
	}
	if len(want) > 0 {
		t.Errorf("resources not served: %v", want)
	}
}
