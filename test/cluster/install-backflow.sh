#!/usr/bin/env bash
# Installs backflow into the local stack the way a user does: `helm upgrade
# --install` of charts/backflow, with the image built by `make image` (already
# imported into the node's containerd by cluster.sh up) and the stack's
# database client image. Workflows may run in every namespace: the
# controller provides their service accounts where a backflow resource
# appears, so a namespace needs nothing from the install.
#
#   test/cluster/install-backflow.sh NAMESPACE...   namespaces to create for the suites
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export KUBECONFIG=${KUBECONFIG:-${BACKFLOW_CLUSTER_STATE:-/var/lib/backflow-cluster}/admin.kubeconfig}
helm=$("$repo/test/tools/build.sh" helm)
image=$("$here/images.sh" ref backflow)
clients=$("$here/images.sh" ref clients)

kubectl=$("$repo/test/tools/build.sh" kubectl)
for ns in "$@"; do
	"$kubectl" create namespace "$ns" --dry-run=client -o yaml | "$kubectl" apply -f - >/dev/null
done

upgrade=""
"$helm" status backflow --namespace backflow-system >/dev/null 2>&1 && upgrade=1
# Helm installs a chart's crds/ but never upgrades them: a working tree with
# new API fields would have them pruned by the installed CRDs.
if [ -n "$upgrade" ]; then
	"$kubectl" apply --server-side --force-conflicts --field-manager backflow-install -f "$repo/charts/backflow/crds/" >/dev/null
fi
"$helm" upgrade --install backflow "$repo/charts/backflow" --namespace backflow-system --create-namespace \
	--set "image.repository=${image%:*}" --set "image.tag=${image##*:}" --set image.pullPolicy=IfNotPresent \
	--set "clientImages.postgresql=$clients" --set "clientImages.mysql=$clients" --set "clientImages.mariadb=$clients" \
	--set "workflow.namespaces={*}" --set controller.logging.level=debug \
	--wait --timeout 3m 2> >(grep -v 'found symbolic link in path' >&2) >/dev/null
# On an upgrade, a new image under the same tag (a rebuilt working tree)
# needs a restart; a fresh install already runs it.
if [ -n "$upgrade" ]; then
	"$kubectl" -n backflow-system rollout restart deployment/backflow-controller >/dev/null
	"$kubectl" -n backflow-system rollout status deployment/backflow-controller --timeout 2m >/dev/null
fi
echo "backflow installed: $image" >&2
