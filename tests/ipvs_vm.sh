#!/usr/bin/env bash
# Runs a command as root inside a small qemu VM whose kernel has IPVS (ip_vs).
#
#   tests/ipvs_vm.sh -- COMMAND [ARGS...]
#
# The VM boots Debian's kernel (linux-image-amd64; ip_vs is a module there) under qemu
# TCG (KVM is not needed), with a busybox initramfs. Inside, the host's root is mounted
# read-only over 9p, /tmp /run /var/tmp are tmpfs, and the current git work tree (the
# directory holding this script's parent) is mounted read-write at the same path.
# COMMAND runs with cwd = the current directory; its stdout and stderr come back and
# this script exits with its exit code.
#
# Inside the VM: HOME=/tmp/home; every ip_vs scheduler module is loaded; DENO is the
# host's deno binary (from $IPVS_VM_DENO or `command -v deno`), and DENO_DIR is a
# tmpfs copy of the host's npm cache (from $IPVS_VM_DENO_DIR) so `deno run` works offline.
#
# Environment: IPVS_VM_TIMEOUT (s, default 600) bounds the run (exit 124 past it);
# IPVS_VM_MEM (MiB, default 1024). Installs what it needs with apt-get when missing.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: tests/ipvs_vm.sh -- COMMAND [ARGS...]" >&2; exit 2; }
case "$PWD/" in "$here"/*) ;; *) echo "ipvs_vm.sh: run it from inside $here" >&2; exit 2;; esac

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v ipvsadm >/dev/null || need+=(ipvsadm)
command -v modprobe >/dev/null || need+=(kmod)
command -v cpio >/dev/null || need+=(cpio)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need+=(linux-image-amd64)
if [ ${#need[@]} -gt 0 ]; then
  echo "ipvs_vm.sh: installing ${need[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

kver=$(ls /boot | sed -n 's/^vmlinuz-\(.*-amd64\)$/\1/p' | sort -V | tail -1)
[ -n "$kver" ] && [ -d "/lib/modules/$kver/kernel/net/netfilter/ipvs" ] ||
  { echo "ipvs_vm.sh: no Debian amd64 kernel with ip_vs modules under /boot; install linux-image-amd64" >&2; exit 2; }

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fulcrum-ipvs-vm/$kver
initrd=$cache/initrd-v3.cpio.gz
if [ ! -s "$initrd" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  mkdir -p "$tmp"/{bin,sbin,proc,sys,dev,newroot,mods}
  cp /bin/busybox "$tmp/bin/busybox"
  : > "$tmp/mods/order"
  for m in netfs fscache 9pnet 9p virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet_virtio; do
    for f in $(modprobe -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}'); do
      b=$(basename "$f")
      [ -f "$tmp/mods/$b" ] && continue
      cp "$f" "$tmp/mods/$b"
      echo "$b" >> "$tmp/mods/order"
    done
  done
  cat > "$tmp/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m 2>/dev/null; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /newroot ||
  { echo "ipvs_vm: mounting the host root failed"; poweroff -f; }
rw=$(sed -n 's/.*fulcrumvm.rw=\([^ ]*\).*/\1/p' /proc/cmdline)
run=$(sed -n 's/.*fulcrumvm.run=\([^ ]*\).*/\1/p' /proc/cmdline)
for d in proc sys dev; do mount --move /$d /newroot/$d 2>/dev/null || mount -t $d $d /newroot/$d; done
for d in tmp run var/tmp; do mount -t tmpfs tmpfs /newroot/$d; done
# A work tree under /tmp (CI clones there) sits on the fresh tmpfs: make its mount point.
mkdir -p "/newroot$rw" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 work "/newroot$rw"
chroot /newroot /bin/sh "$run"
poweroff -f
INIT
  # The kernel's module autoloader runs in the initramfs root: hand it to the real modprobe.
  printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' > "$tmp/sbin/modprobe"
  chmod +x "$tmp/init" "$tmp/sbin/modprobe"
  (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$initrd.part"
  mv "$initrd.part" "$initrd"
  rm -rf "$tmp"
fi

deno_bin=${IPVS_VM_DENO:-$(command -v deno || true)}
deno_dir=${IPVS_VM_DENO_DIR:-${DENO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deno}}
# One state directory per run, so runs (a test and a benchmark) can overlap.
mkdir -p "$here/.ipvs-vm"
state=$(mktemp -d "$here/.ipvs-vm/run.XXXXXX")
printf '%q ' "$@" > "$state/cmd"
cat > "$state/run.sh" <<RUN
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp/home LANG=C.UTF-8
mkdir -p /tmp/home /tmp/deno
ip link set lo up
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs_twos; do modprobe \$m 2>/dev/null; done
if [ -d $(printf '%q' "$deno_dir")/npm ]; then cp -r $(printf '%q' "$deno_dir")/npm /tmp/deno/npm; fi
export DENO_DIR=/tmp/deno DENO=$(printf '%q' "$deno_bin") DENO_NO_UPDATE_CHECK=1 FULCRUM_IN_VM=1
cd $(printf '%q' "$PWD")
sh -c "\$(cat $state/cmd)" > $state/stdout 2> $state/stderr < /dev/null
echo \$? > $state/rc
sync
RUN

qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$state"
}
trap cleanup EXIT INT TERM
qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m "${IPVS_VM_MEM:-1024}" -nographic -no-reboot \
  -kernel "/boot/vmlinuz-$kver" -initrd "$initrd" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 fulcrumvm.rw=$here fulcrumvm.run=$state/run.sh" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$here,mount_tag=work,security_model=none,multidevs=remap" \
  -nic none > "$state/console" 2>&1 < /dev/null &
qemu_pid=$!
deadline=$((SECONDS + ${IPVS_VM_TIMEOUT:-600}))
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ $SECONDS -ge $deadline ]; then
    echo "ipvs_vm.sh: timed out after ${IPVS_VM_TIMEOUT:-600} s; last console lines:" >&2
    tail -5 "$state/console" >&2
    exit 124
  fi
  sleep 0.2
done
qemu_pid=
cat "$state/stdout" 2>/dev/null || true
cat "$state/stderr" >&2 2>/dev/null || true
[ -s "$state/rc" ] || { echo "ipvs_vm.sh: the VM did not run the command; console:" >&2; tail -20 "$state/console" >&2; exit 2; }
exit "$(cat "$state/rc")"
