#!/usr/bin/env bash
# Prepares the VM in which danm-netlink's VM tests run (ipvlan and 802.1Q, which the host kernel may
# lack): downloads Debian's user-mode-linux and busybox-static with apt-get download, unpacks them with
# dpkg -x (nothing gets installed), and builds an initramfs of busybox, iproute2 and the C libraries
# copied from the host (so gnu-target test binaries run), and the kernel modules.
# `tools/vm-setup.sh qemu` prepares the fallback as well: qemu (TCG, software emulation) booting Debian's
# kernel, with its own initramfs. qemu-system-x86 is unpacked, never installed (installing it would
# remove qemu-utils); only the shared libraries it needs are installed with apt-get.
# Idempotent: everything is cached under target/vm/ (or $DANM_VM_DIR); a second run takes well under a second.
# Then run a test binary with tools/uml-run.sh (DANM_VM_BACKEND=qemu for the fallback).
set -euo pipefail
cd "$(dirname "$0")/.."
VM=${DANM_VM_DIR:-$PWD/target/vm}
mkdir -p "$VM/debs"
# Load order matters: the Debian modules ship without modules.dep. UML builds IPv6 as a module.
MODULES="crc-ccitt ipv6 llc stp garp mrp 8021q ipvlan dummy veth macvlan udp_tunnel ip6_udp_tunnel vxlan bridge"

fetch() { # fetch PACKAGE: its .deb into $VM/debs, once
    local pkg=$1
    ls "$VM/debs/${pkg}_"*.deb >/dev/null 2>&1 && return 0
    echo "vm-setup: downloading $pkg"
    (cd "$VM/debs" && apt-get download -q "$pkg") || {
        apt-get update -q >/dev/null
        (cd "$VM/debs" && apt-get download -q "$pkg")
    }
}

unpack() { # unpack PACKAGE DIR
    [ -d "$VM/$2" ] && return 0
    rm -rf "$VM/$2.tmp"
    dpkg -x "$VM/debs/${1}_"*.deb "$VM/$2.tmp"
    mv "$VM/$2.tmp" "$VM/$2"
}

fetch user-mode-linux
fetch busybox-static
unpack user-mode-linux uml
unpack busybox-static busybox
UML=$VM/uml/usr/bin/linux.uml
BUSYBOX=$VM/busybox/bin/busybox
IP=$(command -v ip || echo /usr/sbin/ip)
[ -x "$UML" ] && [ -x "$BUSYBOX" ] && [ -x "$IP" ] || { echo "vm-setup: linux.uml, busybox or ip is missing" >&2; exit 1; }

# build_initrd NAME MODDIR MODULES SHARE_MOUNT [EXIT_CMD]: $VM/NAME.cpio, rebuilt when this script changes.
build_initrd() {
    local name=$1 moddir=$2 modules=$3 mount_cmd=$4 exit_cmd=${5:-}
    local stamp root
    stamp=$(sha256sum "$0" | cut -c1-16)
    if [ -f "$VM/$name.cpio" ] && [ "$(cat "$VM/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
        return 0
    fi
    echo "vm-setup: building the $name initramfs"
    root=$VM/$name.root
    rm -rf "$root"
    mkdir -p "$root"/{bin,sbin,usr/sbin,usr/bin,proc,sys,dev,tmp,mnt,run,var,etc,lib/modules}
    ln -s ../run "$root/var/run"
    cp "$BUSYBOX" "$root/bin/busybox"
    cp "$IP" "$root/usr/sbin/ip"

    # iproute2's libraries, and what a gnu-target Rust binary needs besides (libgcc_s, libm).
    copy_lib() { mkdir -p "$root$(dirname "$1")" && cp -L "$1" "$root$1"; }
    for lib in $(ldd "$IP" | grep -o '/[^ ]*'); do copy_lib "$lib"; done
    libdir=$(dirname "$(ldd "$IP" | grep -o '/[^ ]*libc\.so\.6')")
    for lib in libgcc_s.so.1 libm.so.6; do copy_lib "$libdir/$lib"; done

    : > "$root/lib/modules/order"
    for m in $modules; do
        ko=$(find "$moddir" -name "$m.ko" | head -1)
        if [ -z "$ko" ]; then echo "vm-setup: module $m not found (built in?)"; continue; fi
        cp "$ko" "$root/lib/modules/$m.ko"
        echo "$m" >> "$root/lib/modules/order"
    done

    cat > "$root/init" <<INIT
#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/bin:/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
for m in \$(cat /lib/modules/order); do insmod /lib/modules/\$m.ko || echo "vm: insmod \$m failed"; done
$mount_cmd
echo "===VMTEST-BEGIN==="
cd /tmp
/bin/sh /mnt/run
rc=\$?
echo "===VMTEST-END rc=\$rc==="
$exit_cmd
poweroff -f
INIT
    chmod +x "$root/init"
    (cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) > "$VM/$name.cpio.tmp"
    mv "$VM/$name.cpio.tmp" "$VM/$name.cpio"
    echo "$stamp" > "$VM/$name.stamp"
    echo "vm-setup: $name ready ($(du -sh "$VM/$name.cpio" | cut -f1) initramfs)"
}

# UML: the share is the host directory named by vmshare= on the kernel command line (hostfs).
build_initrd initrd "$(ls -d "$VM"/uml/usr/lib/uml/modules/*/ | head -1)" "$MODULES" \
    'mount -t hostfs none /mnt -o "$(sed -n '"'"'s/.*vmshare=\([^ ]*\).*/\1/p'"'"' /proc/cmdline)"'

[ "${1:-}" = qemu ] || exit 0

# The qemu fallback: Debian's kernel (its vmlinuz decompressed to an ELF vmlinux, which qemu boots
# directly through PVH), the share over 9p, and the exit status through isa-debug-exit.
QEMU_LIBS="libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2"
missing=""
for lib in $QEMU_LIBS; do dpkg -s "$lib" >/dev/null 2>&1 || missing="$missing $lib"; done
if [ -n "$missing" ]; then
    echo "vm-setup: installing qemu's libraries:$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null || {
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
    }
fi
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { apt-get update -q >/dev/null; KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); }
for pkg in qemu-system-x86 qemu-system-common qemu-system-data "$KPKG"; do fetch "$pkg"; done
if [ ! -x "$VM/qemu/usr/bin/qemu-system-x86_64" ]; then
    rm -rf "$VM/qemu.tmp"
    for pkg in qemu-system-x86 qemu-system-common qemu-system-data; do dpkg -x "$VM/debs/${pkg}_"*.deb "$VM/qemu.tmp"; done
    mv "$VM/qemu.tmp" "$VM/qemu"
fi
unpack "$KPKG" kernel
if [ ! -f "$VM/vmlinux" ]; then
    python3 -c 'import glob,lzma,sys
z=open(glob.glob(sys.argv[1]+"/kernel/boot/vmlinuz-*")[0],"rb").read()
open(sys.argv[1]+"/vmlinux.tmp","wb").write(lzma.LZMADecompressor().decompress(z[z.find(b"\xfd7zXZ\x00"):]))' "$VM"
    mv "$VM/vmlinux.tmp" "$VM/vmlinux"
fi
QEMU_MODULES="llc stp garp mrp 8021q ipvlan dummy veth macvlan udp_tunnel ip6_udp_tunnel vxlan bridge \
virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p"
build_initrd initrd-qemu "$(ls -d "$VM"/kernel/lib/modules/*/ | head -1)" "$QEMU_MODULES" \
    'mount -t 9p -o trans=virtio,version=9p2000.L host0 /mnt' \
    'printf "\\$(printf %o $rc)" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null'
