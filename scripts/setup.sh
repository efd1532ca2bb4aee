#!/usr/bin/env bash
# Prepares a fresh Debian machine with Node 20 for qbnn: pnpm, the Debian packages the
# optional features use (when run as root with apt), and the workspace dependencies
# (which also builds the native addon from source).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1; then
  # corepack's signature check fails on these machines; npm works.
  npm install -g pnpm@10
fi

# Debian packages: real data and tools that npm does not carry.
apt_pkgs=(dataset-fashion-mnist chromium)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -z "${QBNN_SKIP_APT:-}" ]; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

pnpm install --frozen-lockfile
