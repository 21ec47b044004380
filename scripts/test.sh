#!/usr/bin/env bash
# Runs every check and test Gatehouse has, on a fresh Debian 12 machine or a developer's.
# Installs what the tests need first: squidGuard (the oracle of the differential test).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v squidGuard >/dev/null 2>&1; then
  echo "Installing squidguard (for tests/squidguard_differential.rs)..."
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq squidguard >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
