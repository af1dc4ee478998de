#!/usr/bin/env bash
# Install urt into a temporary prefix, then build the examples from outside
# the tree twice, with pkg-config and with find_package(urt), and run them:
#   urt-cp      (runtime: fixed buffers, a deadline on every op)
#   ps-example  (page store: commit, then reopen and find it)
#   kv_example  (embedded key-value store: run twice, the data persists)
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > /dev/null
pcdir=$(dirname "$(find "$work/prefix" -name urt.pc | head -n 1)")
libdir=$(dirname "$pcdir")
test -x "$work/prefix/bin/urbench" || { echo "urbench not installed"; exit 1; }
test -x "$work/prefix/bin/urkv" || { echo "urkv not installed"; exit 1; }
test -x "$work/prefix/bin/urkv-cluster" || { echo "urkv-cluster not installed"; exit 1; }
test -f "$work/prefix/share/man/man1/urbench.1" || { echo "urbench.1 not installed"; exit 1; }
examples="copy/urt-cp.c ps/ps-example.c kv/kv_example.c"

echo "== pkg-config"
mkdir -p "$work/pc"
for ex in $examples; do
	name=$(basename "$ex" .c)
	PKG_CONFIG_PATH="$pcdir" cc -std=c11 -Wall -Werror -o "$work/pc/$name" "$src/examples/$ex" \
		$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs urt) -Wl,-rpath,"$libdir"
done

echo "== find_package(urt)"
mkdir -p "$work/proj"
{
	echo 'cmake_minimum_required(VERSION 3.25)'
	echo 'project(urt_examples C)'
	echo 'find_package(urt 0.1 REQUIRED)'
	for ex in $examples; do
		name=$(basename "$ex" .c)
		echo "add_executable($name $src/examples/$ex)"
		echo "target_link_libraries($name PRIVATE urt::urt)"
	done
} > "$work/proj/CMakeLists.txt"
cmake -S "$work/proj" -B "$work/cm" -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/cm" > /dev/null

echo "== run both builds"
head -c $((3 * 1048576 + 12345)) /dev/urandom > "$work/in"
for dir in "$work/pc" "$work/cm"; do
	export LD_LIBRARY_PATH="$libdir"
	rm -f "$work/out" "$work/ps.dat" "$work/kv.dat"
	"$dir/urt-cp" "$work/in" "$work/out" 5000
	cmp "$work/in" "$work/out"
	# Whole lines: "0 transactions found" is also a substring of "160 ...".
	"$dir/ps-example" "$work/ps.dat" > "$work/ps.out"
	grep -qx "ps-example: 0 transactions found, 16 more committed" "$work/ps.out" ||
		{ cat "$work/ps.out"; echo "$dir: ps-example's first run did not start from an empty store"; exit 1; }
	"$dir/ps-example" "$work/ps.dat" > "$work/ps.out"
	grep -qx "ps-example: 16 transactions found, 16 more committed" "$work/ps.out" ||
		{ cat "$work/ps.out"; echo "$dir: ps-example's commits did not persist"; exit 1; }
	# The store counts its runs in a key: the second run must see the first's.
	for run in 1 2; do
		"$dir/kv_example" "$work/kv.dat" > "$work/kv.out"
		grep -qx "this program ran $run time(s) on this data file" "$work/kv.out" ||
			{ cat "$work/kv.out"; echo "$dir: kv_example run $run did not count $run run(s)"; exit 1; }
	done
	echo "$dir: urt-cp, ps-example and kv_example OK"
done
# A bad path gets a clear error and exit status 1.
if "$work/cm/urt-cp" "$work/missing" "$work/out2" 2> "$work/err"; then
	echo "copying a missing file succeeded"; exit 1
fi
grep -q "missing" "$work/err"
echo "out-of-tree builds OK"
