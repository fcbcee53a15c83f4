#!/usr/bin/env bash
# Fails when git tracks (in the index: committed or staged) a binary
# executable or a file over 1 MiB: build output and downloaded tools belong in
# bin/ or the cache, not in the repository. The generated CRDs in
# charts/backflow/crds/ may be large. Reads the index, so it takes well under
# a second.
#
#   test/tools/check-tracked.sh
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
max=$((1024 * 1024))
large_ok='^charts/backflow/crds/'

# magic OID: the first bytes of blob OID, in hex.
magic() { (set +o pipefail; git cat-file blob "$1" | head -c 4 | od -An -tx1 | tr -d ' \n'); }

problems=()
# "SIZE MODE OID EOL PATH" for each regular file in the index; EOL is git's
# verdict on the content: -text when it has NUL bytes (binary).
while read -r size mode oid eol path; do
	if [ "$size" -gt "$max" ] && ! [[ $path =~ $large_ok ]]; then
		problems+=("$path: $size bytes, over 1 MiB")
	fi
	[ "$mode" = 100755 ] || [ "$eol" = -text ] || continue
	m=$(magic "$oid")
	case $m in
	7f454c46*) problems+=("$path: an ELF binary") ;;
	feedface* | feedfacf* | cefaedfe* | cffaedfe* | cafebabe*) problems+=("$path: a Mach-O binary (or Java class)") ;;
	4d5a*) [ "$eol" = -text ] && problems+=("$path: a Windows (PE) binary") ;;
	2321*) ;; # #!: a script
	*)
		if [ "$mode" = 100755 ] && [ "$eol" = -text ]; then
			problems+=("$path: an executable binary")
		elif [ "$mode" = 100755 ]; then
			problems+=("$path: executable but not a script (no #! line): chmod -x it (git update-index --chmod=-x)")
		fi
		;;
	esac
done < <(git ls-files --format='%(objectname) %(objectmode) %(objectname) %(eolinfo:index) %(path)' |
	awk '$2 == "100644" || $2 == "100755"' |
	git cat-file --batch-check='%(objectsize) %(rest)')

if [ ${#problems[@]} -gt 0 ]; then
	printf 'check-tracked: %s\n' "${problems[@]}" >&2
	echo "check-tracked: git tracks binaries or large files (above): git rm --cached them and keep them out of the repository" >&2
	exit 1
fi
