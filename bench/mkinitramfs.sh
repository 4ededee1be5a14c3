#!/usr/bin/env bash
# bench/mkinitramfs.sh - build the bench guest's base initramfs (busybox + kernel modules + /init).
#
# Usage: mkinitramfs.sh -k KROOT -v KVER -b BUSYBOX [-x EXTRA_KO_DIR] [-m "MODULES"] -o OUT.cpio.gz
#   KROOT         unpacked linux-image package (has lib/modules/KVER or usr/lib/modules/KVER)
#   KVER          kernel release, e.g. 6.1.0-57-amd64
#   BUSYBOX       a static busybox binary
#   EXTRA_KO_DIR  out-of-tree .ko files to add (i2c-virtio.ko, gpio-virtio.ko), installed as extra/
#   MODULES       modules to pack and load at boot (default: the list below)
#   OUT           gzip'd newc cpio, zero-padded to 512 bytes so bench/run-guest.sh can append a second
#                 (uncompressed) cpio with the test command: the kernel unpacks concatenated archives in
#                 order, skips zero padding between them, and rejects a misaligned one ("invalid magic").
# Normally run by bench/setup.sh.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Modules built into a kernel are skipped; dependencies (virtio, virtio_ring, i2c-core, ...) come along.
MODULES="virtio_pci virtio_mmio virtio_rng vmw_vsock_virtio_transport vsock_loopback i2c_dev qemu_fw_cfg
virtio_console virtio_blk virtio_net virtio_input i2c_virtio gpio_virtio"
KROOT='' KVER='' BUSYBOX='' EXTRA='' OUT=''
while getopts k:v:b:x:m:o: opt; do
  case $opt in
    k) KROOT=$OPTARG ;; v) KVER=$OPTARG ;; b) BUSYBOX=$OPTARG ;; x) EXTRA=$OPTARG ;;
    m) MODULES=$OPTARG ;; o) OUT=$OPTARG ;;
    *) echo "usage: $0 -k KROOT -v KVER -b BUSYBOX [-x EXTRA_KO_DIR] [-m MODULES] -o OUT" >&2; exit 2 ;;
  esac
done
die() { echo "mkinitramfs: ERROR: $*" >&2; exit 1; }
[[ -n $KROOT && -n $KVER && -n $BUSYBOX && -n $OUT ]] || die "missing arguments (need -k -v -b -o)"
MODSRC=$KROOT/lib/modules/$KVER
[[ -d $MODSRC ]] || MODSRC=$KROOT/usr/lib/modules/$KVER
[[ -d $MODSRC ]] || die "no modules for $KVER under $KROOT"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,bench}
MODDST=$STAGE/lib/modules/$KVER

# The kernel opens /dev/console for /init before anything is mounted; without the node /init starts with
# no stdout (guest-init.sh also re-opens it after mounting devtmpfs, for builds that could not mknod).
mknod -m 600 "$STAGE/dev/console" c 5 1 2>/dev/null || true
# busybox and its applet links
cp "$BUSYBOX" "$STAGE/bin/busybox"
for app in $("$BUSYBOX" --list-full); do
  [[ -e $STAGE/$app ]] || ln -s /bin/busybox "$STAGE/$app"
done

# Copy one module file, decompressed (the guest's modprobe is busybox's, which may not read .ko.xz),
# keeping its path relative to the modules directory.
copy_ko() {
  local src=$1 rel=${1#"$MODSRC"/}
  local dst=$MODDST/${rel%.xz}
  [[ -f $dst ]] && return 0
  mkdir -p "$(dirname "$dst")"
  case $src in
    *.xz) xz -dc "$src" >"$dst" ;;
    *) cp "$src" "$dst" ;;
  esac
}
# Resolve a module and its dependencies in the unpacked kernel; "builtin" lines need nothing.
add_module() {
  local line
  while read -r line; do
    case $line in
      insmod\ *) set -- $line; copy_ko "$2" ;;
      builtin\ *) ;;
    esac
  done < <(modprobe -d "$KROOT" -S "$KVER" --show-depends "$1" 2>/dev/null || true)
}

wanted=()
for m in $MODULES; do
  if [[ -n $EXTRA && -f $EXTRA/${m//_/-}.ko ]]; then
    # out-of-tree module: copy it, then resolve the in-tree modules it depends on
    mkdir -p "$MODDST/extra"
    cp "$EXTRA/${m//_/-}.ko" "$MODDST/extra/"
    for dep in $(modinfo -F depends "$EXTRA/${m//_/-}.ko" | tr , ' '); do add_module "$dep"; done
  elif modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" >/dev/null 2>&1; then
    add_module "$m"
  else
    die "module $m not found in $KVER (nor in ${EXTRA:-no extra dir})"
  fi
  # built-in modules are not loaded at boot (modprobe of a builtin is a no-op anyway)
  modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null | grep -q "^builtin $m\$" || wanted+=("$m")
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
  [[ -f $MODSRC/$f ]] && cp "$MODSRC/$f" "$MODDST/"
done
depmod -b "$STAGE" "$KVER"

install -m 0755 "$BENCH_DIR/guest-init.sh" "$STAGE/init"
echo "${wanted[*]}" >"$STAGE/etc/bench-modules"

mkdir -p "$(dirname "$OUT")"
(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$OUT.tmp"
truncate -s %512 "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "mkinitramfs: $OUT ($(stat -c %s "$OUT") bytes; modules: ${wanted[*]})"
