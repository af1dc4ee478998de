#!/usr/bin/env bash
# The folder-level walls of src/ (docs/ARCHITECTURE.md, "Folders and what
# they may include"): each folder includes only the folders below it, so no
# circle exists between folders.  Fails naming every include that breaks a
# wall, every folder of src/ the table below does not place (a new folder
# would otherwise go unchecked), and every folder of the table that is
# missing (its walls would otherwise pass on nothing).  A grep that fails
# (status 2: unreadable folder) fails the check too; it never reads as
# "no include found".  Usage: check-layers.sh SRC_DIR
set -euo pipefail
src=$1
bad=0

# allowed[folder] = the src/ folders its files may include (besides itself
# and the public include/urt/ headers).
declare -A allowed=(
	[base]=""
	[runtime]="base"
	[passthru]="base runtime"
	[engine]="base"
	[kv]="base"
)

# grep_src PATTERN PATH...: grep -rn over the C sources, with the matches
# on stdout.  Returns 0 for matches, 1 for none; any other status (an error)
# ends the check.
grep_src() {
	local rc=0
	grep -rn --include='*.[ch]' "$@" || rc=$?
	if [ "$rc" -gt 1 ]; then
		echo "layers: grep failed (status $rc) on $*" >&2
		exit 2
	fi
	return "$rc"
}

[ -d "$src" ] || { echo "layers: $src is not a folder" >&2; exit 2; }
for path in "$src"/*/; do
	dir=$(basename "$path")
	if [ -z "${allowed[$dir]+set}" ]; then
		echo "wall unknown: src/$dir is not in check-layers.sh's table (docs/ARCHITECTURE.md places every folder)" >&2
		bad=1
	fi
done

for dir in "${!allowed[@]}"; do
	if [ ! -d "$src/$dir" ]; then
		echo "wall missing: src/$dir is in check-layers.sh's table but not in $src" >&2
		bad=1
		continue
	fi
	lines=$(grep_src '^#include "' "$src/$dir") || true
	while IFS= read -r line; do
		[ -n "$line" ] || continue
		file=${line%%:*}
		inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
		top=${inc%%/*}
		[ "$top" = urt ] && continue		# Public headers: anyone.
		[ "$inc" = "$top" ] && continue		# Same-folder header without a path.
		[ "$top" = "$dir" ] && continue
		ok=0
		for a in ${allowed[$dir]}; do
			[ "$top" = "$a" ] && ok=1
		done
		if [ $ok = 0 ]; then
			echo "wall broken: $file includes \"$inc\" (src/$dir may include: ${allowed[$dir]:-nothing else})" >&2
			bad=1
		fi
	done <<<"$lines"
done

# The layers above the runtime never see a ring.
if grep_src 'liburing' "$src/engine" "$src/kv" "$src/base"; then
	echo "wall broken: engine, kv and base must not include liburing.h" >&2
	bad=1
fi
# The runtime names no backend outside its own folder: src/backends.c does.
if grep_src 'urt_backend_passthru' "$src/runtime"; then
	echo "wall broken: src/runtime names the passthru backend (list it in src/backends.c)" >&2
	bad=1
fi
[ $bad = 0 ] && echo "layers: every include respects the folder walls"
exit $bad
