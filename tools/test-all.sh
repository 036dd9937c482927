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
for example in ipam_embedding meta_plugin service_discovery; do
  cargo run -q -p danm-examples --example "$example" > /dev/null
  echo "example $example: ok"
done

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

step "VM tests (user-mode-linux: ipvlan and 802.1Q; danm-netlink's kernel suite again on Debian's 6.1 kernel; danm end to end; the ipvlan/802.1Q suite again under qemu)"
# The path of integration test binary $2 of package $1, built for the host (gnu) target.
test_binary() {
    cargo test --no-run --all-features -p "$1" --test "$2" --message-format=json |
        grep '"reason":"compiler-artifact"' | grep '"kind":\["test"\]' | grep "\"name\":\"$2\"" |
        sed -n 's/.*"executable":"\([^"]*\)".*/\1/p'
}
# Runs a test binary in the VM; when the VM cannot start, skips locally and fails under CI.
in_vm() {
    local bin rc=0
    bin=$(test_binary "$1" "$2")
    [ -n "$bin" ] || { echo "FAILED: no test binary $1/$2" >&2; return 1; }
    shift 2
    tools/uml-run.sh "$bin" "$@" || rc=$?
    if [ "$rc" = 125 ] && [ "${CI:-}" != true ]; then
        echo "SKIPPED: VM tests: the VM did not start or report (see above)"
        return 0
    fi
    return "$rc"
}
if tools/vm-setup.sh; then
    in_vm danm-netlink vm --include-ignored --test-threads=2
    in_vm danm-netlink kernel --test-threads=2
    cargo build -q --all-features -p danm-cli --bin danm
    DANM_VM_EXTRA=target/debug/danm in_vm danm-cli vm_e2e --include-ignored --test-threads=1
    # The fallback VM (qemu with software emulation, Debian's kernel) runs the ipvlan/802.1Q suite too.
    if tools/vm-setup.sh qemu; then
        DANM_VM_BACKEND=qemu in_vm danm-netlink vm --include-ignored --test-threads=2
    elif [ "${CI:-}" = true ]; then
        echo "FAILED: tools/vm-setup.sh qemu failed, and under CI the VM tests may not be skipped" >&2
        exit 1
    else
        echo "SKIPPED: qemu VM tests: tools/vm-setup.sh qemu failed"
    fi
elif [ "${CI:-}" = true ]; then
    echo "FAILED: tools/vm-setup.sh failed, and under CI the VM tests may not be skipped" >&2
    exit 1
else
    echo "SKIPPED: VM tests: tools/vm-setup.sh failed (no apt-get or no network?)"
fi
