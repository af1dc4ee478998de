#!/bin/bash
# run-vm.sh: boot a QEMU guest with an emulated NVMe controller and the real
# Linux NVMe driver, run test binaries inside it, and report their verdict.
#
#   tests/nvme-vm/run-vm.sh [--timeout S] [--smp N] [--mem MB] [--keep]
#                           [--args 'ARGS'] [--shell] [--trace 'EVENTS']
#                           [--trace-out FILE] [--check 'CMD'] [--with EXE]
#                           [--icount SHIFT] BIN [BIN...]
#
#   --timeout S  stop the guest after S seconds, boot included (default 600)
#   --smp N      guest vCPUs, also the nvme poll_queues count (default 2)
#   --mem MB     guest memory (default 1024)
#   --keep       keep the work directory (console log, initramfs, images)
#   --args ARGS  append ARGS to every binary's arguments
#   --shell      after the tests, open a shell on the console (interactive)
#   --io-timeout S     nvme_core io_timeout in the guest, seconds (default 120)
#   --admin-timeout S  nvme_core admin_timeout in the guest, seconds (default:
#                      the driver's, 60)
#   --trace EVENTS  QEMU trace events to record, comma-separated patterns
#                (e.g. 'pci_nvme_io_cmd,pci_nvme_write,pci_nvme_flush_ns')
#   --trace-out FILE  copy QEMU's trace log to FILE after the guest exits
#   --check CMD  after a passing guest, run CMD on the host with
#                URT_VM_TRACE (QEMU's trace log) and URT_VM_CONSOLE (the
#                serial console, CR-free) set; its exit status is the verdict
#   --with EXE   also copy EXE (and its libraries) to /urt/bin/ in the guest
#                without running it, for a BIN that runs it; repeatable
#   --icount SHIFT  run the guest under QEMU's instruction counting: one
#                guest instruction is 2^SHIFT ns of the guest's clock while
#                it runs (sleep=on: idle time still follows the host's
#                clock), on single-threaded TCG.  The guest's CPU time
#                (getrusage, /proc/stat) then counts instructions, not host
#                time, so it does not move with the host's load
#
# Exit status: 0 when every binary passed, 1 when one failed or the guest
# hung, crashed or could not be set up, 2 on a usage error, and 77 (skip)
# when QEMU or a guest kernel cannot be had on this machine, or when every
# binary skipped.  See tests/nvme-vm/README.md for the namespaces and the
# variables the tests read, and docs/nvme-vm.md for how it works.
#
# Design notes.
#  1. Steps: resolve and cache the guest kernel (vmlinuz and the NVMe modules
#     of a Debian linux-image package), stage an initramfs (busybox, modules,
#     the binaries and the shared libraries they need, the /init script and
#     its configuration), create fresh sparse namespace images, boot QEMU
#     under TCG, stream the serial console, and translate QEMU's exit status.
#  2. The guest reports through isa-debug-exit: QEMU exits with (v<<1)|1
#     for the byte v the guest writes.  Only v = 0x10 (exit 33) is a pass;
#     0x11 (35) is "all skipped"; anything else, including 0 from a panic or
#     a plain power-off, is a failure.
#  3. Binaries need not be static: the loader and every library that ldd
#     lists are copied to the same absolute paths inside the initramfs.
#     (Criterion, libnvme and ISA-L have no usable static archives on
#     Debian 12, so static linking is not an option for the test suites.)
#  4. Nothing is downloaded when the cache already holds the kernel that
#     apt resolves; apt-get update runs only when no package resolves.
#  5. --trace turns on QEMU's own trace events (log backend, one line per
#     event, written to a file in the work directory), so a test can check
#     what the emulated controller received rather than what reads back.
#     --check runs a host command on that file and the console after the
#     guest passed: a failing check fails the run (exit 1), a check that
#     exits 77 makes it a skip.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${URT_VM_CACHE:-$HERE/cache}

# Namespace layout: nsid, role (the suffix of the URT_NVME_* variables),
# logical block size, image size in MiB.  Keep README.md in step.
NAMESPACES=(
	"1 512 512 128"
	"2 4K 4096 128"
	"3 FAULT 512 16"
	"4 SLOW 512 16"
)
# blkdebug injects EIO for I/O that overlaps these 512-byte sectors of the
# FAULT namespace; its LBAs are 512 bytes, so sector == LBA.
FAULT_READ_LBA=2048
FAULT_WRITE_LBA=4096
# Bytes per second of the SLOW namespace (reads and writes together).
SLOW_BPS=${URT_VM_SLOW_BPS:-16384}
# nvme_core.io_timeout in the guest, in seconds.  Longer than the default 30
# so that a queue of slow I/O does not make the driver reset the controller.
IO_TIMEOUT_S=120
# nvme_core.admin_timeout in the guest, in seconds; empty = the driver's default.
ADMIN_TIMEOUT_S=""

