#!/usr/bin/env bash
# The images the local stack runs, built without a Docker engine or a registry
# as docker-archive tarballs (cmd/build-image, on go-containerregistry) that
# containerd imports. Every image but backflow's own is built once into the
# cache.
#
#   test/cluster/images.sh ref NAME     prints the image reference
#   test/cluster/images.sh build NAME   builds the tarball when missing, prints its path
#
# NAME: backflow (the static binary), pause (the pod sandbox), argoexec and
# workflow-controller (Argo, from test/tools/build.sh), clients (a Debian
# root filesystem with the PostgreSQL and MariaDB clients, via debootstrap;
# MongoDB's stages run in the backflow image), and for `make demo` on a
# cluster of one's own, postgres (the same root filesystem, with the
# entrypoint contract of the official postgres image) and minio (MinIO and
# mc); receiver (test/cluster/receiver, the HTTP receiver of the e2e
# notification tests); and for `make bench-e2e`, shell (the same root
# filesystem with mc and age beside pg_dump and gzip: the one-pod pipeline
# users write today).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${BACKFLOW_CACHE:-$HOME/.cache/backflow}/images
tools=$repo/test/tools/build.sh
# postgresql-15 brings the server (for the postgres image) and its client.
clients_packages=postgresql-15,mariadb-client,ca-certificates
debian_mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# argo_version is the version test/tools/build.sh pins, read off the cache
# directory it builds Argo into (tools/argo-VERSION).
argo_version() {
	local dir
	dir=$(dirname "$("$tools" argoexec)")
	echo "${dir##*/argo-}"
}

ref() {
	case $1 in
	backflow) echo "${BACKFLOW_IMAGE:-ghcr.io/backflow-dev/backflow:$(cd "$repo" && git describe --tags --always --dirty 2>/dev/null || echo dev)}" ;;
	pause) echo "backflow.dev/pause:1" ;;
	receiver) echo "backflow.dev/receiver:1" ;;
	argoexec | workflow-controller) echo "quay.io/argoproj/$1:$(argo_version)" ;;
	clients) echo "backflow.dev/clients:bookworm-4" ;;
	postgres) echo "backflow.dev/postgres:15-bookworm-1" ;;
	minio) echo "backflow.dev/minio:$(basename "$(dirname "$("$tools" minio)")")-2" ;;
	shell) echo "backflow.dev/shell:bookworm-$(basename "$(dirname "$("$tools" mc)")")-1" ;;
	*)
		echo "images.sh: unknown image $1" >&2
		exit 2
		;;
	esac
}

# clients_rootfs prints the path of the Debian root filesystem tarball of the
# clients image, made with debootstrap once per package list.
clients_rootfs() {
	local tarball root
	tarball=$cache/clients-rootfs-$(echo "$clients_packages" | sha256sum | cut -c1-12).tar
	if [ ! -f "$tarball" ]; then
		root=$(mktemp -d)
		debootstrap --variant=minbase --include="$clients_packages" bookworm "$root/rootfs" "$debian_mirror" >"$root/log" 2>&1 ||
			{
				tail -20 "$root/log" >&2
				exit 1
			}
		rm -rf "$root/rootfs/var/cache/apt/archives"/*.deb "$root/rootfs/var/lib/apt/lists"/*
		tar --numeric-owner --xattrs -C "$root/rootfs" -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
	fi
	echo "$tarball"
}

build_image() { (cd "$repo" && go run ./cmd/build-image "$@"); }

build() {
	local name=$1 tag out
	tag=$(ref "$name")
	if [ "$name" = backflow ]; then
		# backflow's own image follows the working tree: always rebuilt.
		make -C "$repo" --no-print-directory image IMAGE="$tag" >&2
		echo "$repo/bin/backflow-image.tar"
		return
	fi
	out=$cache/$name.tar
	if [ ! -f "$out" ] || [ "$(cat "$out.ref" 2>/dev/null)" != "$tag" ]; then
		echo "building image $tag (once; cached afterwards)" >&2
		mkdir -p "$cache"
		case $name in
		pause)
			(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/pause" ./test/cluster/pause)
			build_image --tag "$tag" --out "$out" --file "pause=$cache/pause" --user 65535 --entrypoint /pause
			rm -f "$cache/pause"
			;;
		receiver)
			(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache/receiver" ./test/cluster/receiver)
			build_image --tag "$tag" --out "$out" --file "receiver=$cache/receiver" --user 65535 --entrypoint /receiver
			rm -f "$cache/receiver"
			;;
		argoexec | workflow-controller)
			build_image --tag "$tag" --out "$out" --file "usr/local/bin/$name=$("$tools" "$name")" --user 8737 --entrypoint "$name"
			;;
		clients)
			build_image --tag "$tag" --out "$out" --rootfs-tar "$(clients_rootfs)"
			;;
		postgres)
			build_image --tag "$tag" --out "$out" --rootfs-tar "$(clients_rootfs)" \
				--file "usr/local/bin/docker-entrypoint.sh=$here/postgres-entrypoint.sh" --entrypoint docker-entrypoint.sh --env PGDATA=/var/lib/postgresql/data
			;;
		minio)
			# On the Debian rootfs, like the official image on UBI: the demo
			# runs mc through sh in it.
			build_image --tag "$tag" --out "$out" --rootfs-tar "$(clients_rootfs)" \
				--file "usr/local/bin/minio=$("$tools" minio)" --file "usr/local/bin/mc=$("$tools" mc)" --entrypoint minio
			;;
		shell)
			# age is Debian bookworm's package (make deps installs it), the
			# release the root filesystem is made of.
			build_image --tag "$tag" --out "$out" --rootfs-tar "$(clients_rootfs)" \
				--file "usr/local/bin/mc=$("$tools" mc)" --file "usr/local/bin/age=$(command -v age)"
			;;
		esac
		echo "$tag" >"$out.ref"
	fi
	echo "$out"
}

case ${1:-} in
ref) ref "$2" ;;
build) build "$2" ;;
*)
	echo "usage: $0 ref|build NAME" >&2
	exit 2
	;;
esac
