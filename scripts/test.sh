#!/usr/bin/env bash
# Runs every check and test Gatehouse has, on a fresh Debian 12 machine or a developer's.
# Installs what the tests need first (squidGuard, curl, openssl, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

# squidGuard: the oracle of tests/squidguard_differential.rs; curl: the client of tests/proxy.rs;
# openssl: the TLS origin server of tests/proxy.rs; chromium and certutil (libnss3-tools):
# the browser test of tests/proxy.rs.
missing=()
command -v squidGuard >/dev/null 2>&1 || missing+=(squidguard)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing ${missing[*]}..."
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
