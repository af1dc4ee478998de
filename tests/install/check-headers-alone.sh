#!/usr/bin/env bash
# Each public header compiles on its own, as the only include of a file,
# as C11 and as C++17 (-Wall -Wextra -Werror -pedantic).  headers.c and
# headers.cpp include every header in one file, where a header that forgot
# an include of its own compiles anyway on what the headers before it
# brought in; and their list is written by hand.  Here every
# include/urt/*.h is taken.  Usage: check-headers-alone.sh CC CXX INCLUDE_DIR
set -euo pipefail
cc=$1
cxx=$2
inc=$3
bad=0
n=0

for h in "$inc"/urt/*.h; do
	[ -f "$h" ] || { echo "no header in $inc/urt" >&2; exit 1; }
	name=urt/$(basename "$h")
	n=$((n + 1))
	if ! printf '#include <%s>\ntypedef int urt_alone; /* ISO C wants a declaration. */\n' "$name" |
		"$cc" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c -; then
		echo "$name does not compile alone as C11" >&2
		bad=1
	fi
	if ! printf '#include <%s>\ntypedef int urt_alone; /* ISO C wants a declaration. */\n' "$name" |
		"$cxx" -std=c++17 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$inc" -x c++ -; then
		echo "$name does not compile alone as C++17" >&2
		bad=1
	fi
done
[ "$bad" = 0 ] || exit 1
echo "$n public headers compile alone as C11 and C++17"
