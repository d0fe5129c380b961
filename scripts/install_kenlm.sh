#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary from the kenlm sdist and install them into a venv's bin/.
# Usage: scripts/install_kenlm.sh VENV_DIR   (system packages via apt-get when run as root)
set -euo pipefail
VENV="$(cd "${1:?usage: install_kenlm.sh VENV_DIR}" && pwd)"
VERSION="${KENLM_VERSION:-0.3.0}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake g++ make zlib1g-dev \
        libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev >/dev/null
fi
# the sdist only (its build dependencies are not needed to download it)
"$VENV/bin/pip" download -q --no-deps --no-build-isolation --no-binary kenlm "kenlm==$VERSION" -d "$WORK"
tar -xzf "$WORK/kenlm-$VERSION.tar.gz" -C "$WORK"
cmake -S "$WORK/kenlm-$VERSION" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$WORK/build" --target lmplz build_binary -j 2 >/dev/null
install -m 755 "$WORK/build/bin/lmplz" "$WORK/build/bin/build_binary" "$VENV/bin/"
echo "installed lmplz and build_binary (kenlm $VERSION) into $VENV/bin"
