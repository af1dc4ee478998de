#!/usr/bin/env bash
# Fails when liburt.so exports anything but urt_* (and its version node).
set -euo pipefail
lib=$1
leaks=$(nm -D --defined-only "$lib" | awk '$2 != "A" {print $3}' | grep -v '^urt_' || true)
count=$(nm -D --defined-only "$lib" | awk '$3 ~ /^urt_/' | wc -l)
if [ -n "$leaks" ]; then
	echo "non-public symbols exported by $lib:"
	echo "$leaks"
	exit 1
fi
if [ "$count" -lt 20 ]; then
	echo "only $count urt_* symbols exported: the version script or visibility is broken"
	exit 1
fi
echo "$count urt_* symbols exported, nothing else"
