#!/usr/bin/env bash
# Runs the context switch's checks (context_cross.c) on aarch64 under
# qemu-user and on the host, with the real src/runtime/fiber/context.c,
# context_<arch>.S and stack.c:
#   1. host compiler, -O2 and -O0, run natively;
#   2. aarch64-linux-gnu-gcc -static, -O2 and -O0, run under qemu-aarch64-static;
#   3. the aarch64 -O2 disassembly of live_across_switch must hold values in
#      every one of x19-x28 and d8-d15 across its call of urt_ctx_switch, so
#      the compiler-driven register check cannot quietly turn into a check of
#      stack spills after a compiler change.
#
# Usage: run-context-aarch64.sh [OUT_DIR]  (ctest passes a build directory;
# without one the binaries go to a temporary directory that is removed).
# Exit status: 0 when everything passed, 1 when a check failed, 77 (ctest's
# SKIP_RETURN_CODE) when the aarch64 toolchain or qemu-user is missing; the
# host checks run first, and a host failure is a failure even then.
# Overrides: HOST_CC, CROSS_CC, CROSS_OBJDUMP, QEMU.
set -euo pipefail

SKIP=77
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
HOST_CC=${HOST_CC:-gcc}
CROSS_CC=${CROSS_CC:-aarch64-linux-gnu-gcc}
CROSS_OBJDUMP=${CROSS_OBJDUMP:-aarch64-linux-gnu-objdump}
QEMU=${QEMU:-qemu-aarch64-static}

