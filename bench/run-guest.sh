#!/usr/bin/env bash
# bench/run-guest.sh - boot one throw-away Linux guest under QEMU, run a test command in it, report the result.
#
# Usage: bench/run-guest.sh [options] [-- EXTRA-QEMU-ARGS...]
#   -q 7.2|10       QEMU version (default: $BENCH_QEMU or 7.2)
#   -c CMD          shell command the guest runs (busybox sh, cwd /tmp, stdin /dev/null, stderr merged)
#   -s FILE         script file the guest runs instead of -c
#   -f SRC[:DST]    copy a host file into the guest (default DST /bench/files/<name>); repeatable
#   -u DEV=SOCK     add a vhost-user device: DEV is rng, i2c, gpio or vsock, SOCK the back-end's listening
#                   socket; expands to "-chardev socket,id=vuN,path=SOCK[,reconnect] -device vhost-user-DEV-pci,
#                   chardev=vuN". Repeatable.
#   -r SECONDS      with -u: add the chardev reconnect option (QEMU 7.2: reconnect=S, QEMU 10: reconnect-ms=S*1000).
#                   Observed: both versions then fail at start for rng/i2c/vsock (the chardev connects
#                   asynchronously, the device finds no connection); 7.2 rng even aborts. Kept for gpio (7.2
#                   handles it) and later QEMUs; see README.md.
#   -t SECONDS      timeout for the whole QEMU run (default 120)
#   -m SIZE         guest RAM, shared memfd (default 512M; 4G gives vhost-user two memory regions)
#   -M MODULES      modules /init loads, comma-separated (default: all packed ones; see mkinitramfs.sh)
#   -k ARGS         extra kernel command line (e.g. loglevel=7)
#   -l LOG          serial console log (default $BENCH_CACHE/logs/<time>-<pid>.log); QEMU's own
#                   stderr goes to LOG with .log replaced by .qemu.log
#   -v              also stream the console to stderr while the guest runs
# Environment: BENCH_CACHE (see setup.sh), BENCH_QEMU (default for -q), BENCH_ACCEL=auto|tcg|kvm (auto uses
# KVM only if /dev/kvm is usable, the CPU has vmx/svm and it is not PVM-backed; otherwise TCG).
# EXTRA-QEMU-ARGS are appended verbatim, e.g.
#   -- -chardev socket,id=c0,path=/tmp/rng.sock -device vhost-user-rng-pci,chardev=c0
#
# Output: the guest command's output (between BENCH-RESULT-BEGIN/END in the log) on stdout, then one
# summary line on stderr: "bench/run-guest: status=0 qemu=10.0.2 wall=4.9s ready=1.9s end=2.3s log=...".
# ready/end are guest uptimes when the command started/ended.
#
# Exit status: the guest command's exit status (0-123 as the command returned it);
#   124  timeout (QEMU killed after -t seconds)
#   125  no result: QEMU refused to start or exited, or the guest crashed, before printing the exit status
#   2    usage error;  1  the bench is not set up and bench/setup.sh failed
#
# The back-end must already listen on SOCK before this starts (QEMU is the vhost-user client and exits
# at once on ENOENT/ECONNREFUSED; remove stale socket files first). Guest RAM is always a shared memfd,
# because vhost-user needs to map it.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export BENCH_CACHE=${BENCH_CACHE:-$BENCH_DIR/.cache}

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2; exit 2; }
die() { echo "bench/run-guest: ERROR: $*" >&2; exit "${2:-2}"; }

QV=${BENCH_QEMU:-7.2} CMD='' SCRIPT='' TIMEOUT=120 MEM=512M MODULES='' KARGS='' LOG='' VERBOSE=0 RECONNECT=''
FILES=() VU=()
while getopts q:c:s:f:u:r:t:m:M:k:l:vh opt; do
  case $opt in
    q) QV=$OPTARG ;; c) CMD=$OPTARG ;; s) SCRIPT=$OPTARG ;; f) FILES+=("$OPTARG") ;; u) VU+=("$OPTARG") ;;
    r) RECONNECT=$OPTARG ;; t) TIMEOUT=$OPTARG ;; m) MEM=$OPTARG ;; M) MODULES=$OPTARG ;; k) KARGS=$OPTARG ;;
    l) LOG=$OPTARG ;; v) VERBOSE=1 ;; *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ ${1:-} == -- ]] && shift
EXTRA=("$@")
[[ -n $CMD || -n $SCRIPT ]] || die "give the guest a command (-c CMD or -s FILE)"
[[ -z $SCRIPT || -f $SCRIPT ]] || die "no such script: $SCRIPT"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "-t needs whole seconds"
[[ -z $RECONNECT || $RECONNECT =~ ^[0-9]+$ ]] || die "-r needs whole seconds"

# Set up (or check) the cache; this takes well under a second when it is warm.
"$BENCH_DIR/setup.sh" -q >/dev/null || exit 1
# shellcheck disable=SC1091
source "$BENCH_CACHE/bench.env"

QENV=()
case $QV in
  7.2|7) QEMU=$QEMU72 ;;
  # QEMU 10 is unpacked, not installed: point it at its own modules. Only for this binary: QEMU 7.2
  # would try to load QEMU 10's modules from the same variable and complain.
  10|10.0) QEMU=$QEMU10; QENV=(QEMU_MODULE_DIR="$QEMU10_MODULE_DIR") ;;
  *) die "unknown QEMU version '$QV' (7.2 or 10)" ;;
esac

# Accelerator (doc §5): KVM only where it is real; a PVM-backed or vmx/svm-less /dev/kvm crawls.
ACCEL=(-accel tcg -cpu max)
case ${BENCH_ACCEL:-auto} in
  tcg) ;;
  kvm) ACCEL=(-accel kvm -cpu host) ;;
  auto) if [[ -r /dev/kvm && -w /dev/kvm && ! -e /sys/module/kvm_pvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
          ACCEL=(-accel kvm -cpu host)
        fi ;;
  *) die "BENCH_ACCEL must be auto, tcg or kvm" ;;
esac

# vhost-user devices from -u; reconnect spelling differs: 7.2 has reconnect=<s> (no reconnect-ms);
# QEMU 10 has reconnect-ms=<ms> (reconnect=<s> is deprecated since 9.2).
i=0
for spec in "${VU[@]}"; do
  dev=${spec%%=*} sock=${spec#*=}
  [[ $spec == *=* && $dev =~ ^(rng|i2c|gpio|vsock)$ ]] || die "-u wants DEV=SOCK with DEV rng, i2c, gpio or vsock (got '$spec')"
  rc=
  if [[ -n $RECONNECT ]]; then
    if [[ $QEMU == "$QEMU72" ]]; then rc=,reconnect=$RECONNECT; else rc=,reconnect-ms=$((RECONNECT * 1000)); fi
  fi
  EXTRA+=(-chardev "socket,id=vu$i,path=$sock$rc" -device "vhost-user-$dev-pci,chardev=vu$i")
  i=$((i + 1))
done

mkdir -p "$BENCH_CACHE/logs"
# Keep the log directory from growing without bound: drop logs older than a week.
find "$BENCH_CACHE/logs" -type f -mtime +7 -delete 2>/dev/null || true
LOG=${LOG:-$BENCH_CACHE/logs/$(date +%Y%m%d-%H%M%S)-$$.log}
QLOG=${LOG%.log}.qemu.log
[[ $QLOG != "$LOG" ]] || QLOG=$LOG.qemu
WORK=$(mktemp -d)
TAILPID=
cleanup() { [[ -n $TAILPID ]] && kill "$TAILPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# Per-boot initramfs: the cached base plus a small uncompressed cpio with /bench/cmd and the -f files
# (the base is zero-padded to 512 bytes so the appended archive starts aligned).
mkdir -p "$WORK/root/bench/files"
# The static guest tools setup.sh built (vsock-xfer …) go into /bin.
if [[ -n ${GUEST_TOOLS:-} && -d $GUEST_TOOLS ]]; then
  mkdir -p "$WORK/root/bin"
  find "$GUEST_TOOLS" -maxdepth 1 -type f -perm -u+x -exec cp {} "$WORK/root/bin/" \;
fi
if [[ -n $SCRIPT ]]; then cp "$SCRIPT" "$WORK/root/bench/cmd"; else printf '%s\n' "$CMD" >"$WORK/root/bench/cmd"; fi
chmod 755 "$WORK/root/bench/cmd"
for f in "${FILES[@]}"; do
  src=${f%%:*} dst=/bench/files/$(basename "${f%%:*}")
  [[ $f == *:* ]] && dst=${f#*:}
  [[ -f $src ]] || die "no such file for -f: $src"
  mkdir -p "$WORK/root$(dirname "$dst")"
  cp "$src" "$WORK/root$dst"
done
(cd "$WORK/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/cmd.cpio"
cat "$INITRD_BASE" "$WORK/cmd.cpio" >"$WORK/initrd"

APPEND="console=ttyS0 panic=-1 rdinit=/init loglevel=4"
[[ -n $MODULES ]] && APPEND+=" bench.modules=$MODULES"
[[ -n $KARGS ]] && APPEND+=" $KARGS"

# -nodefaults/-display none: no VGA, no default NIC or serial; the one serial port goes to a file
# chardev (not stdio: no tty raw mode, works without stdin under CI). -no-reboot + panic=-1 turn a guest
# panic or reboot into QEMU exiting instead of a reboot loop. Guest RAM is a shared memfd because the
# vhost-user back-end maps it; q35 takes it via memory-backend=.
# shellcheck disable=SC2054  # the commas are QEMU option syntax
QARGS=(
  -machine q35,memory-backend=mem -object "memory-backend-memfd,id=mem,size=$MEM,share=on" -m "$MEM" -smp 1
  "${ACCEL[@]}"
  -nodefaults -no-user-config -display none -monitor none -no-reboot
  -chardev "file,id=con0,path=$LOG" -serial chardev:con0
  -kernel "$VMLINUZ" -initrd "$WORK/initrd" -append "$APPEND"
  "${EXTRA[@]}"
)
: >"$LOG"
{ printf '+'; printf ' %q' env "${QENV[@]}" "$QEMU" "${QARGS[@]}"; echo; } >"$QLOG"
if ((VERBOSE)); then tail -n +1 -f "$LOG" >&2 & TAILPID=$!; fi

T0=$(date +%s.%N)
set +e
timeout -k 5 "$TIMEOUT" env "${QENV[@]}" "$QEMU" "${QARGS[@]}" </dev/null >>"$QLOG" 2>&1
QRC=$?
set -e
WALL=$(awk -v s="$T0" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
if [[ -n $TAILPID ]]; then sleep 0.2; kill "$TAILPID" 2>/dev/null || true; TAILPID=; fi

# The serial log has CRLF line ends; the guest prints a newline before BENCH-RESULT-END so an
# unterminated last line is closed, which leaves one blank line to drop when the output was terminated.
tr -d '\r' <"$LOG" | awk '
  /^BENCH-RESULT-BEGIN$/ { inres = 1; n = 0; next }
  /^BENCH-RESULT-END$/ && inres { if (n > 0 && line[n] == "") n--; for (i = 1; i <= n; i++) print line[i]; exit }
  inres { line[++n] = $0 }' >"$WORK/result"
STATUS=$(tr -d '\r' <"$LOG" | sed -n 's/^BENCH-EXIT-STATUS=\([0-9]*\).*/\1/p' | tail -1)
READY=$(tr -d '\r' <"$LOG" | sed -n 's/^BENCH-READY uptime=\([0-9.]*\).*/\1/p' | tail -1)
END=$(tr -d '\r' <"$LOG" | sed -n 's/^BENCH-EXIT-STATUS=[0-9]* uptime=\([0-9.]*\).*/\1/p' | tail -1)
cat "$WORK/result"

QVER=$(env "${QENV[@]}" "$QEMU" --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
summary="qemu=$QVER wall=${WALL}s ready=${READY:-?}s end=${END:-?}s log=$LOG"
if ((QRC == 124 || QRC == 137)); then
  echo "bench/run-guest: TIMEOUT after ${TIMEOUT}s $summary" >&2
  exit 124
elif [[ -z $STATUS ]]; then
  echo "bench/run-guest: NO RESULT (QEMU exit $QRC; guest did not finish) $summary qemu-log=$QLOG" >&2
  tail -n +2 "$QLOG" | tail -n 5 | sed 's/^/bench\/run-guest:   qemu: /' >&2
  exit 125
fi
echo "bench/run-guest: status=$STATUS $summary" >&2
exit "$STATUS"
