#!/bin/sh
# Install what is missing (Debian 12, run as root), then configure and build
# parasim in ./build. Safe to run again: it only installs and configures once.
set -eu
cd "$(dirname "$0")/.."

PKGS="gcc libc6-dev meson ninja-build pkg-config libyaml-dev libcmocka-dev gnuplot-nox
      clang libclang-rt-dev
      libopenmpi-dev openmpi-bin libopenblas-dev fortunes python3"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# The CUDA toolkit (nvcc, cuBLAS, NCCL) is used when /usr/local/cuda has it.
if [ -x /usr/local/cuda/bin/nvcc ]; then PATH=/usr/local/cuda/bin:$PATH; export PATH; fi

if [ ! -f build/build.ninja ]; then
    meson setup build --buildtype=release -Dwerror=true
fi
ninja -C build
