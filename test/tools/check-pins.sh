#!/usr/bin/env bash
# Checks that the Go module proxy still serves every module@version the
# project pins: test/tools/build.sh's *_version variables and the requires
# (indirect ones included), tools and versioned replacements of go.mod,
# test/tools/kube/go.mod and test/tools/argo/go.mod. It asks the first proxy
# of `go env GOPROXY` over HTTP for each pin's .info and .mod, so the local
# module cache cannot hide a vanished pin; it downloads no zip and builds
# nothing. A pin the proxy answers 403, 404 or 410 for has vanished: one line
# per pin, naming the file that pins it, then exit 1 (as for a pin the proxy
# gave no answer for after retries). Exit 2: no proxy to ask (GOPROXY off or
# direct first, or no answer at all).
#
#   test/tools/check-pins.sh
set -euo pipefail
export LC_ALL=C

# The module each of build.sh's *_version variables pins. The Kubernetes
# binaries are built in the wrapper module test/tools/kube, Argo's in
# test/tools/argo; their go.mod files are checked as well.
declare -A build_modules=(
	[k8s_version]=k8s.io/kubernetes
	[minio_version]=github.com/minio/minio
	[mc_version]=github.com/minio/mc
	[argo_version]=github.com/argoproj/argo-workflows/v3
	[kwok_version]=sigs.k8s.io/kwok
	[coredns_version]=github.com/coredns/coredns
	[helm_version]=helm.sh/helm/v3
	[ferretdb_version]=github.com/FerretDB/FerretDB
)
# build.sh pins that must equal what a wrapper module's go.mod requires.
declare -A in_step=(
	[k8s_version]=test/tools/kube/go.mod
	[argo_version]=test/tools/argo/go.mod
)
gomods=(go.mod test/tools/kube/go.mod test/tools/argo/go.mod)
parallel=16
curl_opts=(-sS --netrc-optional --connect-timeout 5 --max-time 15 --retry 3 --retry-delay 1 --retry-max-time 45)

# esc S: S escaped as in the proxy protocol (golang.org/x/mod/module
# EscapePath, EscapeVersion): each uppercase letter becomes '!' and its
# lowercase.
esc() {
	local s=$1 u
	while [[ $s =~ [[:upper:]] ]]; do
		u=${BASH_REMATCH[0]}
		s=${s//"$u"/"!${u,,}"}
	done
	printf '%s' "$s"
}

# --query PROXY MODULE VERSION...: the worker xargs runs. Prints one line
# per pin, "MODULE VERSION STATUS": STATUS is ok, or the first failing
# answer (info=404, mod=000/curl-28 when no answer came).
if [ "${1:-}" = --query ]; then
	proxy=$2
	shift 2
	urls=() mods=()
	while [ $# -ge 2 ]; do
		base=$proxy/$(esc "$1")/@v/$(esc "$2")
		urls+=(-o /dev/null "$base.info" -o /dev/null "$base.mod")
		mods+=("$1 $2")
		shift 2
	done
	# Sequential transfers over one connection; curl retries timeouts and
	# 408/429/5xx answers only, and gives up on the batch at the first
	# transfer that got no answer (its pins are then reported unanswered).
	mapfile -t answers < <(curl "${curl_opts[@]}" --fail-early \
		-w '%{http_code} %{exitcode}\n' "${urls[@]}" 2>/dev/null || true)
	for i in "${!mods[@]}"; do
		status=ok
		for j in 0 1; do
			kind=info
			[ "$j" = 1 ] && kind=mod
			read -r code exitcode <<<"${answers[$((2 * i + j))]:-000 none}"
			if [ "$code" != 200 ]; then
				[ "$code" = 000 ] && code=000/curl-$exitcode
				status=$kind=$code
				break
			fi
		done
		echo "${mods[$i]} $status"
	done
	exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."

if ! command -v curl >/dev/null; then
	# Before `make deps` on a fresh machine: only curl, the way install-deps.sh
	# installs packages.
	echo "check-pins: installing curl" >&2
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
fi

# The first entry of GOPROXY, asked from / so that no go.mod makes the go
# command switch toolchains.
goproxy=$(cd / && GOTOOLCHAIN=local go env GOPROXY)
proxy=${goproxy%%[,|]*}
case $proxy in
http://* | https://*) proxy=${proxy%/} ;;
"" | off | direct)
	echo "check-pins: GOPROXY=$goproxy: its first entry is not a proxy (off or direct), so the pins cannot be checked against one; set GOPROXY to the module proxy the builds use" >&2
	exit 2
	;;
*)
	echo "check-pins: GOPROXY=$goproxy: the first entry $proxy is not an http(s) proxy, which check-pins needs" >&2
	exit 2
	;;
esac

# One answer first, whatever its status, so that an unreachable proxy fails
# in seconds rather than once per batch.
answer=$(curl "${curl_opts[@]}" -o /dev/null -w '%{http_code} %{exitcode}' "$proxy/" 2>/dev/null || true)
if [ "${answer%% *}" = 000 ] || [ -z "$answer" ]; then
	echo "check-pins: no answer from the module proxy $proxy (curl exit ${answer##* }): is the network up?" >&2
	exit 2
fi

problems=()

