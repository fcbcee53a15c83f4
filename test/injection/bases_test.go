package injection_test

import "strings"

// Valid objects of every kind that together hold every string field of the
// CRDs (TestBasesCoverEverySchemaField fails when a field is added to a
// CRD and to none of them): the injection table puts its strings into the
// fields these objects set.

const podOverrides = `
  serviceAccountName: backups
  pod:
    resources:
      limits: {cpu: "1", memory: 1Gi}
      requests: {cpu: 100m}
      claims: [{name: gpu, request: one}]
    nodeSelector: {disk: ssd}
    tolerations: [{key: dedicated, operator: Equal, value: backups, effect: NoSchedule}]
    securityContext:
      seLinuxOptions: {user: u, role: r, type: t, level: l}
      windowsOptions: {gmsaCredentialSpecName: g, gmsaCredentialSpec: s, runAsUserName: u, hostProcess: false}
      supplementalGroupsPolicy: Merge
      sysctls: [{name: net.core.somaxconn, value: "1024"}]
      fsGroupChangePolicy: OnRootMismatch
      seccompProfile: {type: Localhost, localhostProfile: p.json}
      appArmorProfile: {type: Localhost, localhostProfile: p}
      seLinuxChangePolicy: MountOption
    priorityClassName: low
    labels: {team: data}
    annotations: {note: nightly}
`

// env sets every kind of environment variable, indented for a list at
// the given depth by indentEnv.
const env = `
- {name: PLAIN, value: v}
- name: FROM_SECRET
  valueFrom: {secretKeyRef: {name: s, key: k}}
- name: FROM_CONFIGMAP
  valueFrom: {configMapKeyRef: {name: c, key: k}}
- name: FROM_FIELD
  valueFrom: {fieldRef: {apiVersion: v1, fieldPath: metadata.name}}
- name: FROM_RESOURCE
  valueFrom: {resourceFieldRef: {containerName: main, resource: limits.cpu, divisor: "1"}}
- name: FROM_FILE
  valueFrom: {fileKeyRef: {volumeName: v, path: p, key: k}}
`

func indent(s, by string) string { return strings.ReplaceAll(s, "\n", "\n"+by) }

// Hooks: A has an exec hook by pod name before and a container hook after,
// B a container hook before and an exec hook by selector after.
var hooksA = `
  hooks:
    pre:
      exec:
        podName: app
        container: app
        command: [freeze, --all]
      onError: Fail
    post:
      container:
        image: busybox
        command: [thaw]
        args: [--all]
        env:` + indent(env, "        ") + `
      onError: Continue
`

var hooksB = `
  hooks:
    pre:
      container:
        image: busybox
        command: [freeze]
        args: [--all]
        env:` + indent(env, "        ") + `
    post:
      exec:
        podSelector:
          matchLabels: {app: db}
          matchExpressions: [{key: tier, operator: In, values: [primary]}]
        container: app
        command: [thaw]
      onError: Fail
`

// hooksC has exec hooks by selector before and by pod name after.
var hooksC = `
  hooks:
    pre:
      exec:
        podSelector:
          matchLabels: {app: db}
          matchExpressions: [{key: tier, operator: In, values: [primary]}]
        command: [freeze]
    post:
      exec:
        podName: app
        command: [thaw]
`

// Connections: by host, with a database, and by Service, without one (a
// MongoDB source may not name both a connection database and databases).
const hostConnection = `
      connection:
        host: db.example
        database: shop
        username: backup
        secretRef: {name: db, hostKey: h, portKey: p, usernameKey: u, passwordKey: pw, databaseKey: d, uriKey: uri}
`

const serviceConnection = `
      connection:
        serviceRef: {name: db}
        username: backup
        secretRef: {name: db, hostKey: h, portKey: p, usernameKey: u, passwordKey: pw, databaseKey: d, uriKey: uri}
`

const storageRef = `
  storage:
    name: shared
    namespace: alice
    path: '{{ .Namespace }}/{{ .Series }}/{{ .Timestamp | date "20060102T150405Z" }}{{ .Extension }}'
  compression: {algorithm: zstd}
  deletionPolicy: Delete
  encryption:
    age:
      recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
      recipientsSecretRef: {name: recipients, key: keys.txt}
      identitySecretRef: {name: identity, key: identity.txt}
  retention: {keepLast: 3}
` + podOverrides + notifyTargets

