#!/usr/bin/env bash
# Prepares the user-mode-linux VM in which danm-netlink's VM tests run (ipvlan and 802.1Q, which the
# host kernel may lack): downloads Debian's user-mode-linux and busybox-static with apt-get download,
# unpacks them with dpkg -x (nothing gets installed), and builds an initramfs of busybox, iproute2 and
# the C libraries copied from the host (so gnu-target test binaries run), and the kernel modules.
# Idempotent: everything is cached under target/vm/ (or $DANM_VM_DIR); a second run takes well under a second.
# Then run a test binary with tools/uml-run.sh.
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

# The initramfs is rebuilt when this script changes or the cached one is missing.
stamp=$(sha256sum "$0" | cut -c1-16)
if [ -f "$VM/initrd.cpio" ] && [ "$(cat "$VM/initrd.stamp" 2>/dev/null)" = "$stamp" ]; then
    exit 0
fi
echo "vm-setup: building the initramfs"
root=$VM/initramfs
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

moddir=$(ls -d "$VM"/uml/usr/lib/uml/modules/*/ | head -1)
: > "$root/lib/modules/order"
for m in $MODULES; do
    ko=$(find "$moddir" -name "$m.ko" | head -1)
    if [ -z "$ko" ]; then echo "vm-setup: module $m not found (built in?)"; continue; fi
    cp "$ko" "$root/lib/modules/$m.ko"
    echo "$m" >> "$root/lib/modules/order"
done

cat > "$root/init" <<'INIT'
#!/bin/busybox sh
export PATH=/usr/sbin:/usr/bin:/bin:/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t tmpfs tmp /tmp
for m in $(cat /lib/modules/order); do insmod /lib/modules/$m.ko || echo "vm: insmod $m failed"; done
share=$(sed -n 's/.*vmshare=\([^ ]*\).*/\1/p' /proc/cmdline)
mount -t hostfs none /mnt -o "$share"
echo "===VMTEST-BEGIN==="
cd /tmp
/bin/sh /mnt/run
rc=$?
echo "===VMTEST-END rc=$rc==="
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null) > "$VM/initrd.cpio.tmp"
mv "$VM/initrd.cpio.tmp" "$VM/initrd.cpio"
echo "$stamp" > "$VM/initrd.stamp"
echo "vm-setup: ready in $VM ($(du -sh "$VM/initrd.cpio" | cut -f1) initramfs)"
