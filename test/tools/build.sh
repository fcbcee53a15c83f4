#!/usr/bin/env bash
# Builds the pinned third-party binaries the tests and the local stack run,
# from the Go module proxy, into a cache outside the repo; a binary already in
# the cache is never rebuilt. Prints the path of each binary, one per line.
#
#   test/tools/build.sh kube-apiserver etcd minio ...
#   test/tools/build.sh --cached minio   # print the path, fail if not built
#
# Every Kubernetes binary is built with the same flags so the Go build cache is
# shared between them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${BACKFLOW_CACHE:-$HOME/.cache/backflow}

k8s_version=v1.34.4
minio_version=v0.0.0-20260212201848-7aac2a2c5b7c # RELEASE.2026-02-12; MinIO tags are not semver
mc_version=v0.0.0-20250313080218-cf909e1063a9
argo_version=v3.7.18 # keep in step with test/tools/argo/go.mod
kwok_version=v0.8.0
coredns_version=v1.15.0
helm_version=v3.22.0
ferretdb_version=v1.24.0

export CGO_ENABLED=0 GONOSUMDB=${GONOSUMDB:-github.com/argoproj}
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 -X k8s.io/component-base/version.gitTreeState=clean"

# build_in_module DIR OUT PKG LDFLAGS: go build PKG inside the pinned wrapper
# module DIR.
build_in_module() {
	(cd "$1" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$4" -o "$2.tmp" "$3")
	mv "$2.tmp" "$2"
}

# install_module OUT PKG@VERSION: go install a module that has no replace
# directives.
install_module() {
	local gobin
	gobin=$(mktemp -d)
	GOBIN=$gobin go install -trimpath -ldflags "-s -w" "$2"
	mv "$gobin/$(basename "${2%@*}")" "$1"
	rmdir "$gobin"
}

# build_argoexec OUT: the module zip drops upstream's symlink
# workflow/executor/osspecific/signal_linux.go (same content as
# signal_darwin.go), so argoexec is built from a writable copy with it
# restored.
build_argoexec() {
	local mod src
	mod=$(cd "$here/argo" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/argoproj/argo-workflows/v3)
	src=$(mktemp -d)
	cp -r "$mod/." "$src/"
	chmod -R u+w "$src"
	osspecific=$src/workflow/executor/osspecific
	[ -f "$osspecific/signal_linux.go" ] || cp "$osspecific/signal_darwin.go" "$osspecific/signal_linux.go"
	(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$1.tmp" ./cmd/argoexec)
	mv "$1.tmp" "$1"
	rm -rf "$src"
}

# module_dir PATH VERSION: the module cache directory of PATH@VERSION,
# downloaded first.
module_dir() {
	local json dir
	json=$(cd / && go mod download -json "$1@$2" 2>/dev/null) || true
	dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")
	if [ -z "$dir" ]; then
		echo "build.sh: cannot download $1@$2: $json" >&2
		exit 1
	fi
	echo "$dir"
}

# build_ferretdb OUT: FerretDB reads its version from files its release
# process writes, so it is built from a writable copy with them added. It
# claims MongoDB 7.0.12: MongoDB clients adapt what they send to the server's
# version, and some options they send newer servers are ones FerretDB rejects
# (mongo-tools' bypassEmptyTsReplacement, for one).
build_ferretdb() {
	local mod src
	mod=$(module_dir github.com/FerretDB/FerretDB "$ferretdb_version")
	src=$(mktemp -d)
	cp -r "$mod/." "$src/"
	chmod -R u+w "$src"
	echo "$ferretdb_version" >"$src/build/version/version.txt"
	echo "7.0.12" >"$src/build/version/mongodb.txt"
	(cd "$src" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -tags ferretdb_no_postgresql -o "$1.tmp" ./cmd/ferretdb)
	mv "$1.tmp" "$1"
	rm -rf "$src"
}

# extract_promtool OUT: promtool from Debian's prometheus package, unpacked
# rather than installed so that no Prometheus service is set up.
extract_promtool() {
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download -qq prometheus && dpkg-deb -x prometheus_*.deb root)
	mv "$tmp/root/usr/bin/promtool" "$1"
	rm -rf "$tmp"
}

cached_only=false
if [ "${1:-}" = --cached ]; then
	cached_only=true
	shift
fi

for name in "$@"; do
	case $name in
	kube-apiserver | kube-controller-manager | kube-scheduler | kubelet | kube-proxy | kubectl)
		out=$cache/kube-$k8s_version/bin/$name ;;
	etcd) out=$cache/kube-$k8s_version/bin/etcd ;;
	minio) out=$cache/tools/minio-$minio_version/minio ;;
	mc) out=$cache/tools/mc-$mc_version/mc ;;
	workflow-controller | argoexec) out=$cache/tools/argo-$argo_version/$name ;;
	kwok) out=$cache/tools/kwok-$kwok_version/kwok ;;
	coredns) out=$cache/tools/coredns-$coredns_version/coredns ;;
	helm) out=$cache/tools/helm-$helm_version/helm ;;
	promtool) out=$cache/tools/promtool-debian/promtool ;;
	ferretdb) out=$cache/tools/ferretdb-$ferretdb_version/ferretdb ;;
	*)
		echo "build.sh: unknown binary $name" >&2
		exit 2
		;;
	esac
	if [ ! -x "$out" ] && $cached_only; then
		echo "$name is not built: run \`make test-assets\` (make test does)" >&2
		exit 3
	fi
	if [ ! -x "$out" ]; then
		echo "building $name into $out (once; cached afterwards)" >&2
		mkdir -p "$(dirname "$out")"
		case $name in
		etcd) build_in_module "$here/kube" "$out" go.etcd.io/etcd/server/v3 "$kube_ldflags" ;;
		minio) install_module "$out" "github.com/minio/minio@$minio_version" ;;
		mc) install_module "$out" "github.com/minio/mc@$mc_version" ;;
		workflow-controller) build_in_module "$here/argo" "$out" github.com/argoproj/argo-workflows/v3/cmd/workflow-controller "-s -w" ;;
		argoexec) build_argoexec "$out" ;;
		kwok) install_module "$out" "sigs.k8s.io/kwok/cmd/kwok@$kwok_version" ;;
		coredns) install_module "$out" "github.com/coredns/coredns@$coredns_version" ;;
		helm) install_module "$out" "helm.sh/helm/v3/cmd/helm@$helm_version" ;;
		promtool) extract_promtool "$out" ;;
		ferretdb) build_ferretdb "$out" ;;
		*) build_in_module "$here/kube" "$out" "k8s.io/kubernetes/cmd/$name" "$kube_ldflags" ;;
		esac
	fi
	echo "$out"
done