timeout_s=600
smp=2
mem_mb=1024
keep=0
shell=0
extra_args=""
trace_events=""
trace_out=""
icount=""
check_cmd=""
with_exes=()

usage() {
	sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

log() { printf 'run-vm: %s\n' "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
die() { log "ERROR: $*"; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--smp) smp=${2:?}; shift 2 ;;
	--mem) mem_mb=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--shell) shell=1; shift ;;
	--args) extra_args=${2?}; shift 2 ;;
	--io-timeout) IO_TIMEOUT_S=${2:?}; shift 2 ;;
	--admin-timeout) ADMIN_TIMEOUT_S=${2:?}; shift 2 ;;
	--trace) trace_events=${2:?}; shift 2 ;;
	--trace-out) trace_out=${2:?}; shift 2 ;;
	--icount) icount=${2:?}; shift 2 ;;
	--check) check_cmd=${2:?}; shift 2 ;;
	--with) with_exes+=("${2:?}"); shift 2 ;;
	-h|--help) usage 0 ;;
	--) shift; break ;;
	-*) log "unknown option $1"; usage 2 ;;
	*) break ;;
	esac
done
[ $# -ge 1 ] || usage 2
for b in "$@" ${with_exes[@]+"${with_exes[@]}"}; do
	[ -f "$b" ] && [ -x "$b" ] || { log "not an executable file: $b"; exit 2; }
done
[[ "$timeout_s" =~ ^[0-9]+$ ]] || { log "--timeout wants seconds"; exit 2; }
[[ "$smp" =~ ^[1-9][0-9]*$ ]] || { log "--smp wants a positive count"; exit 2; }
[[ "$icount" =~ ^([0-9]|10)?$ ]] || { log "--icount wants a shift of 0 to 10"; exit 2; }
[[ "$IO_TIMEOUT_S" =~ ^[1-9][0-9]*$ ]] || { log "--io-timeout wants seconds"; exit 2; }
[[ "$ADMIN_TIMEOUT_S" =~ ^([1-9][0-9]*)?$ ]] || { log "--admin-timeout wants seconds"; exit 2; }
poll_queues=$smp

t_start=$(date +%s.%N)

# --- Host tools -------------------------------------------------------------
QEMU=${URT_VM_QEMU:-qemu-system-x86_64}
command -v "$QEMU" >/dev/null || skip "$QEMU not found (apt-get install qemu-system-x86)"
BUSYBOX=""
for p in /bin/busybox /usr/bin/busybox; do
	if [ -x "$p" ] && ! ldd "$p" >/dev/null 2>&1; then BUSYBOX=$p; break; fi
done
[ -n "$BUSYBOX" ] || skip "no statically linked busybox (apt-get install busybox-static)"
for t in cpio dpkg-deb xz ldd timeout flock; do
	command -v "$t" >/dev/null || skip "$t not found"
done

# --- Guest kernel -------------------------------------------------------------
# Prints the versioned package a metapackage depends on, or nothing.
resolve_pkg() {
	{ apt-cache depends "$1" 2>/dev/null || true; } |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

# Sets kpkg to the kernel package to use.  6.12 is preferred: 6.1 rejects a
# FIXED passthrough I/O when more than 127 pages lie between its start and
# the end of the registered buffer.
pick_kernel() {
	kpkg=${URT_VM_KERNEL_PKG:-}
	[ -n "$kpkg" ] && return 0
	local pass meta
	for pass in cached updated; do
		if command -v apt-cache >/dev/null; then
			for meta in linux-image-6.12-amd64 linux-image-amd64; do
				kpkg=$(resolve_pkg "$meta")
				if [ -n "$kpkg" ]; then
					[ "$meta" = linux-image-6.12-amd64 ] ||
						log "WARNING: linux-image-6.12-amd64 is not available; using $kpkg (6.1 limits FIXED passthrough I/O, see docs/nvme-vm.md)"
					return 0
				fi
			done
		fi
		[ "$pass" = cached ] || break
		if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
			log "no linux-image package resolves; running apt-get update once"
			apt-get update -qq >&2 || true
		else
			break
		fi
	done
	# Offline and apt knows nothing: fall back to the newest cached kernel.
	kpkg=$(newest_cached)
	[ -n "$kpkg" ] || skip "no linux-image package resolves and none is cached in $CACHE"
	log "apt resolves no kernel; using the cached $kpkg"
}

# Prints the newest complete kernel in the cache, or nothing.
newest_cached() {
	local d
	for d in "$CACHE"/kernel/*/ready; do
		if [ -f "$d" ]; then basename "$(dirname "$d")"; fi
	done | sort -V | tail -n 1
}

# Prints the depends= list of a module file.
mod_depends() {
	tr '\0' '\n' < "$1" | sed -n 's/^depends=//p' | tr ',' ' '
}

# Fills $CACHE/kernel/$kpkg with vmlinuz, the uncompressed NVMe modules and
# "modules": their load order.
fetch_kernel() {
	local dir=$CACHE/kernel/$kpkg tmp deb f m
	[ -f "$dir/ready" ] && return 0
	command -v apt-get >/dev/null || skip "apt-get not found to download $kpkg"
	mkdir -p "$CACHE/kernel"
	tmp=$(mktemp -d "$CACHE/kernel/.fetch.XXXXXX")
	log "downloading $kpkg into $CACHE"
	if ! (cd "$tmp" && apt-get download -q "$kpkg" >&2 2>"$tmp/apt.err"); then
		cat "$tmp/apt.err" >&2
		rm -rf "$tmp"
		# Offline with an older kernel cached: that one will do.
		f=$(newest_cached)
		[ -n "$f" ] || skip "apt-get download $kpkg failed and no kernel is cached in $CACHE"
		log "apt-get download $kpkg failed; using the cached $f"
		kpkg=$f
		return 0
	fi
	deb=$(ls "$tmp"/*.deb)
	# The NVMe modules and the directories their dependencies live in (6.1's
	# nvme-core needs block/t10-pi, for instance).  tar reports a pattern that
	# matches nothing as an error, so success is judged by the files.
	(cd "$tmp" && dpkg-deb --fsys-tarfile "$deb" |
		tar -x --wildcards './boot/vmlinuz-*' \
			'./lib/modules/*/kernel/drivers/nvme/*' './lib/modules/*/kernel/block/*' \
			'./lib/modules/*/kernel/lib/*' './lib/modules/*/kernel/crypto/*' \
			'./lib/modules/*/kernel/arch/x86/crypto/*') 2>"$tmp/tar.err" || true
	rm -f "$deb"
	if ! ls "$tmp"/boot/vmlinuz-* >/dev/null 2>&1; then
		cat "$tmp/tar.err" >&2
		rm -rf "$tmp"
		die "no vmlinuz in $kpkg"
	fi
	mkdir -p "$tmp/out/mod"
	mv "$tmp"/boot/vmlinuz-* "$tmp/out/vmlinuz"
	# Index the extracted modules by name; "_" and "-" are the same to the
	# kernel.  They ship as .ko, .ko.xz or .ko.zst depending on the release.
	local -A path=()
	while IFS= read -r f; do
		m=$(basename "$f")
		m=${m%.xz}
		m=${m%.zst}
		m=${m%.ko}
		path[${m//_/-}]=$f
	done < <(find "$tmp/lib/modules" -name '*.ko*')
	# Load order: a depth-first walk of depends= from nvme; only the modules
	# on the walk are decompressed and kept.
	local -A seen=()
	local order=()
	visit() {
		local name=${1//_/-} d src=""
		[ -n "${seen[$name]:-}" ] && return 0
		seen[$name]=1
		src=${path[$name]:-}
		if [ -z "$src" ]; then
			rm -rf "$tmp"
			die "module $name (needed by nvme) was not extracted from $kpkg"
		fi
		case "$src" in
		*.ko.xz) xz -dc "$src" ;;
		*.ko.zst) zstd -qdc "$src" ;;
		*) cat "$src" ;;
		esac > "$tmp/out/mod/$name.ko"
		for d in $(mod_depends "$tmp/out/mod/$name.ko"); do visit "$d"; done
		order+=("$name")
	}
	visit nvme
	printf '%s\n' "${order[@]}" > "$tmp/out/modules"
	rm -rf "$dir"
	mv "$tmp/out" "$dir"
	echo "$kpkg" > "$dir/ready"
	rm -rf "$tmp"
}

# One run at a time resolves and fills the cache, so that concurrent first
# runs do not download twice or race on the final rename.
mkdir -p "$CACHE"
exec 9> "$CACHE/.lock"
flock 9
pick_kernel
fetch_kernel
flock -u 9
exec 9>&-
KDIR=$CACHE/kernel/$kpkg
log "guest kernel package: $kpkg"
t_kernel=$(date +%s.%N)

# --- Work directory -----------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/urt-nvme-vm.XXXXXX")
cleanup() {
	if [ "$keep" = 1 ]; then
		log "kept $WORK (console.log, initramfs.cpio, namespace images)"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

# --- Initramfs ------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,run,etc/urt,lib/modules,urt/bin}
cp "$BUSYBOX" "$ROOT/bin/busybox"
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init"
while read -r m; do
	cp "$KDIR/mod/$m.ko" "$ROOT/lib/modules/"
	case "$m" in
	nvme-core) echo "$m io_timeout=$IO_TIMEOUT_S${ADMIN_TIMEOUT_S:+ admin_timeout=$ADMIN_TIMEOUT_S}" ;;
	nvme) echo "$m poll_queues=$poll_queues" ;;
	*) echo "$m" ;;
	esac
done < "$KDIR/modules" > "$ROOT/etc/urt/modules"

# Copies a host file to the same absolute path inside the initramfs.
stage_file() {
	[ -e "$ROOT$1" ] && return 0
	mkdir -p "$ROOT$(dirname "$1")"
	cp -L "$1" "$ROOT$1"
}

# Copies the dynamic loader and every library a binary needs.
stage_libs() {
	local out line lib
	if ! out=$(ldd "$1" 2>&1); then
		return 0    # Statically linked: nothing to copy.
	fi
	if grep -q 'not found' <<<"$out"; then
		die "$1 needs libraries that cannot be found: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ')"
	fi
	while read -r line; do
		case "$line" in
		*'=>'*) lib=$(awk '{print $3}' <<<"$line") ;;
		/*) lib=$(awk '{print $1}' <<<"$line") ;;
		*) continue ;;
		esac
		[ -n "$lib" ] && [ -e "$lib" ] && stage_file "$lib"
	done <<<"$out"
}

: > "$ROOT/etc/urt/tests"
declare -A names=()
for b in "$@"; do
	name=$(basename "$b")
	n=1
	while [ -n "${names[$name]:-}" ]; do n=$((n + 1)); name="$(basename "$b").$n"; done
	names[$name]=1
	cp -L "$b" "$ROOT/urt/bin/$name"
	stage_libs "$b"
	args=""
	# Criterion binaries: one job keeps the output in order and the guest's
	# two vCPUs free for the I/O under test.
	if grep -qaF 'libcriterion.so' "$b"; then
		args="--jobs 1 --verbose --color=never"
	fi
	args="$args${extra_args:+ $extra_args}"
	printf '%s\t%s\n' "$name" "${args# }" >> "$ROOT/etc/urt/tests"
done
# Helpers a test binary runs (--with): staged, not listed in /etc/urt/tests.
for b in ${with_exes[@]+"${with_exes[@]}"}; do
	cp -L "$b" "$ROOT/urt/bin/$(basename "$b")"
	stage_libs "$b"
done
# glibc loads libgcc_s at run time (pthread_cancel, backtrace); ldd does not
# list it.
if [ -n "$(find "$ROOT" -name 'ld-linux*' -print -quit)" ]; then
	for p in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -e "$p" ] && { stage_file "$p"; break; }
	done
fi

: > "$ROOT/etc/urt/namespaces"
for ns in "${NAMESPACES[@]}"; do
	read -r nsid role _ _ <<<"$ns"
	echo "$nsid $role" >> "$ROOT/etc/urt/namespaces"
done
echo 60 > "$ROOT/etc/urt/ns_wait_s"
[ "$shell" = 0 ] || touch "$ROOT/etc/urt/shell"
cat > "$ROOT/etc/urt/vm.env" <<EOF
URT_NVME_FAULT_READ_LBA=$FAULT_READ_LBA
URT_NVME_FAULT_WRITE_LBA=$FAULT_WRITE_LBA
URT_NVME_SLOW_BPS=$SLOW_BPS
URT_NVME_POLL_QUEUES=$poll_queues
URT_NVME_IO_TIMEOUT_S=$IO_TIMEOUT_S
EOF
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$WORK/initramfs.cpio"

# --- Namespace images -----------------------------------------------------------
# cache=none needs O_DIRECT on the host file system (tmpfs lacks it).
cache_mode=none
truncate -s 1M "$WORK/probe.img"
dd if=/dev/zero of="$WORK/probe.img" bs=4096 count=1 oflag=direct conv=notrunc status=none 2>/dev/null ||
	cache_mode=writeback
rm -f "$WORK/probe.img"

cat > "$WORK/fault.conf" <<EOF
[inject-error]
event = "read_aio"
iotype = "read"
errno = "5"
sector = "$FAULT_READ_LBA"

[inject-error]
event = "write_aio"
iotype = "write"
errno = "5"
sector = "$FAULT_WRITE_LBA"
EOF

qemu_ns=()
for ns in "${NAMESPACES[@]}"; do
	read -r nsid role lbs mib <<<"$ns"
	img=$WORK/ns$nsid.img
	truncate -s "${mib}M" "$img"
	file=$img
	extra=""
	case "$role" in
	FAULT) file="blkdebug:$WORK/fault.conf:$img" ;;
	SLOW) extra=",throttling.bps-total=$SLOW_BPS" ;;
	esac
	qemu_ns+=(-drive "file=$file,if=none,id=d$nsid,format=raw,cache=$cache_mode,aio=threads$extra"
		-device "nvme-ns,drive=d$nsid,bus=nvme0,nsid=$nsid,logical_block_size=$lbs,physical_block_size=$lbs")
done

# --- QEMU trace -------------------------------------------------------------------
qemu_trace=()
if [ -n "$trace_events" ]; then
	tr ',' '\n' <<<"$trace_events" | sed '/^[[:space:]]*$/d' > "$WORK/trace-events"
	: > "$WORK/qemu-trace.log"
	qemu_trace=(-trace "events=$WORK/trace-events,file=$WORK/qemu-trace.log")
	log "QEMU trace events: $(paste -sd ' ' "$WORK/trace-events")"
fi

# --- Boot -------------------------------------------------------------------------
accel=${URT_VM_ACCEL:-tcg,thread=multi}
cpu=max
[[ "$accel" == kvm* ]] && cpu=host
qemu_icount=()
if [ -n "$icount" ]; then
	# Instruction counting needs single-threaded TCG (QEMU refuses it with MTTCG).
	[[ "$accel" == tcg* ]] || die "--icount needs TCG, not $accel"
	accel=tcg,thread=single
	qemu_icount=(-icount "shift=$icount,sleep=on")
fi
# One boot of the guest; sets rc to QEMU's exit status.
nbin=$#
boot_once() {
	log "booting: $smp vCPUs, ${mem_mb} MiB, accel $accel${icount:+ icount shift=$icount}, timeout ${timeout_s}s, $nbin binaries"
	# Only --shell gives the guest our stdin; otherwise QEMU must not touch it.
	stdin=/dev/null
	[ "$shell" = 0 ] || stdin=/dev/stdin
	# QEMU runs in the background so that a signal to this script (Ctrl-C, or
	# ctest's timeout) stops it at once; timeout forwards the signal to QEMU.
	# tail streams the console and exits once QEMU has gone.
	timeout --foreground -k 10 "$timeout_s" "$QEMU" \
		-accel "$accel" -cpu "$cpu" -machine q35 -m "$mem_mb" -smp "$smp" \
		-nographic -no-reboot -nodefaults -serial stdio -monitor none \
		-kernel "$KDIR/vmlinuz" -initrd "$WORK/initramfs.cpio" \
		-append "console=ttyS0 panic=-1 loglevel=4 quiet" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-device nvme,id=nvme0,serial=urtvm0001 \
		"${qemu_ns[@]}" "${qemu_trace[@]}" ${qemu_icount[@]+"${qemu_icount[@]}"} < "$stdin" > "$WORK/console.log" 2>&1 &
	qemu_pid=$!
	tail -n +1 -s 0.2 -f --pid="$qemu_pid" "$WORK/console.log" &
	tail_pid=$!
	stop_qemu() {
		kill -TERM "$qemu_pid" 2>/dev/null
		wait "$qemu_pid" 2>/dev/null
		kill "$tail_pid" 2>/dev/null
		log "interrupted; QEMU stopped"
		exit 130
	}
	trap stop_qemu INT TERM HUP
	set +e
	wait "$qemu_pid"
	rc=$?
	wait "$tail_pid"
	set -e
	trap - INT TERM HUP
}
t_boot=$(date +%s.%N)
# MTTCG can expose a breakpoint the guest kernel's live code patching left
# behind (text_poke's int3, when a static key or tracepoint flips): the
# kernel then dies with "Oops: int3" in kernel code, at boot or when a test
# enables a tracepoint (docs/nvme-vm.md, "A rare guest panic").  That is the
# emulator, not a verdict on urt (user space cannot raise a kernel-mode
# int3), so the whole suite runs once more on a fresh boot.  So does a
# panic before /init printed anything (no test started).  Any other panic
# or failure is the run's verdict, never retried, as is a second one.
for attempt in 1 2; do
	[ -z "$trace_events" ] || : > "$WORK/qemu-trace.log"
	boot_once
	again=
	if [ "$attempt" = 1 ] && [ "$rc" = 0 ]; then
		if ! grep -q 'URT-VM: ' "$WORK/console.log" && grep -q 'Kernel panic' "$WORK/console.log"; then
			again="the guest kernel panicked during boot, before /init printed its first line (no test started); booting again"
		elif grep -q 'Oops: int3' "$WORK/console.log"; then
			again="the guest kernel hit a live-patching breakpoint (Oops: int3, an emulator fault; see console-boot1.log); running the suite again on a fresh boot"
		fi
	fi
	[ -n "$again" ] || break
	cp "$WORK/console.log" "$WORK/console-boot1.log"
	log "$again (attempt 2 of 2)"
done
t_end=$(date +%s.%N)

# --- Verdict -----------------------------------------------------------------------
# Protocol lines may follow terminal escapes on the same console line.
tr -d '\r' < "$WORK/console.log" | sed 's/^.*\(URT-VM: \)/\1/' > "$WORK/console.txt"
echo
echo "==== run-vm summary ===="
echo "guest kernel: $(sed -n 's/^URT-VM: kernel \([^ ]*\).*/\1/p' "$WORK/console.txt" | head -n 1) (package $kpkg)"
grep -E '^URT-VM: (PASS|FAIL|SKIP|SETUP-FAILED) ' "$WORK/console.txt" | sed 's/^URT-VM: /  /' || true
# A binary the guest never reported on (left out of /etc/urt/tests, or
# /init lost it) has tested nothing: the run cannot pass or skip with it.
not_run=0
for b in "$@"; do
	name=$(basename "$b")
	if ! grep -E "^URT-VM: (PASS|FAIL|SKIP) " "$WORK/console.txt" | awk -v n="$name" '$3 == n { f = 1 } END { exit !f }'; then
		echo "  NOT RUN $name"
		not_run=$((not_run + 1))
	fi
done
awk -v s="$t_start" -v k="$t_kernel" -v b="$t_boot" -v e="$t_end" 'BEGIN {
	printf "wall time: %.1f s (kernel %.1f s, staging %.1f s, qemu %.1f s)\n", e - s, k - s, b - k, e - b }'
if [ -n "$trace_events" ]; then
	echo "QEMU trace: $(wc -l < "$WORK/qemu-trace.log") lines"
	if [ -n "$trace_out" ]; then
		cp "$WORK/qemu-trace.log" "$trace_out"
		echo "QEMU trace copied to $trace_out"
	fi
fi
if [ "$not_run" -gt 0 ] && { [ "$rc" = 33 ] || [ "$rc" = 35 ]; }; then
	echo "result: FAIL ($not_run of the $# test binaries did not run in the guest)"
	exit 1
fi
if [ "$rc" = 33 ] && [ -n "$check_cmd" ]; then
	echo "==== host check: $check_cmd"
	set +e
	URT_VM_TRACE=${trace_events:+$WORK/qemu-trace.log} URT_VM_CONSOLE=$WORK/console.txt \
		bash -c "$check_cmd"
	crc=$?
	set -e
	case "$crc" in
	0) ;;
	77) echo "result: SKIP (the host check skipped)"; exit 77 ;;
	*) echo "result: FAIL (the host check failed with status $crc)"; exit 1 ;;
	esac
fi
case "$rc" in
33) echo "result: PASS"; exit 0 ;;
35) echo "result: SKIP (every binary skipped)"; exit 77 ;;
3) echo "result: FAIL (a test binary failed)"; exit 1 ;;
5) echo "result: FAIL (guest setup failed)"; exit 1 ;;
124|137) echo "result: FAIL (timed out after ${timeout_s}s; raise --timeout or look for a hang)"; exit 1 ;;
0) echo "result: FAIL (the guest stopped without a verdict: kernel panic or crashed /init)"; exit 1 ;;
*) echo "result: FAIL (qemu exit status $rc)"; exit 1 ;;
esac
