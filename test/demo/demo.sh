#!/usr/bin/env bash
# `make demo`: backflow's main job on a real cluster. Installs backflow with
# its Helm chart, fills a PostgreSQL database with sample data, backs it up
# (pg_dump | zstd | age | MinIO, in an Argo Workflow), restores it into a
# second database and compares the two.
#
# Where it runs:
#   - by default, the local single-node cluster of test/cluster (brought up
#     here), with PostgreSQL and MinIO on the node;
#   - with KUBECONFIG pointing at a cluster of your own that has Argo
#     Workflows installed, that cluster: PostgreSQL and MinIO then run as pods
#     in the namespace demo, and backflow's image must be one the cluster can
#     pull. DEMO_CLUSTER=local or DEMO_CLUSTER=existing decides explicitly.
#     Images (existing cluster): BACKFLOW_IMAGE (default: the chart's),
#     DEMO_CLIENT_IMAGE (pg_dump; default: the chart's postgres image),
#     DEMO_POSTGRES_IMAGE (default docker.io/library/postgres:17-alpine) and
#     DEMO_MINIO_IMAGE (default quay.io/minio/minio:latest, which has mc).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ns=demo
t0=$SECONDS
kubectl=$("$repo/test/tools/build.sh" kubectl)
helm=$("$repo/test/tools/build.sh" helm)
local_kubeconfig=${BACKFLOW_CLUSTER_STATE:-/var/lib/backflow-cluster}/admin.kubeconfig

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() {
	echo "demo: $*" >&2
	exit 1
}
k() { "$kubectl" -n "$ns" "$@"; }

# wait_done KIND NAME: waits until a Backup or Restore ends; fails, showing
# its status, unless it Succeeded.
wait_done() {
	local phase deadline=$((SECONDS + 300))
	while ((SECONDS < deadline)); do
		phase=$(k get "$1" "$2" -o jsonpath='{.status.phase}')
		case $phase in
		Succeeded) return 0 ;;
		Failed) break ;;
		esac
		sleep 1
	done
	k get "$1" "$2" -o yaml >&2
	die "$1 $2 did not succeed"
}

mode=${DEMO_CLUSTER:-}
if [ -z "$mode" ]; then
	mode=local
	if [ -n "${KUBECONFIG:-}" ] && [ "$(realpath -m "$KUBECONFIG")" != "$(realpath -m "$local_kubeconfig")" ]; then
		"$kubectl" get crd workflows.argoproj.io >/dev/null 2>&1 && mode=existing
	fi
fi

case $mode in
local)
	step "Bringing the local cluster up (Kubernetes, Argo Workflows, MinIO, PostgreSQL)"
	"$repo/test/cluster/cluster.sh" up
	set -a
	# shellcheck disable=SC1091
	. <("$repo/test/cluster/cluster.sh" env)
	set +a

	step "Installing backflow with its Helm chart"
	"$repo/test/cluster/install-backflow.sh" "$ns"

	pg_host=postgres.databases.svc
	pg_password=$BACKFLOW_CLUSTER_DB_PASSWORD
	s3_endpoint=http://minio.minio.svc:9000
	s3_user=$BACKFLOW_CLUSTER_MINIO_USER s3_password=$BACKFLOW_CLUSTER_MINIO_PASSWORD
	# sql DB SQL: psql against the node's PostgreSQL.
	sql() {
		PGHOST=$BACKFLOW_CLUSTER_NODE_IP PGPORT=$BACKFLOW_CLUSTER_POSTGRES_PORT PGUSER=postgres PGPASSWORD=$pg_password \
			psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
	}
	;;
