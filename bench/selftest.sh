#!/usr/bin/env bash
# bench/selftest.sh - prove the bench works without any project back-end (about 40 s with a warm cache).
#
# Usage: bench/selftest.sh [-v]      (-v: stream the guest consoles)
# Boots, under QEMU 7.2 and QEMU 10 each:
#   rng:  QEMU's built-in virtio-rng-pci; the guest reads 1 MiB from /dev/hwrng (byte count, throughput)
#   i2c:  the out-of-tree i2c-virtio/gpio-virtio modules load into the stock kernel (no device needed)
#   vhost-user-rng with a stand-in Python back-end: the same 1 MiB read through the vhost-user path
# and checks that a missing vhost-user socket is reported as "no result" (exit 125), not as a pass.
# Ends with the line "selftest: N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
V=()
[[ ${1:-} == -v ]] && V=(-v)

"$BENCH_DIR/setup.sh"
pass=0 fail=0 STUB=
trap '[[ -n $STUB ]] && kill "$STUB" 2>/dev/null' EXIT
check() { # name expected-rc command...
  local name=$1 want=$2 rc=0; shift 2
  echo "=== $name"
  "$@" || rc=$?
  if ((rc == want)); then pass=$((pass + 1)); echo "--- PASS $name"; else fail=$((fail + 1)); echo "--- FAIL $name (exit $rc, wanted $want)"; fi
}

for q in 7.2 10; do
  check "rng-builtin qemu-$q" 0 "$BENCH_DIR/run-guest.sh" "${V[@]}" -q "$q" -t 120 \
    -s "$BENCH_DIR/guest-tests/rng-read.sh" -- -device virtio-rng-pci
  # leave i2c_virtio/gpio_virtio out of the boot-time list so the test's own modprobe loads them
  check "i2c-module qemu-$q" 0 "$BENCH_DIR/run-guest.sh" "${V[@]}" -q "$q" -t 120 -M virtio_pci \
    -s "$BENCH_DIR/guest-tests/i2c-module.sh"
  # vhost-user plumbing with a stand-in back-end (bench/tools/vu-rng-stub.py): -u builds the device args,
  # guest RAM is a shared memfd the back-end maps, and the guest reads 1 MiB through it.
  sock=$(mktemp -u /tmp/bench-vu-rng.XXXXXX)
  python3 "$BENCH_DIR/tools/vu-rng-stub.py" "$sock" & STUB=$!
  for _ in $(seq 50); do [[ -S $sock ]] && break; sleep 0.1; done
  check "vhost-user-rng-stub qemu-$q" 0 "$BENCH_DIR/run-guest.sh" "${V[@]}" -q "$q" -t 120 \
    -s "$BENCH_DIR/guest-tests/rng-read.sh" -u "rng=$sock"
  kill "$STUB" 2>/dev/null || true; wait "$STUB" 2>/dev/null || true; STUB=
  sock=$(mktemp -u /tmp/bench-nosock.XXXXXX)
  check "missing-backend qemu-$q" 125 "$BENCH_DIR/run-guest.sh" -q "$q" -t 30 -c true -u "rng=$sock"
done
echo "selftest: $pass passed, $fail failed"
((fail == 0))
