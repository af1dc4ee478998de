#!/usr/bin/env bash
# The folder-level walls of src/ (docs/ARCHITECTURE.md, "Folders and what
# they may include"): each folder includes only the folders below it, so no
# circle exists between folders.  Fails naming every include that breaks a
# wall.  Usage: check-layers.sh SRC_DIR
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

for dir in "${!allowed[@]}"; do
	while IFS= read -r line; do
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
	done < <(grep -rn --include='*.[ch]' '^#include "' "$src/$dir" || true)
done

# The layers above the runtime never see a ring.
if grep -rn --include='*.[ch]' 'liburing' "$src/engine" "$src/kv" "$src/base"; then
	echo "wall broken: engine, kv and base must not include liburing.h" >&2
	bad=1
fi
# The runtime names no backend outside its own folder: src/backends.c does.
if grep -rn --include='*.[ch]' 'urt_backend_passthru' "$src/runtime"; then
	echo "wall broken: src/runtime names the passthru backend (list it in src/backends.c)" >&2
	bad=1
fi
[ $bad = 0 ] && echo "layers: every include respects the folder walls"
exit $bad