existing)
	"$kubectl" get crd workflows.argoproj.io >/dev/null || die "the cluster of KUBECONFIG has no Argo Workflows (crd workflows.argoproj.io)"
	step "Using the cluster of KUBECONFIG=${KUBECONFIG:-~/.kube/config} ($("$kubectl" config current-context))"
	"$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null

	step "Installing backflow with its Helm chart"
	chart_args=(--set "workflow.namespaces={$ns}")
	if [ -n "${BACKFLOW_IMAGE:-}" ]; then
		chart_args+=(--set "image.repository=${BACKFLOW_IMAGE%:*}" --set "image.tag=${BACKFLOW_IMAGE##*:}")
	fi
	if [ -n "${DEMO_CLIENT_IMAGE:-}" ]; then
		chart_args+=(--set "clientImages.postgresql=$DEMO_CLIENT_IMAGE")
	fi
	"$helm" upgrade --install backflow "$repo/charts/backflow" --namespace backflow-system --create-namespace \
		"${chart_args[@]}" --wait --timeout 5m 2> >(grep -v 'found symbolic link in path' >&2) >/dev/null

	step "Starting PostgreSQL and MinIO in the namespace $ns"
	pg_host=postgres.$ns.svc
	s3_endpoint=http://minio.$ns.svc:9000
	s3_user=demo
	# Passwords made on the first run and kept in the Secret afterwards, so
	# that a second run finds its servers as it left them.
	secret_value() { k get secret demo-servers -o jsonpath="{.data.$1}" 2>/dev/null | base64 -d || true; }
	pg_password=$(secret_value POSTGRES_PASSWORD)
	s3_password=$(secret_value MINIO_ROOT_PASSWORD)
	pg_password=${pg_password:-$(openssl rand -hex 16)}
	s3_password=${s3_password:-$(openssl rand -hex 16)}
	k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: demo-servers}
stringData: {POSTGRES_PASSWORD: $pg_password, MINIO_ROOT_USER: $s3_user, MINIO_ROOT_PASSWORD: $s3_password}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: postgres}
spec:
  selector: {matchLabels: {app: demo-postgres}}
  template:
    metadata: {labels: {app: demo-postgres}}
    spec:
      containers:
        - name: postgres
          image: ${DEMO_POSTGRES_IMAGE:-docker.io/library/postgres:17-alpine}
          env:
            - {name: PGDATA, value: /var/lib/postgresql/data/pgdata}
            - name: POSTGRES_PASSWORD
              valueFrom: {secretKeyRef: {name: demo-servers, key: POSTGRES_PASSWORD}}
          ports: [{containerPort: 5432}]
          readinessProbe: {exec: {command: [pg_isready, -U, postgres, -h, 127.0.0.1]}, periodSeconds: 2}
          volumeMounts: [{name: data, mountPath: /var/lib/postgresql/data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: postgres}
spec:
  selector: {app: demo-postgres}
  ports: [{port: 5432}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: minio}
spec:
  selector: {matchLabels: {app: demo-minio}}
  template:
    metadata: {labels: {app: demo-minio}}
    spec:
      containers:
        - name: minio
          image: ${DEMO_MINIO_IMAGE:-quay.io/minio/minio:latest}
          args: [server, /data]
          envFrom: [{secretRef: {name: demo-servers}}]
          ports: [{containerPort: 9000}]
          readinessProbe: {httpGet: {path: /minio/health/ready, port: 9000}, periodSeconds: 2}
          volumeMounts: [{name: data, mountPath: /data}]
      volumes: [{name: data, emptyDir: {}}]
---
apiVersion: v1
kind: Service
metadata: {name: minio}
spec:
  selector: {app: demo-minio}
  ports: [{port: 9000}]
EOF
	k rollout status deployment/postgres --timeout 5m >/dev/null
	k rollout status deployment/minio --timeout 5m >/dev/null
	k exec deploy/minio -- sh -c 'mc alias set demo http://127.0.0.1:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null && mc mb -p demo/backups >/dev/null'
	# sql DB SQL: psql inside the PostgreSQL pod.
	sql() { k exec deploy/postgres -- psql -X -q -A -t -v ON_ERROR_STOP=1 -U postgres -d "$1" -c "$2"; }
	;;
*) die "DEMO_CLUSTER is $mode: local or existing" ;;
esac

step "Creating the database 'shop' with sample data, and an empty 'shop_restored'"
for db in shop shop_restored; do
	sql postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)"
	sql postgres "CREATE DATABASE $db"
