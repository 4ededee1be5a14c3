# Guest test: read 1 MiB from /dev/hwrng, print byte count and throughput (guest clock).
# Needs a virtio rng device (built-in virtio-rng-pci or vhost-user-rng-pci) and virtio_rng loaded.
set -e
echo "rng_available: $(cat /sys/class/misc/hw_random/rng_available)"
echo "rng_current: $(cat /sys/class/misc/hw_random/rng_current)"
grep -q '^virtio_rng' /sys/class/misc/hw_random/rng_current
t0=$(cut -d' ' -f1 /proc/uptime)
dd if=/dev/hwrng of=/tmp/rng.bin bs=64k count=16 iflag=fullblock 2>/tmp/dd.err || { cat /tmp/dd.err; exit 1; }
t1=$(cut -d' ' -f1 /proc/uptime)
cat /tmp/dd.err
bytes=$(wc -c </tmp/rng.bin)
gz=$(gzip -c /tmp/rng.bin | wc -c)
awk -v b="$bytes" -v s="$(awk -v a="$t0" -v z="$t1" 'BEGIN{print z-a}')" -v g="$gz" \
  'BEGIN { printf "bytes=%d seconds=%.2f throughput=%.0f KiB/s gzip_size=%d\n", b, s, (s > 0 ? b / 1024 / s : 0), g }'
# 1 MiB exactly, and incompressible (gzip output > 1,040,000 bytes) as random data must be
[ "$bytes" -eq 1048576 ] && [ "$gz" -gt 1040000 ]
