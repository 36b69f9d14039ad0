#!/usr/bin/env bash
# Installs what contprof needs to build and test, from Debian's packages (and
# playwright-core from npm, inside the browser test). Idempotent: installs only
# what is missing, so a machine that has everything does no network access.
set -euo pipefail

PKGS=(build-essential cmake pkg-config zlib1g-dev libcurl4-openssl-dev
      libunwind-dev libsqlite3-dev libmicrohttpd-dev libcmocka-dev
      golang-go protobuf-compiler golang-github-google-pprof-dev
      chromium nodejs npm clang hyperfine curl openssl faketime python3 python3-venv python3-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm may come with nodejs from another source; don't insist on Debian's.
if command -v npm >/dev/null 2>&1; then
  tmp=(); for p in "${missing[@]}"; do [ "$p" = npm ] || tmp+=("$p"); done; missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "ci/deps.sh: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
