#!/usr/bin/env bash
# bench/setup.sh - prepare everything the real-QEMU guest bench needs, from Debian packages only.
#
# Usage: bench/setup.sh [-q]        (-q: print only errors and the final "ready" line)
#
# Environment:
#   BENCH_CACHE    cache directory (default: bench/.cache). CI should point it at a directory that
#                  survives between runs, e.g. /var/cache/vhost-user-bench.
#   BENCH_REFRESH  set to 1 to re-resolve the guest kernel version from apt (otherwise the version
#                  recorded in the cache is kept, so a warm cache never talks to apt).
#
# What it prepares (see bench/README.md and shared/docs/qemu-guest-testing.md §4, §6):
#   - host packages (apt-get install): qemu-system-x86 (QEMU 7.2), cpio, kmod, xz-utils, gcc-12, make, binutils,
#     python3
#   - QEMU 10 from bookworm-backports, downloaded with a private apt config and unpacked (not installed):
#     qemu-system-x86 for the guests, qemu-system-arm for qemu-system-aarch64's vhost-user-scmi-pci
#   - Debian's stock guest kernel (linux-image-<abi>-amd64), downloaded and unpacked (not installed)
#   - i2c-virtio.ko and gpio-virtio.ko built out of tree from linux-source against linux-headers
#   - busybox-static (unpacked) and the base initramfs (bench/mkinitramfs.sh)
#   - guest tools (bench/tools/*.c) built static with gcc-12 into $BENCH_CACHE/guest-tools; run-guest.sh copies
#     them into every guest's /bin
#   - $BENCH_CACHE/bench.env: shell variables with the paths, read by bench/run-guest.sh
#
# Exit status: 0 when ready; 1 with one "bench/setup: ERROR: ..." line when something cannot be had.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${BENCH_CACHE:-$BENCH_DIR/.cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)
QUIET=0
[[ ${1:-} == -q ]] && QUIET=1

# Bump when the cache layout or the build recipe changes, so old caches are rebuilt.
SETUP_VERSION=2
ENV_FILE=$CACHE/bench.env
LOG=$CACHE/setup.log
DEBS=$CACHE/debs
mkdir -p "$DEBS"
: >"$LOG"

say() { ((QUIET)) || echo "bench/setup: $*"; }
# One clear error line and a non-zero exit; the EXIT trap stays silent after it.
die() { DIED=1; echo "bench/setup: ERROR: $*" >&2; exit 1; }
# Run a noisy command with its output in the log; on failure name the step and the log.
# The error line quotes the command's last output line (for apt, its "E: ..." reason).
run() {
  local what=$1 out; shift
  echo "+ $*" >>"$LOG"
  out=$(mktemp)
  if ! "$@" >"$out" 2>&1; then
    cat "$out" >>"$LOG"
    local why; why=$(grep -v '^\s*$' "$out" | tail -n 1); rm -f "$out"
    die "$what failed: ${why:-no output} (full output in $LOG)"
  fi
  cat "$out" >>"$LOG"; rm -f "$out"
}
# Anything that fails without die (a bug, a surprise) still ends with one error line.
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; ((rc == 0)) || [[ -n ${DIED:-} ]] || echo "bench/setup: ERROR: unexpected failure (rc $rc; see $LOG)" >&2' EXIT

START=$(date +%s.%N)
# Two runs sharing a cache (parallel tests) must not build it at the same time.
exec 9>"$CACHE/.lock"
flock 9

