#!/usr/bin/env bash
# Runs every gate and every test of danm-rs on a fresh machine that has only the Rust toolchain.
# Installs, idempotently, whatever system packages the tests need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages (iproute2, containernetworking-plugins for the real-plugin tests)"
if ! command -v ip >/dev/null 2>&1; then
  apt-get update && apt-get install -y --no-install-recommends iproute2
fi
dpkg -s containernetworking-plugins >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends containernetworking-plugins)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test"
cargo test --workspace --all-targets --all-features
cargo test --workspace --doc --all-features

step "examples"
for example in ipam_embedding meta_plugin; do
  cargo run -q -p danm-examples --example "$example" > /dev/null
  echo "example $example: ok"
done

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps
