#!/usr/bin/env bash
# Install every Debian 12 package urt needs to build, test and benchmark.
# Runs as root, or through sudo when it is available.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential cmake pkg-config git ca-certificates \
	liburing-dev libnvme-dev libjson-c-dev libssl-dev libjemalloc-dev libcriterion-dev libisal-dev \
	libhiredis-dev \
	clang llvm libclang-rt-14-dev valgrind \
	fio gnuplot-nox python3 \
	qemu-system-x86 busybox-static cpio xz-utils kmod \
	gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static \
	redis-tools redis-server python3-redis prometheus-redis-exporter curl \
	librocksdb-dev liblmdb-dev libwiredtiger-dev libinih-dev libseccomp-dev \
	doxygen \
	> /dev/null
