#!/usr/bin/env bash
# include/urt/urt.h, the umbrella header, includes every other public header.
set -euo pipefail
inc=$1
missing=0
for h in "$inc"/urt/*.h; do
	name=$(basename "$h")
	[ "$name" = urt.h ] && continue
	if ! grep -q "^#include \"urt/$name\"" "$inc/urt/urt.h"; then
		echo "urt/urt.h does not include urt/$name" >&2
		missing=1
	fi
done
exit $missing
