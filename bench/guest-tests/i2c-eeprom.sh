# Guest test: busybox i2c tools against vhost-device-i2c's simulated EEPROM at 0x50 (back-end run with
# `-l sim:80`): scan, read the initial byte, write one, read it back, a 2-message i2ctransfer, a NACK at 0x51.
# Needs i2c_virtio and i2c_dev loaded (the default module list). Example:
#   java -jar device-i2c/target/vhost-device-i2c.jar -s /tmp/i2c.sock -l sim:80 &
#   bench/run-guest.sh -q 10 -s bench/guest-tests/i2c-eeprom.sh -u i2c=/tmp/i2c.sock
set -e
bus=
for a in /sys/bus/i2c/devices/i2c-*; do
  grep -q i2c_virtio "$a/name" && bus=${a##*i2c-}
done
[ -n "$bus" ] || { echo "no i2c_virtio adapter"; exit 1; }
echo "bus=$bus"
i2cdetect -y "$bus"
[ "$(i2cget -y "$bus" 0x50 0x11)" = 0x11 ]
i2cset -y "$bus" 0x50 0x10 0xab
[ "$(i2cget -y "$bus" 0x50 0x10)" = 0xab ]
i2ctransfer -y "$bus" w4@0x50 0x20 0x12 0x34 0x56
xfer=$(i2ctransfer -y "$bus" w1@0x50 0x20 r4)
echo "xfer=$xfer"
[ "$xfer" = "0x12 0x34 0x56 0x23" ]
if i2cget -y "$bus" 0x51 0x00 2>/dev/null; then echo "0x51 answered"; exit 2; fi
echo "i2c-eeprom: ok"
