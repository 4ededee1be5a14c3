# Guest test: the out-of-tree i2c-virtio (and gpio-virtio) modules load into the stock Debian kernel and
# register their virtio drivers; i2c-dev is there for /dev/i2c-N. No device is needed for this check.
# Boot with -M leaving out i2c_virtio,gpio_virtio so the modprobe here is the one that loads them.
set -e
modprobe i2c_virtio
modprobe gpio_virtio
modprobe i2c_dev
lsmod | grep -E '^(i2c_virtio|gpio_virtio|i2c_dev) '
ls -d /sys/bus/virtio/drivers/i2c_virtio /sys/bus/virtio/drivers/gpio_virtio
echo "i2c_virtio vermagic: $(modinfo -F vermagic i2c_virtio)"
echo "kernel taint: $(cat /proc/sys/kernel/tainted) (unsigned out-of-tree module, expected)"
echo "i2c adapters: $(i2cdetect -l | wc -l) (none without a vhost-user-i2c device)"
