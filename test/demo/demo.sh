#!/usr/bin/env bash
# `make demo`: backflow's main job on a real cluster. Brings the local stack up
# (test/cluster), installs backflow with its Helm chart, fills a PostgreSQL
# database with sample data, backs it up (pg_dump | zstd | age | MinIO, in an
# Argo Workflow on the node), restores it into a second database and compares
# the two.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
ns=demo
t0=$SECONDS

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
	echo "$1 $2 did not succeed" >&2
	exit 1
}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "Bringing the local cluster up (Kubernetes, Argo Workflows, MinIO, PostgreSQL)"
"$repo/test/cluster/cluster.sh" up
set -a
# shellcheck disable=SC1091
. <("$repo/test/cluster/cluster.sh" env)
set +a
kubectl=$("$repo/test/tools/build.sh" kubectl)
k() { "$kubectl" -n "$ns" "$@"; }

step "Installing backflow with its Helm chart"
"$repo/test/cluster/install-backflow.sh" "$ns"

step "Creating the database 'shop' with sample data, and an empty 'shop_restored'"
export PGHOST=$BACKFLOW_CLUSTER_NODE_IP PGPORT=$BACKFLOW_CLUSTER_POSTGRES_PORT PGUSER=postgres PGPASSWORD=$BACKFLOW_CLUSTER_DB_PASSWORD
sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
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
stringData: {AWS_ACCESS_KEY_ID: $BACKFLOW_CLUSTER_MINIO_USER, AWS_SECRET_ACCESS_KEY: $BACKFLOW_CLUSTER_MINIO_PASSWORD}
---
apiVersion: v1
kind: Secret
metadata: {name: shop-db}
stringData: {username: postgres, password: $BACKFLOW_CLUSTER_DB_PASSWORD}
---
apiVersion: backflow.dev/v1alpha1
kind: BackupStorage
metadata: {name: minio}
spec:
  s3:
    endpoint: http://minio.minio.svc:9000
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
        host: postgres.databases.svc
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
        host: postgres.databases.svc
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
[ "$src" = "$dst" ] || {
	echo "the restored database differs" >&2
	exit 1
}

step "kubectl get backups,restores -n $ns"
k get backups,restores -o wide
wf=$(k get backup shop -o jsonpath='{.status.workflowName}')
key=$(k get backup shop -o jsonpath='{.status.location.key}')
cat <<EOF

Done in $((SECONDS - t0))s. The backup is s3://backups/demo/$key (zstd, age-encrypted, with a
.backflow.json manifest beside it).

Where to look:
  export KUBECONFIG=$KUBECONFIG
  kubectl -n $ns get backup shop -o yaml                  # status: steps, size, sha256, conditions
  kubectl -n $ns get workflow $wf -o yaml       # the Argo Workflow and its DAG
  kubectl -n $ns get events --field-selector involvedObject.name=shop
  kubectl get clusterworkflowtemplates                     # the reusable stage templates
  make down                                                # stop the cluster, leave nothing behind
EOF