done
sql shop "CREATE TABLE customers (id int PRIMARY KEY, name text, email text);
INSERT INTO customers SELECT g, 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 20000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers, total numeric(10,2), placed_at timestamptz);
INSERT INTO orders SELECT g, 1 + g % 20000, (g % 9973) / 100.0, '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 300000) g;"
echo "shop: $(sql shop 'SELECT count(*) FROM customers') customers, $(sql shop 'SELECT count(*) FROM orders') orders"

step "Creating an age key pair, the storage and the database Secrets"
keys=$(mktemp -d)
trap 'rm -rf "$keys"' EXIT
age-keygen -o "$keys/identity.txt" 2>/dev/null
recipient=$(age-keygen -y "$keys/identity.txt")
k create secret generic backup-age-identity --from-file=identity.txt="$keys/identity.txt" --dry-run=client -o yaml | k apply -f - >/dev/null
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata: {name: minio-credentials}
stringData: {AWS_ACCESS_KEY_ID: $s3_user, AWS_SECRET_ACCESS_KEY: $s3_password}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-db}
stringData: {username: postgres, password: $pg_password}
---
apiVersion: backflow.dev/v1alpha1
kind: BackupStorage
metadata: {name: minio}
spec:
  s3:
    endpoint: $s3_endpoint
    bucket: backups
    prefix: demo
    forcePathStyle: true
    credentials: {secretRef: {name: minio-credentials}}
EOF
k delete restores.backflow.dev,backups.backflow.dev --all --wait >/dev/null

step "Backing up 'shop': Backup -> Argo Workflow (pre-hook, dump-stream, verify, post-hook, rotate)"
k apply -f - <<EOF
apiVersion: backflow.dev/v1alpha1
kind: Backup
metadata: {name: shop}
spec:
  source:
    postgresql:
      connection:
        host: $pg_host
        database: shop
        secretRef: {name: shop-db}
      format: custom
  storage: {name: minio}
  compression: {algorithm: zstd}
  encryption:
    age:
      recipients: [$recipient]
      identitySecretRef: {name: backup-age-identity, key: identity.txt}
  verify:
    restoreTest: {}
  retention: {keepLast: 3}
EOF
wait_done backup shop

step "Restoring it into 'shop_restored'"
k apply -f - <<EOF
apiVersion: backflow.dev/v1alpha1
kind: Restore
metadata: {name: shop-restored}
spec:
  from: {backupRef: {name: shop}}
  target:
    postgresql:
      connection:
        host: $pg_host
        database: shop_restored
        secretRef: {name: shop-db}
  identitySecretRef: {name: backup-age-identity, key: identity.txt}
EOF
wait_done restore shop-restored

step "Comparing the two databases"
q="SELECT count(*) || ' orders, md5 ' || md5(string_agg(id || ':' || customer_id || ':' || total || ':' || placed_at, ',' ORDER BY id)) FROM orders"
src=$(sql shop "$q")
dst=$(sql shop_restored "$q")
echo "shop:          $src"
echo "shop_restored: $dst"
[ "$src" = "$dst" ] || die "the restored database differs"

step "kubectl get backups,restores -n $ns"
k get backups,restores -o wide
wf=$(k get backup shop -o jsonpath='{.status.workflowName}')
key=$(k get backup shop -o jsonpath='{.status.location.key}')
cat <<EOF

Done in $((SECONDS - t0))s. The backup is s3://backups/demo/$key (zstd, age-encrypted, with a
.backflow.json manifest beside it).

Where to look:
  export KUBECONFIG=${KUBECONFIG:-~/.kube/config}
  kubectl -n $ns get backup shop -o yaml                  # status: steps, size, sha256, conditions
  kubectl -n $ns get workflow $wf -o yaml       # the Argo Workflow and its DAG (also in the Argo UI)
  kubectl -n $ns get events --field-selector involvedObject.name=shop
  kubectl get clusterworkflowtemplates                     # the reusable stage templates
EOF
if [ "$mode" = local ]; then
	echo "  make down                                                # stop the cluster, leave nothing behind"
else
	echo "  kubectl delete namespace $ns; helm -n backflow-system uninstall backflow   # clean up"
fi
