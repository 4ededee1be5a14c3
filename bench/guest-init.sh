#!/bin/sh
# /init of the bench guest (busybox sh; packed by bench/mkinitramfs.sh).
#
# Loads the modules, runs the test command /bench/cmd (added per boot by bench/run-guest.sh as a second cpio
# archive), prints its output between markers on the console and powers off:
#   BENCH-READY uptime=<s>            modules loaded, about to run the command
#   BENCH-RESULT-BEGIN
#   ...command stdout+stderr...
#   BENCH-RESULT-END
#   BENCH-EXIT-STATUS=<rc> uptime=<s>
# Kernel command line knobs: bench.modules=a,b,c replaces the module list in /etc/bench-modules.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
exec </dev/console >/dev/console 2>&1

modules=$(cat /etc/bench-modules)
for arg in $(cat /proc/cmdline); do
  case $arg in
    bench.modules=*) modules=$(echo "${arg#bench.modules=}" | tr , ' ') ;;
  esac
done
for m in $modules; do
  # A failed module is reported but not fatal: the test command decides what it needs.
  modprobe "$m" || echo "BENCH-MODPROBE-FAILED: $m"
done

echo "BENCH-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
echo "BENCH-RESULT-BEGIN"
if [ -f /bench/cmd ]; then
  (cd /tmp && sh /bench/cmd) </dev/null 2>&1
  rc=$?
else
  echo "no test command (/bench/cmd) in the initramfs"
  rc=127
fi
# The leading newline ends an unterminated last output line; run-guest.sh drops the blank line it may add.
printf '\nBENCH-RESULT-END\n'
echo "BENCH-EXIT-STATUS=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
# -f: no init system to ask; QEMU runs with -no-reboot, so power-off (or a panic) ends QEMU.
poweroff -f