// notifyTargets has one target of each type.
const notifyTargets = `
  notify:
    - name: ops
      events: [Failed, Succeeded]
      webhook:
        urlSecretRef: {name: notify, key: webhook-url}
        signingKeySecretRef: {name: notify, key: signing-key}
    - name: chat
      events: [Failed]
      slack:
        urlSecretRef: {name: notify, key: slack-url}
    - name: hc
      events: [Started, Succeeded, Failed]
      deadMansSwitch:
        startURLSecretRef: {name: notify, key: start-url}
        successURLSecretRef: {name: notify, key: url}
        failURLSecretRef: {name: notify, key: fail-url}
`

// storageRefGenerated is storageRef with an identity the controller
// generates (the compile below passes the recipient it would resolve).
var storageRefGenerated = strings.Replace(storageRef, "      identitySecretRef: {name: identity, key: identity.txt}\n",
	"      generate: {secretName: generated-age}\n", 1)

// Backup specs, without the apiVersion, kind and metadata.
var backupSpecs = []string{
	`
  source:
    postgresql:` + hostConnection + `
      format: custom
      extraArgs: [--no-owner]
      image: postgres:17
  verify:
    restoreTest:` + serviceConnection + `
      checkQuery: SELECT 1
` + storageRef + hooksA,
	`
  source:
    postgresql:` + serviceConnection + `
  verify:
    restoreTest:` + hostConnection + `
` + storageRef + hooksB,
	`
  source:
    mysql:` + hostConnection + `
      flavor: mariadb
      databases: [wiki]
      extraArgs: [--quick]
      image: mariadb:11
` + storageRef + hooksB,
	`
  source:
    mysql:` + serviceConnection + `
` + storageRef + hooksA,
	`
  source:
    mongodb:` + hostConnection + `
` + storageRef + hooksC,
	`
  source:
    mongodb:` + serviceConnection + `
      databases: [shop]
      includeCollections: [orders]
      excludeCollections: [logs_*]
` + storageRef,
	`
  source:
    pvc: {claimName: uploads, paths: [files]}
` + storageRefGenerated,
	`
  source:
    command:
      image: busybox
      command: [cat]
      args: [/data]
      env:` + indent(env, "      ") + `
` + storageRef,
}

// scheduleSpecs run the first Backup spec, and the one with a generated
// identity, on a schedule.
var scheduleSpecs = func() []string {
	var out []string
	for _, b := range []string{backupSpecs[0], backupSpecs[6]} {
		out = append(out, `
  schedule: "0 3 * * *"
  timezone: Europe/Berlin
  concurrencyPolicy: Forbid
  template:
    metadata:
      labels: {team: data}
      annotations: {note: nightly}
    spec:`+indent(b, "    "))
	}
	return out
}()

const restoreRest = `
  identitySecretRef: {name: identity, key: identity.txt}
` + podOverrides + notifyTargets

const fromObject = `
  from:
    object:
      storage: {name: shared, namespace: alice}
      key: default/db/20261101T030000Z.pgdump.zst
`

var restoreSpecs = []string{
	fromObject + `
  target:
    postgresql:` + hostConnection + `
      extraArgs: [--no-owner]
      image: postgres:17
` + restoreRest + hooksA,
	`
  from:
    backupRef: {name: nightly}
  target:
    postgresql:` + serviceConnection + `
` + restoreRest + hooksB,
	`
  from:
    scheduleRef: {name: nightly}
  target:
    mysql:` + hostConnection + `
      flavor: mysql
      extraArgs: [--force]
      image: mysql:8
` + restoreRest,
	fromObject + `
  target:
    mysql:` + serviceConnection + `
` + restoreRest,
	fromObject + `
  target:
    mongodb:` + hostConnection + `
      rename: [{from: "shop.*", to: "copy.*"}]
` + restoreRest,
	fromObject + `
  target:
    mongodb:` + serviceConnection + `
` + restoreRest,
	fromObject + `
  target:
    pvc: {claimName: uploads, path: restored}
` + restoreRest + hooksC,
	fromObject + `
  target:
    command:
      image: busybox
      command: [sh, -c]
      args: [cat > /dev/null]
      env:` + indent(env, "      ") + `
` + restoreRest,
}
var storageSpecs = []string{
	`
  s3:
    endpoint: https://minio.example:9000
    bucket: backups
    prefix: tenants
    region: eu-west-1
    forcePathStyle: true
    tls:
      caSecretRef: {name: ca, key: ca.crt}
    credentials:
      secretRef: {name: minio}
      accessKeyIDKey: id
      secretAccessKeyKey: secret
      sessionTokenKey: token
  allowedNamespaces: [mallory]
`,
	`
  s3:
    endpoint: https://minio.example:9000
    bucket: backups
    tls:
      caConfigMapRef: {name: ca, key: ca.crt}
    credentials:
      secretRef: {name: minio}
  namespacePrefix: "{{ .Namespace }}/"
  sharing: BucketCredentials
`,
}
