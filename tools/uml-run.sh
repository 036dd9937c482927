#!/usr/bin/env bash
# Runs BINARY ARGS... inside the user-mode-linux VM that tools/vm-setup.sh prepared, as root in a VM
# of its own, streams its output back and exits with its exit status. UML always exits with 0, so the
# status comes from a marker the VM's init prints. With DANM_VM_BACKEND=qemu it boots the fallback
# instead (qemu with software emulation; prepared by `tools/vm-setup.sh qemu`). The binary sees DANM_VM=1 (and the host's CI and
# RUST_BACKTRACE). Usable as a cargo target runner.
# Exit 125: the VM is not prepared, did not start, or did not report (its console is then shown).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY [ARGS...]" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
VM=${DANM_VM_DIR:-$root/target/vm}
UML=$VM/uml/usr/bin/linux.uml
QEMU=$VM/qemu/usr/bin/qemu-system-x86_64
backend=${DANM_VM_BACKEND:-uml}
case $backend in
    uml) ready() { [ -x "$UML" ] && [ -f "$VM/initrd.cpio" ]; } ;;
    qemu) ready() { [ -x "$QEMU" ] && [ -f "$VM/initrd-qemu.cpio" ] && [ -f "$VM/vmlinux" ]; } ;;
    *) echo "uml-run: DANM_VM_BACKEND is uml or qemu, not $backend" >&2; exit 2 ;;
esac
if ! ready; then
    echo "uml-run: the $backend VM is not prepared; run tools/vm-setup.sh$([ "$backend" = qemu ] && echo " qemu")" >&2
    exit 125
fi
bin=$1
shift
share=$(mktemp -d "$VM/run.XXXXXX")
# UML keeps the guest's memory in a file under TMPDIR: tmpfs keeps it off the disk.
memdir=$(mktemp -d /dev/shm/danm-uml.XXXXXX 2>/dev/null || echo "$share")
trap 'rm -rf "$share" "$memdir"' EXIT
cp "$bin" "$share/bin"
# Extra files the binary needs in the VM (DANM_VM_EXTRA, space-separated), next to it under /mnt.
for extra in ${DANM_VM_EXTRA:-}; do
    cp "$extra" "$share/$(basename "$extra")"
done
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
    echo "export DANM_VM=1 CI=$(quote "${CI:-}") RUST_BACKTRACE=$(quote "${RUST_BACKTRACE:-}")"
    printf 'cd /mnt && exec ./bin'
    for arg in "$@"; do printf ' %s' "$(quote "$arg")"; done
    echo
} > "$share/run"

boot() {
    if [ "$backend" = qemu ]; then
        timeout "${DANM_VM_TIMEOUT:-600}" "$QEMU" -L "$VM/qemu/usr/share/qemu" -M pc \
            -bios "$VM/qemu/usr/share/qemu/qboot.rom" -accel tcg -m 1024 -nographic -vga none -no-reboot -nic none \
            -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
            -virtfs "local,path=$share,mount_tag=host0,security_model=none,id=host0" \
            -kernel "$VM/vmlinux" -initrd "$VM/initrd-qemu.cpio" -append 'console=ttyS0 panic=-1 quiet' </dev/null
    else
        TMPDIR=$memdir timeout "${DANM_VM_TIMEOUT:-300}" "$UML" mem=512M initrd="$VM/initrd.cpio" \
            vmshare="$share" con0=null,fd:1 con=null ssl=null quiet </dev/null
    fi
}

rc=""
inside=0
console=$share/console.log
while IFS= read -r line; do
    line=${line%$'\r'}
    case $line in
        *===VMTEST-BEGIN===*) inside=1 ;;
        *"===VMTEST-END rc="*)
            rc=${line##*rc=}
            rc=${rc%%=*}
            inside=0
            ;;
        *) if [ "$inside" = 1 ]; then printf '%s\n' "$line"; else printf '%s\n' "$line" >> "$console"; fi ;;
    esac
done < <(boot 2>&1)

if [ -z "$rc" ]; then
    echo "uml-run: the VM did not report an exit status; its console said:" >&2
    cat "$console" >&2 2>/dev/null || true
    exit 125
fi
# Module load failures and the like, shown when something failed.
if [ "$rc" != 0 ] && [ -s "$console" ]; then
    echo "uml-run: VM console outside the test:" >&2
    cat "$console" >&2
fi
exit "$rc"
