#!/usr/bin/env bash
# Builds pinned Kubernetes/etcd binaries from the Go module proxy into the
# cache outside the repo, skipping any that are already there.
#
#   test/tools/kube/build.sh [kube-apiserver|etcd|kubectl|...]...
#
# Prints the bin directory on stdout. Every binary uses the same flags so the
# Go build cache is shared between them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s_version=v1.34.4

cache=${BACKFLOW_CACHE:-$HOME/.cache/backflow}
bin=$cache/kube-$k8s_version/bin
mkdir -p "$bin"

export CGO_ENABLED=0 GOFLAGS=-mod=mod GONOSUMDB=${GONOSUMDB:-github.com/argoproj}
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34 -X k8s.io/component-base/version.gitTreeState=clean"

pkg_of() {
	case $1 in
	etcd) echo go.etcd.io/etcd/server/v3 ;;
	kubectl) echo k8s.io/kubernetes/cmd/kubectl ;;
	*) echo "k8s.io/kubernetes/cmd/$1" ;;
	esac
}

for name in "${@:-kube-apiserver etcd}"; do
	for n in $name; do
		[ -x "$bin/$n" ] && continue
		echo "building $n (cached afterwards in $bin)" >&2
		(cd "$here" && go build -trimpath -ldflags "$ldflags" -o "$bin/$n.tmp" "$(pkg_of "$n")")
		mv "$bin/$n.tmp" "$bin/$n"
	done
done
echo "$bin"