# pins: "FILE MODULE VERSION", one per line.
pins=$(
	while read -r var version; do
		version=${version//[\"\']/}
		module=${build_modules[$var]:-}
		if [ -z "$module" ]; then
			echo "unknown test/tools/build.sh $var"
			continue
		fi
		echo "test/tools/build.sh $module $version"
		if [ -n "${in_step[$var]:-}" ]; then
			echo "step ${in_step[$var]} $module $version"
		fi
	done < <(sed -n -E 's/^([a-z0-9_]+_version)=([^[:space:]#]+).*/\1 \2/p' test/tools/build.sh)

	for f in "${gomods[@]}"; do
		awk -v file="$f" '
			{
				line = $0
				sub(/\/\/.*/, "", line)
				gsub(/"/, "", line)
				gsub(/^[ \t]+|[ \t]+$/, "", line)
				if (line == "") next
				n = split(line, a, /[ \t]+/)
				if (block != "" && a[1] == ")") { block = ""; next }
				if (n == 2 && a[2] == "(") { block = a[1]; next }
				if (block != "") { verb = block; first = 1 } else { verb = a[1]; first = 2 }
				if (verb == "module") own = a[first]
				else if (verb == "require") { nr++; rpath[nr] = a[first]; rver[nr] = a[first + 1] }
				else if (verb == "tool") tools[++nt] = a[first]
				else if (verb == "replace") {
					for (i = first; i <= n && a[i] != "=>"; i++) ;
					if (i == first + 1) replaced_all[a[first]] = 1
					else replaced[a[first] " " a[first + 1]] = 1
					# A right-hand side with a version is a pin; a directory is not.
					if (i + 2 <= n) print file, a[i + 1], a[i + 2]
				}
			}
			function replaced_req(p, v) { return (p in replaced_all) || ((p " " v) in replaced) }
			END {
				# A replaced require is never fetched: its replacement is the pin.
				for (r = 1; r <= nr; r++)
					if (!replaced_req(rpath[r], rver[r])) print file, rpath[r], rver[r]
				# A tool package is pinned by the required module that provides it
				# (the longest path prefix).
				for (t = 1; t <= nt; t++) {
					p = tools[t]
					if (own != "" && (p == own || index(p, own "/") == 1)) continue
					best = 0
					for (r = 1; r <= nr; r++)
						if ((p == rpath[r] || index(p, rpath[r] "/") == 1) && (best == 0 || length(rpath[r]) > length(rpath[best]))) best = r
					if (best == 0) print "notool", file, p
					else if (!replaced_req(rpath[best], rver[best])) print file, rpath[best], rver[best]
				}
				# For the in-step check against build.sh.
				for (r = 1; r <= nr; r++) print "req", file, rpath[r], rver[r]
			}' "$f"
	done
)

declare -A required # "FILE MODULE" -> version, from the go.mod files
while read -r _ file module version; do
	required["$file $module"]=$version
done < <(grep '^req ' <<<"$pins")

semver='^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+incompatible)?$'
declare -A query # "MODULE VERSION" -> 1
while read -r file module version; do
	case $file in
	req) continue ;;
	unknown)
		problems+=("check-pins: $module: $version has no module in check-pins.sh's build_modules table: add it")
		continue
		;;
	notool)
		problems+=("check-pins: $module: tool $version: no module in its require blocks provides it")
		continue
		;;
	step)
		# "step GOMOD MODULE VERSION": build.sh's VERSION must be what GOMOD
		# requires.
		read -r want_module want_version <<<"$version"
		have=${required["$module $want_module"]:-nothing}
		[ "$have" = "$want_version" ] ||
			problems+=("check-pins: test/tools/build.sh pins $want_module@$want_version but $module requires $have: keep them in step")
		continue
		;;
	esac
	if ! [[ $version =~ $semver ]]; then
		problems+=("check-pins: $file: $module@$version: not a canonical module version")
		continue
	fi
	query["$module $version"]=1
done <<<"$pins"

results=$(printf '%s\n' "${!query[@]}" | tr ' ' '\n' | xargs -r -n 16 -P "$parallel" "$0" --query "$proxy")
declare -A status
while read -r module version st; do
	status["$module $version"]=$st
done <<<"$results"

vanished=0 unknown=0 checked=0
while read -r file module version _; do
	case $file in req | unknown | notool | step) continue ;; esac
	st=${status["$module $version"]:-}
	[ -n "$st" ] || continue # not queried: reported above
	checked=$((checked + 1))
	case $st in
	ok) ;;
	*=403 | *=404 | *=410)
		vanished=$((vanished + 1))
		problems+=("check-pins: $file: $module@$version: vanished from $proxy (HTTP ${st#*=} for .${st%=*})")
		;;
	*)
		unknown=$((unknown + 1))
		problems+=("check-pins: $file: $module@$version: could not be checked: $proxy answered ${st#*=} for .${st%=*}")
		;;
	esac
done <<<"$pins"

if [ ${#problems[@]} -gt 0 ]; then
	printf '%s\n' "${problems[@]}" >&2
	echo "check-pins: $((${#problems[@]})) problem(s) among $checked pins ($vanished vanished, $unknown unanswered)" >&2
	exit 1
fi
echo "check-pins: all $checked pins (${#query[@]} distinct module versions) are served by $proxy"
