#!/usr/bin/env bash
# Install urt into a temporary prefix, then build the examples from outside
# the tree twice, with pkg-config and with find_package(urt), and run them.
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
pcdir=$(dirname "$(find "$work/prefix" -name urt.pc | head -n 1)")
libdir=$(dirname "$pcdir")

echo "== pkg-config"
PKG_CONFIG_PATH="$pcdir" cc -std=c11 -Wall -Werror -o "$work/cp-pc" "$src/examples/copy/urt-cp.c" \
	$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs urt) -Wl,-rpath,"$libdir"

echo "== find_package(urt)"
cmake -S "$src/examples/copy" -B "$work/b" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/b" > /dev/null

echo "== run both"
head -c $((3 * 1048576 + 12345)) /dev/urandom > "$work/in"
for bin in "$work/cp-pc" "$work/b/urt-cp"; do
	rm -f "$work/out"
	LD_LIBRARY_PATH="$libdir" "$bin" "$work/in" "$work/out" 5000
	cmp "$work/in" "$work/out"
	echo "$bin: copy identical"
done
# A bad path gets a clear error and exit status 1.
if LD_LIBRARY_PATH="$libdir" "$work/b/urt-cp" "$work/missing" "$work/out2" 2> "$work/err"; then
	echo "copying a missing file succeeded"; exit 1
fi
grep -q "missing" "$work/err"
echo "out-of-tree builds OK"