# The base initramfs depends on these files' contents (not mtimes: a git checkout resets those).
initrd_key() {
  cat "$BENCH_DIR/guest-init.sh" "$BENCH_DIR/mkinitramfs.sh" "$1"/*.ko 2>/dev/null | sha256sum | cut -d' ' -f1
}
# The guest tools depend on their sources.
TOOLS=$CACHE/guest-tools
tools_key() { cat "$BENCH_DIR"/tools/*.c | sha256sum | cut -d' ' -f1; }

# ---------------------------------------------------------------- warm-cache fast path
# bench.env is written last; if it is current and everything it names exists, there is nothing to do.
if [[ -f $ENV_FILE && ${BENCH_REFRESH:-0} != 1 ]]; then
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  if [[ ${BENCH_SETUP_VERSION:-} == "$SETUP_VERSION" && -x ${QEMU72:-/nonexistent} && -x ${QEMU10:-/nonexistent} \
        && -x ${QEMU10_AARCH64:-/nonexistent} && -f ${VMLINUZ:-/nonexistent} && -f ${INITRD_BASE:-/nonexistent} \
        && -x ${BUSYBOX:-/nonexistent} \
        && "$(cat "$INITRD_BASE.key" 2>/dev/null)" == "$(initrd_key "$INITRD_EXTRA")" ]] \
     && [[ "$(cat "$TOOLS/.key" 2>/dev/null)" == "$(tools_key)" ]] \
     && command -v cpio >/dev/null; then
    say "cache is warm ($CACHE)"
    ((QUIET)) && echo "bench/setup: ready ($ENV_FILE)"
    exit 0
  fi
fi

# ---------------------------------------------------------------- apt helpers
APT_UPDATED=0
apt_update_once() {
  ((APT_UPDATED)) && return 0
  say "apt-get update"
  run "apt-get update" apt-get update
  APT_UPDATED=1
}
# apt-get download into $DEBS unless a matching .deb is there already. Arguments: pkg[=version] ...
# Extra apt options (private backports config) come from the APT_OPTS array.
APT_OPTS=()
apt_download() {
  local pkg missing=()
  for pkg in "$@"; do
    local name=${pkg%%=*} ver=
    [[ $pkg == *=* ]] && ver=${pkg#*=}
    # .deb names encode the epoch colon as %3a
    if ! compgen -G "$DEBS/${name}_${ver//:/%3a}*.deb" >/dev/null; then missing+=("$pkg"); fi
  done
  ((${#missing[@]})) || return 0
  say "downloading ${missing[*]}"
  # APT runs downloads as user _apt; the cache dir is root's, so let it download as root (no sandbox warning).
  # Not in a subshell: die must end this script, not just a subshell.
  local here=$PWD
  cd "$DEBS"
  run "apt-get download ${missing[*]}" apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root download "${missing[@]}"
  cd "$here"
}
deb_of() { # newest .deb in $DEBS for a package name (optional version prefix)
  local f
  f=$(ls -1 "$DEBS/${1}_${2:-}"*.deb 2>/dev/null | sort -V | tail -1)
  [[ -n $f ]] || die "no .deb for $1 in $DEBS"
  echo "$f"
}

[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported (this is $(uname -m))"
command -v apt-get >/dev/null || die "apt-get not found: the bench needs a Debian 12 (bookworm) host"

# ---------------------------------------------------------------- 1. host packages
# QEMU 7.2 is Debian bookworm's own qemu-system-x86; the rest builds the initramfs and the two modules.
# python3 runs bench/tools/vu-rng-stub.py (the self-test's stand-in vhost-user back-end).
# libc6-dev gives gcc -static the libc.a the guest tools link against.
HOST_PKGS=(qemu-system-x86 cpio kmod xz-utils gcc-12 libc6-dev make binutils python3)
missing=()
for p in "${HOST_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  ((EUID == 0)) || die "host packages missing (${missing[*]}) and not root: run as root or install them"
  apt_update_once
  say "installing ${missing[*]}"
  run "apt-get install ${missing[*]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
QEMU72=/usr/bin/qemu-system-x86_64
[[ -x $QEMU72 ]] || die "$QEMU72 missing after installing qemu-system-x86"
"$QEMU72" --version | grep -q 'version 7\.2' || die "$QEMU72 is not QEMU 7.2: $("$QEMU72" --version | head -1)"

# ---------------------------------------------------------------- 2. guest kernel (downloaded, unpacked)
# The kernel version is resolved once (linux-image-amd64 -> linux-image-<abi>-amd64) and then pinned in
# the cache, so later runs need no apt at all; BENCH_REFRESH=1 follows bookworm-security again.
KVER_FILE=$CACHE/kernel.version
if [[ ! -s $KVER_FILE || ${BENCH_REFRESH:-0} == 1 ]]; then
  apt_update_once
  kpkg=$(apt-cache depends linux-image-amd64 2>>"$LOG" | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
  [[ -n $kpkg ]] || die "cannot resolve linux-image-amd64 to a versioned kernel package (apt-cache depends)"
  kver=${kpkg#linux-image-}
  # Source version of that package; linux-source/headers/kbuild must be taken at exactly this version.
  kdebver=$(apt-cache show --no-all-versions "$kpkg" 2>>"$LOG" | sed -n 's/^Version: //p' | head -1)
  [[ -n $kdebver ]] || die "cannot find the version of $kpkg"
  printf 'KVER=%s\nKDEBVER=%s\n' "$kver" "$kdebver" >"$KVER_FILE"
fi
# shellcheck disable=SC1090
source "$KVER_FILE"
KABI=${KVER%-amd64}             # e.g. 6.1.0-57
KSERIES=${KVER%%.0-*}           # e.g. 6.1  (linux-source-6.1, linux-kbuild-6.1)
KROOT=$CACHE/kernel/$KVER
if [[ ! -f $KROOT/.done ]]; then
  apt_update_once
  apt_download "linux-image-$KVER=$KDEBVER"
  rm -rf "$KROOT"; mkdir -p "$KROOT"
  say "unpacking linux-image-$KVER"
  run "unpacking linux-image-$KVER" dpkg-deb -x "$(deb_of "linux-image-$KVER" "$KDEBVER")" "$KROOT"
  touch "$KROOT/.done"
  rm -f "$DEBS/linux-image-$KVER"_*.deb   # the unpacked tree is what is kept
fi
VMLINUZ=$KROOT/boot/vmlinuz-$KVER
[[ -f $VMLINUZ ]] || die "$VMLINUZ missing in the unpacked kernel package"
# bookworm packages ship /lib/modules; a usr-merged package would ship /usr/lib/modules.
MODDIR=$KROOT/lib/modules/$KVER
[[ -d $MODDIR ]] || MODDIR=$KROOT/usr/lib/modules/$KVER
[[ -d $MODDIR ]] || die "no modules directory for $KVER in the kernel package"
[[ -f $MODDIR/modules.dep ]] || run "depmod $KVER" depmod -b "$KROOT" "$KVER"

# ---------------------------------------------------------------- 3. i2c-virtio / gpio-virtio modules
# Debian kernels lack both (CONFIG_I2C_VIRTIO/GPIO_VIRTIO unset); they build out of tree in ~10 s.
# MODULE_SIG_FORCE is off, so the unsigned modules load (the kernel only marks itself tainted).
EXTRA=$CACHE/extra-modules/$KVER
if [[ ! -f $EXTRA/i2c-virtio.ko || ! -f $EXTRA/gpio-virtio.ko ]]; then
  apt_update_once
  apt_download "linux-headers-$KVER=$KDEBVER" "linux-headers-$KABI-common=$KDEBVER" \
    "linux-kbuild-$KSERIES=$KDEBVER" "linux-source-$KSERIES=$KDEBVER"
  HROOT=$CACHE/headers/$KVER
  rm -rf "$HROOT"; mkdir -p "$HROOT"
  say "unpacking linux-headers/kbuild $KVER"
  for p in "linux-headers-$KVER" "linux-headers-$KABI-common" "linux-kbuild-$KSERIES"; do
    run "unpacking $p" dpkg-deb -x "$(deb_of "$p" "$KDEBVER")" "$HROOT"
  done
  # The arch headers' Makefile (and the kbuild symlinks) point at /usr/src/... by absolute path:
  # rewrite that prefix to the unpack directory.
  HTREE=$HROOT/usr/src/linux-headers-$KVER
  [[ -f $HTREE/Makefile ]] || die "linux-headers-$KVER has no Makefile"
  sed -i "s#/usr/src/#$HROOT/usr/src/#g" "$HTREE/Makefile"
  while IFS= read -r l; do
    t=$(readlink "$l")
    if [[ $t == /usr/* ]]; then ln -sfn "$HROOT$t" "$l"; fi
  done < <(find "$HROOT/usr/src" -maxdepth 2 -type l)
  # Take only the two driver sources out of the 140 MB source tarball.
  SRC=$CACHE/extra-modules/src-$KDEBVER
  if [[ ! -f $SRC/i2c-virtio.c || ! -f $SRC/gpio-virtio.c ]]; then
    say "extracting i2c-virtio.c and gpio-virtio.c from linux-source-$KSERIES"
    mkdir -p "$SRC"
    dpkg-deb --fsys-tarfile "$(deb_of "linux-source-$KSERIES" "$KDEBVER")" \
      | tar -xO "./usr/src/linux-source-$KSERIES.tar.xz" \
      | tar -xJ -C "$SRC" \
          "linux-source-$KSERIES/drivers/i2c/busses/i2c-virtio.c" \
          "linux-source-$KSERIES/drivers/gpio/gpio-virtio.c" 2>>"$LOG" \
      || die "cannot extract the virtio i2c/gpio driver sources from linux-source-$KSERIES (see $LOG)"
    mv "$SRC/linux-source-$KSERIES"/drivers/{i2c/busses/i2c-virtio.c,gpio/gpio-virtio.c} "$SRC/"
    rm -rf "${SRC:?}/linux-source-$KSERIES"
  fi
  BUILD=$CACHE/extra-modules/build-$KVER
  rm -rf "$BUILD"; mkdir -p "$BUILD"
  cp "$SRC/i2c-virtio.c" "$SRC/gpio-virtio.c" "$BUILD/"
  echo 'obj-m := i2c-virtio.o gpio-virtio.o' >"$BUILD/Kbuild"
  say "building i2c-virtio.ko and gpio-virtio.ko against $KVER"
  # The headers were built with gcc-12; CC makes that explicit even where gcc points elsewhere.
  run "building i2c-virtio/gpio-virtio" make -C "$HTREE" M="$BUILD" CC=gcc-12 modules
  mkdir -p "$EXTRA"
  for m in i2c-virtio gpio-virtio; do
    strip --strip-debug -o "$EXTRA/$m.ko" "$BUILD/$m.ko"
  done
  # vermagic must match the guest kernel or modprobe refuses the module.
  vm=$(modinfo -F vermagic "$EXTRA/i2c-virtio.ko")
  [[ $vm == "$KVER "* || $vm == "${KVER%%-amd64}"* ]] || die "i2c-virtio.ko vermagic '$vm' does not match $KVER"
  # The big source/header packages are no longer needed once the modules exist.
  rm -rf "$BUILD" "$HROOT" "$DEBS"/linux-{source,headers,kbuild}-*.deb
fi

# ---------------------------------------------------------------- 4. busybox-static (unpacked)
BBROOT=$CACHE/busybox
BUSYBOX=$BBROOT/bin/busybox
if [[ ! -x $BUSYBOX ]]; then
  apt_update_once
  apt_download busybox-static
  rm -rf "$BBROOT"; mkdir -p "$BBROOT"
  run "unpacking busybox-static" dpkg-deb -x "$(deb_of busybox-static)" "$BBROOT"
  [[ -x $BUSYBOX ]] || die "busybox-static did not contain bin/busybox"
fi
# The guest has no libc: the busybox must be static.
if ldd "$BUSYBOX" >/dev/null 2>&1; then die "$BUSYBOX is dynamically linked"; fi

# ---------------------------------------------------------------- 5. QEMU 10 from bookworm-backports
# Private apt configuration so /etc/apt and the installed QEMU 7.2 stay untouched (doc §6.5).
Q10=$CACHE/qemu10
QEMU10=$Q10/root/usr/bin/qemu-system-x86_64
QEMU10_MODULE_DIR=$Q10/root/usr/lib/x86_64-linux-gnu/qemu
if [[ ! -f $Q10/.done ]]; then
  mkdir -p "$Q10/apt/lists/partial" "$Q10/apt/cache/archives/partial"
  echo 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main' \
    >"$Q10/apt/sources.list"
  [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] || die "debian-archive-keyring missing (needed to verify bookworm-backports)"
  APT_OPTS=(-o "Dir::Etc::SourceList=$Q10/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o "Dir::State::Lists=$Q10/apt/lists" -o "Dir::Cache=$Q10/apt/cache")
  say "apt-get update (bookworm-backports, private config)"
  run "apt-get update for bookworm-backports" apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root update
  ver=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions qemu-system-x86 2>>"$LOG" | sed -n 's/^Version: //p' | head -1)
  [[ $ver == *bpo12* ]] || die "bookworm-backports offers no qemu-system-x86 (got '${ver:-nothing}')"
  DEBS_BPO=$Q10/debs
  mkdir -p "$DEBS_BPO"
  DEBS_SAVE=$DEBS; DEBS=$DEBS_BPO
  apt_download "qemu-system-x86=$ver" "qemu-system-common=$ver" "qemu-system-data=$ver" \
    "qemu-system-modules-opengl=$ver" "qemu-system-modules-spice=$ver"
  rm -rf "$Q10/root"; mkdir -p "$Q10/root"
  for p in qemu-system-x86 qemu-system-common qemu-system-data qemu-system-modules-opengl qemu-system-modules-spice; do
    run "unpacking $p" dpkg-deb -x "$(deb_of "$p")" "$Q10/root"
  done
  DEBS=$DEBS_SAVE; APT_OPTS=()
  rm -rf "$DEBS_BPO" "$Q10/apt/cache"   # keep only the unpacked tree (and the small apt lists)
  touch "$Q10/.done"
fi
[[ -x $QEMU10 ]] || die "$QEMU10 missing after unpacking qemu-system-x86 from bookworm-backports"
# It should need only bookworm host libraries (those QEMU 7.2 pulled in); name any that are missing.
nf=$(ldd "$QEMU10" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
[[ -z $nf ]] || die "QEMU 10 needs host libraries that are missing: $nf"
QEMU_MODULE_DIR=$QEMU10_MODULE_DIR "$QEMU10" --version | grep -q 'version 10\.' \
  || die "$QEMU10 does not run as QEMU 10: $(QEMU_MODULE_DIR=$QEMU10_MODULE_DIR "$QEMU10" --version 2>&1 | head -1)"

# ---------------------------------------------------------------- 5b. QEMU 10 for aarch64 (vhost-user-scmi)
# vhost-user-scmi(-pci) exists only in the Arm system emulators (qemu-guest-testing.md §6.5). The same
# backports version as the x86 binary, unpacked into the same tree (it shares qemu-system-common and -data).
QEMU10_AARCH64=$Q10/root/usr/bin/qemu-system-aarch64
if [[ ! -f $Q10/.arm.done ]]; then
  deb_ver=$(QEMU_MODULE_DIR=$QEMU10_MODULE_DIR "$QEMU10" --version | sed -n '1s/.*(Debian \(.*\)).*/\1/p')
  [[ -n $deb_ver ]] || die "cannot tell the Debian version of $QEMU10"
  mkdir -p "$Q10/apt/lists/partial" "$Q10/apt/cache/archives/partial"
  APT_OPTS=(-o "Dir::Etc::SourceList=$Q10/apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
            -o "Dir::State::Lists=$Q10/apt/lists" -o "Dir::Cache=$Q10/apt/cache")
  say "apt-get update (bookworm-backports, private config)"
  run "apt-get update for bookworm-backports" apt-get "${APT_OPTS[@]}" -o APT::Sandbox::User=root update
  DEBS_BPO=$Q10/debs
  mkdir -p "$DEBS_BPO"
  DEBS_SAVE=$DEBS; DEBS=$DEBS_BPO
  apt_download "qemu-system-arm=$deb_ver"
  run "unpacking qemu-system-arm" dpkg-deb -x "$(deb_of qemu-system-arm)" "$Q10/root"
  DEBS=$DEBS_SAVE; APT_OPTS=()
  rm -rf "$DEBS_BPO" "$Q10/apt/cache"
  touch "$Q10/.arm.done"
fi
[[ -x $QEMU10_AARCH64 ]] || die "$QEMU10_AARCH64 missing after unpacking qemu-system-arm from bookworm-backports"
nf=$(ldd "$QEMU10_AARCH64" 2>&1 | awk '/not found/ {print $1}' | tr '\n' ' ')
[[ -z $nf ]] || die "QEMU 10 aarch64 needs host libraries that are missing: $nf"
QEMU_MODULE_DIR=$QEMU10_MODULE_DIR "$QEMU10_AARCH64" -device help 2>&1 | grep -q '"vhost-user-scmi-pci"' \
  || die "$QEMU10_AARCH64 has no vhost-user-scmi-pci device"

# ---------------------------------------------------------------- 6. base initramfs
INITRD_BASE=$CACHE/initramfs/base-$KVER.cpio.gz
key=$(initrd_key "$EXTRA")
if [[ ! -f $INITRD_BASE || "$(cat "$INITRD_BASE.key" 2>/dev/null)" != "$key" ]]; then
  say "building the base initramfs for $KVER"
  "$BENCH_DIR/mkinitramfs.sh" -k "$KROOT" -v "$KVER" -b "$BUSYBOX" -x "$EXTRA" -o "$INITRD_BASE" >>"$LOG" 2>&1 \
    || die "building the initramfs failed (see $LOG)"
  echo "$key" >"$INITRD_BASE.key"
fi

# ---------------------------------------------------------------- 6b. guest tools (static: the guest has no libc)
if [[ "$(cat "$TOOLS/.key" 2>/dev/null)" != "$(tools_key)" ]]; then
  say "building the guest tools"
  rm -rf "$TOOLS"; mkdir -p "$TOOLS"
  for src in "$BENCH_DIR"/tools/*.c; do
    run "building $(basename "$src")" gcc-12 -static -O2 -Wall -o "$TOOLS/$(basename "$src" .c)" "$src"
  done
  tools_key >"$TOOLS/.key"
fi

# ---------------------------------------------------------------- 7. bench.env (written last)
cat >"$ENV_FILE.tmp" <<EOF
# written by bench/setup.sh; read by bench/run-guest.sh
BENCH_SETUP_VERSION=$SETUP_VERSION
QEMU72=$QEMU72
QEMU10=$QEMU10
QEMU10_MODULE_DIR=$QEMU10_MODULE_DIR
QEMU10_AARCH64=$QEMU10_AARCH64
KVER=$KVER
KDEBVER=$KDEBVER
VMLINUZ=$VMLINUZ
INITRD_BASE=$INITRD_BASE
BUSYBOX=$BUSYBOX
INITRD_EXTRA=$EXTRA
GUEST_TOOLS=$TOOLS
EOF
mv "$ENV_FILE.tmp" "$ENV_FILE"
say "ready in $(awk -v s="$START" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}') s: QEMU $("$QEMU72" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'), QEMU $(QEMU_MODULE_DIR=$QEMU10_MODULE_DIR "$QEMU10" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'), kernel $KVER"
((QUIET)) && echo "bench/setup: ready ($ENV_FILE)"
exit 0
