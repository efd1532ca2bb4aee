#!/usr/bin/env bash
# Prepares a fresh Debian machine with Node 20 for qbnn: pnpm, the Debian packages the
# optional features use (when run as root with apt), and the workspace dependencies
# (which also builds the native addon from source).
#
#   bash scripts/setup.sh          what the demo and the library need
#   bash scripts/setup.sh --test   also what the tests need (PyTorch for the interop tests)
#
# Under CI=true, --test fails when a test dependency cannot be installed (the interop tests
# would otherwise skip silently).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
case "$mode" in
  '' | --test) ;;
  *)
    echo "usage: bash scripts/setup.sh [--test]" >&2
    exit 2
    ;;
esac

if ! command -v pnpm >/dev/null 2>&1; then
  # corepack's signature check fails on these machines; npm works.
  npm install -g pnpm@10
fi

# Debian packages: real data and tools that npm does not carry (python3-sklearn for the diabetes
# regression data it bundles, read by @qbnn/data). clang-19 + lld-19 compile the
# WebAssembly kernels of @qbnn/wasm (Debian's default clang 14 emits pre-standard relaxed-SIMD opcodes).
apt_pkgs=(dataset-fashion-mnist python3-sklearn chromium clang-19 lld-19)
# PyTorch (Debian's 1.13, run as /usr/bin/python3) writes the models the interop tests import.
[ "$mode" = --test ] && apt_pkgs+=(python3-torch)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${QBNN_SKIP_APT:-}" ]; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
  fi
fi

if [ "$mode" = --test ] && ! /usr/bin/python3 -c 'import torch' >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "setup: /usr/bin/python3 cannot import torch (Debian python3-torch); the interop tests need it" >&2
    exit 1
  fi
  echo "setup: warning: no PyTorch for /usr/bin/python3: the interop tests will skip" >&2
fi

pnpm install --frozen-lockfile
