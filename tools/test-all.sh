#!/usr/bin/env bash
# Runs every gate and every test of danm-rs on a fresh machine that has only the Rust toolchain.
# Installs, idempotently, whatever system packages the tests need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# One build of the dev profile serves clippy, the tests, the examples and the VM suites. It is kept small on
# disk: no incremental state (a fresh clone gains nothing from it) and no debug info in the binaries (a panic
# still names its file and line).
export CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=false CARGO_PROFILE_DEV_STRIP=debuginfo
# Every cargo call below selects the whole workspace with all features, so that features unify the same way
# each time and no dependency is built twice.
CARGO_SELECTION=(--workspace --all-targets --all-features)

step "system packages (iproute2, containernetworking-plugins for the real-plugin tests)"
if ! command -v ip >/dev/null 2>&1; then
  apt-get update && apt-get install -y --no-install-recommends iproute2
fi
dpkg -s containernetworking-plugins >/dev/null 2>&1 || (apt-get update && apt-get install -y --no-install-recommends containernetworking-plugins)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy "${CARGO_SELECTION[@]}" -- -D warnings

step "cargo test"
cargo test "${CARGO_SELECTION[@]}"
cargo test --workspace --doc --all-features

# The executables the test build made, as "KIND NAME PATH" lines (KIND: test or bin); a bin's unit tests are
# left out, so that "bin danm" is the plugin itself.
cargo test "${CARGO_SELECTION[@]}" --no-run --message-format=json |
    sed -n 's/.*"target":{"kind":\["\([a-z-]*\)"\],"crate_types":\[[^]]*\],"name":"\([^"]*\)".*"test":\([a-z]*\)},"features".*"executable":"\([^"]*\)".*/\1 \2 \3 \4/p' |
    awk '$1 == "test" || $3 == "false" { print $1, $2, $4 }' \
    > target/executables.txt
# The path of the executable of target KIND NAME from the test build.
executable() {
    local path
    path=$(awk -v kind="$1" -v name="$2" '$1 == kind && $2 == name { print $3; exit }' target/executables.txt)
    [ -n "$path" ] || { echo "FAILED: the test build made no $1 $2" >&2; return 1; }
    echo "$path"
}

step "examples"
# cargo test built the examples as test harnesses; this builds them as programs, on the same dependencies.
cargo build --workspace --all-features --examples
for example in ipam_embedding meta_plugin service_discovery; do
  "target/debug/examples/$example" > /dev/null
  echo "example $example: ok"
done

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

step "VM tests (user-mode-linux: ipvlan and 802.1Q; danm-netlink's kernel suite again on Debian's 6.1 kernel; danm end to end; the ipvlan/802.1Q suite again under qemu)"
# Runs a test binary in the VM; when the VM cannot start, skips locally and fails under CI.
in_vm() {
    local bin rc=0
    bin=$(executable test "$1") || return 1
    shift
    tools/uml-run.sh "$bin" "$@" || rc=$?
    if [ "$rc" = 125 ] && [ "${CI:-}" != true ]; then
        echo "SKIPPED: VM tests: the VM did not start or report (see above)"
        return 0
    fi
    return "$rc"
}
if tools/vm-setup.sh; then
    in_vm vm --include-ignored --test-threads=2
    in_vm kernel --test-threads=2
    DANM_VM_EXTRA=$(executable bin danm) in_vm vm_e2e --include-ignored --test-threads=1
    # The fallback VM (qemu with software emulation, Debian's kernel) runs the ipvlan/802.1Q suite too.
    if tools/vm-setup.sh qemu; then
        DANM_VM_BACKEND=qemu in_vm vm --include-ignored --test-threads=2
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