if [ $# -ge 1 ]; then
	out=$1
	mkdir -p "$out"
else
	out=$(mktemp -d)
	trap 'rm -rf "$out"' EXIT
fi

# The flags of the CMake build's urt_flags target, without sanitizers.
cflags=(-std=gnu17 -D_GNU_SOURCE -fPIC -g
	-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wno-missing-field-initializers
	-I"$root/src" -I"$root/include")
# Both .S files are listed as in src/runtime/CMakeLists.txt (fiber/); each assembles
# to nothing on the other architecture.
sources=("$here/context_cross.c"
	"$root/src/runtime/fiber/context.c"
	"$root/src/runtime/fiber/context_x86_64.S"
	"$root/src/runtime/fiber/context_aarch64.S"
	"$root/src/runtime/fiber/stack.c")
# The program observes the trampoline through a wrapper of urt_ctx_start.
ldflags=(-Wl,--wrap=urt_ctx_start -lm)

failed=0

# build NAME CC OPT [extra flags...]: compiles $out/NAME or records a failure.
build() {
	local name=$1 cc=$2 opt=$3
	shift 3
	if ! "$cc" "${cflags[@]}" "$opt" "$@" -o "$out/$name" "${sources[@]}" "${ldflags[@]}"; then
		echo "FAIL: $name did not build" >&2
		failed=1
		return 1
	fi
}

# run NAME [runner]: runs $out/NAME, under the runner if one is given.
run() {
	local name=$1
	shift
	echo "== $name"
	if ! timeout 60 "$@" "$out/$name"; then
		echo "FAIL: $name" >&2
		failed=1
	fi
}

# Prints the callee-saved registers that are not both set before the call
# of urt_ctx_switch and read after it, in the disassembly of
# live_across_switch in the file $1.
not_live_across_switch() {
	awk '
		/^[0-9a-f]+ <live_across_switch>:$/ { infn = 1; next }
		infn && /^$/ { exit }
		!infn { next }
		{
			n = split($0, f, "\t")
			if (n < 3)
				next
			mn = f[2]
			ops = f[3]
			if (mn == "bl" && ops ~ /<urt_ctx_switch>/) {
				calls++
				after = 1
				next
			}
			sub(/\/\/.*/, "", ops)
			gsub(/[][!]/, " ", ops)
			k = split(ops, tok, ",")
			nreg = 0
			for (i = 1; i <= k; i++) {
				t = tok[i]
				gsub(/^ +| +$/, "", t)
				if (t ~ /^[xw][0-9]+$/)
					reg[++nreg] = "x" substr(t, 2)
				else if (t ~ /^[bhsdq][0-9]+$/)
					reg[++nreg] = "d" substr(t, 2)
				else if (t ~ /^v[0-9]+\./) {
					sub(/\..*/, "", t)
					reg[++nreg] = "d" substr(t, 2)
				}
			}
			# How many leading register operands the instruction writes.
			ndst = 1
			if (mn ~ /^st/ || mn ~ /^(cmp|cmn|tst|fcmpe?|f?ccmn?|cbn?z|tbn?z|b|br|blr|ret|prfm)$/ || mn ~ /^b\./)
				ndst = 0
			else if (mn ~ /^ld[a-z]*p$/)
				ndst = 2
			for (i = 1; i <= nreg; i++) {
				if (i <= ndst && !after)
					set_before[reg[i]] = 1
				else if (i > ndst && after)
					read_after[reg[i]] = 1
			}
		}
		END {
			if (calls != 1) {
				print "(" calls + 0 " calls of urt_ctx_switch)"
				exit
			}
			for (r = 19; r <= 28; r++)
				if (!set_before["x" r] || !read_after["x" r])
					printf "x%d ", r
			for (r = 8; r <= 15; r++)
				if (!set_before["d" r] || !read_after["d" r])
					printf "d%d ", r
		}' "$1"
}

start_ms=$(($(date +%s%N) / 1000000))

# ------------------------------------------------------------------ host
if command -v "$HOST_CC" > /dev/null; then
	host=$(uname -m)
	build "context_cross-$host-O2" "$HOST_CC" -O2 && run "context_cross-$host-O2"
	build "context_cross-$host-O0" "$HOST_CC" -O0 && run "context_cross-$host-O0"
else
	echo "FAIL: no host C compiler $HOST_CC" >&2
	failed=1
fi

# --------------------------------------------------------------- aarch64
missing=()
for tool in "$CROSS_CC" "$CROSS_OBJDUMP" "$QEMU"; do
	command -v "$tool" > /dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ] &&
	! echo 'int main(void) { return 0; }' |
		"$CROSS_CC" -x c - -static -o "$out/probe-aarch64" 2> "$out/probe-aarch64.log"; then
	sed 's/^/  /' "$out/probe-aarch64.log" >&2
	missing+=("a working $CROSS_CC -static (is libc6-dev-arm64-cross installed?)")
fi
if [ ${#missing[@]} -ne 0 ]; then
	if [ $failed -ne 0 ]; then
		exit 1
	fi
	echo "SKIP: aarch64 context switch not tested, missing: ${missing[*]}" >&2
	echo "SKIP: install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static" >&2
	exit $SKIP
fi

if build context_cross-aarch64-O2 "$CROSS_CC" -O2 -static; then
	run context_cross-aarch64-O2 "$QEMU"
	echo "== callee-saved registers live across urt_ctx_switch (aarch64 -O2 disassembly)"
	dis="$out/context_cross-aarch64-O2.dis"
	"$CROSS_OBJDUMP" -d --no-show-raw-insn "$out/context_cross-aarch64-O2" > "$dis"
	dead=$(not_live_across_switch "$dis")
	if [ -n "$dead" ]; then
		echo "FAIL: live_across_switch does not keep values across the switch in: $dead" >&2
		echo "      (the compiler-driven register check lost its coverage; see" >&2
		echo "      live_across_switch in $dis)" >&2
		failed=1
	else
		echo "x19-x28 and d8-d15 all set before the call and read after it"
	fi
fi
build context_cross-aarch64-O0 "$CROSS_CC" -O0 -static && run context_cross-aarch64-O0 "$QEMU"

echo "== done in $(($(date +%s%N) / 1000000 - start_ms)) ms"
exit $failed
