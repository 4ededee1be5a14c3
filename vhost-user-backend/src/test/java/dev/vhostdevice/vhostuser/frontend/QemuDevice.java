package dev.vhostdevice.vhostuser.frontend;

import java.util.Arrays;

/**
 * What the QEMU device model on the other side looks like, for {@link TestFrontend#negotiateLikeQemu72} and
 * {@link TestFrontend#negotiateLikeQemu10} (qemu-guest-testing.md §8.2):
 *
 * @param queueSize     SET_VRING_NUM (rng/i2c 4, gpio 256 on 7.2 and 64 on 10, vsock 128)
 * @param queueCount    queues QEMU's device model has (0: take GET_QUEUE_NUM's answer, as QEMU checks it)
 * @param started       queues that get NUM/BASE/ADDR/KICK (null: all; 7.2 gpio starts only queue 0)
 * @param configSize    bytes of config space QEMU reads at realize (0: the device model has no config, and QEMU
 *                      masks the CONFIG protocol feature as it does for rng, i2c and scmi)
 * @param driverFeatures device feature bits (below 24) the guest driver acks, masked by the offer
 * @param vsockStyle    vsock's extra phase-B quirk: call fds re-sent in reverse queue order before SET_FEATURES
 */
public record QemuDevice(int queueSize, int queueCount, int[] started, int configSize, long driverFeatures,
                         boolean vsockStyle) {

    /** Like vhost-user-rng: one queue of 4, no config. */
    public static QemuDevice rng() {
        return new QemuDevice(4, 1, null, 0, 0, false);
    }

    /** Like vhost-user-gpio on QEMU 10: two queues of 64, 8 bytes of config, F_IRQ (bit 0) kept. */
    public static QemuDevice gpio() {
        return new QemuDevice(64, 2, null, 8, 1, false);
    }

    /** Like vhost-user-vsock: rx and tx of 128, 8 bytes of config, call fds re-sent in reverse. */
    public static QemuDevice vsock() {
        return new QemuDevice(128, 2, null, 8, 0, true);
    }

    public QemuDevice withQueueSize(int size) {
        return new QemuDevice(size, queueCount, started, configSize, driverFeatures, vsockStyle);
    }

    public QemuDevice withQueueCount(int count) {
        return new QemuDevice(queueSize, count, started, configSize, driverFeatures, vsockStyle);
    }

    public QemuDevice withStarted(int... queues) {
        return new QemuDevice(queueSize, queueCount, queues.clone(), configSize, driverFeatures, vsockStyle);
    }

    public QemuDevice withConfig(int size) {
        return new QemuDevice(queueSize, queueCount, started, size, driverFeatures, vsockStyle);
    }

    public QemuDevice withDriverFeatures(long features) {
        return new QemuDevice(queueSize, queueCount, started, configSize, features, vsockStyle);
    }

    int[] startedOf(int queues) {
        return started != null ? started.clone() : java.util.stream.IntStream.range(0, queues).toArray();
    }

    @Override
    public String toString() {
        return "QemuDevice[size=" + queueSize + ", queues=" + queueCount + ", started="
                + (started == null ? "all" : Arrays.toString(started)) + ", config=" + configSize + "]";
    }
}
