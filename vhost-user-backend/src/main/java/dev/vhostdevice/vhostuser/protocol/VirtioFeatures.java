package dev.vhostdevice.vhostuser.protocol;

import dev.vhostdevice.virtqueue.VirtioRing;

/**
 * Virtio / vhost feature bits the engine itself acts on (vhost-user-protocol.md §3.1), under their vhost names;
 * the ring bits are the virtqueue module's.
 */
public final class VirtioFeatures {
    public static final int VIRTIO_F_NOTIFY_ON_EMPTY = 24;
    public static final int VHOST_F_LOG_ALL = 26;
    public static final int VIRTIO_RING_F_INDIRECT_DESC = VirtioRing.VIRTIO_F_INDIRECT_DESC;
    public static final int VIRTIO_RING_F_EVENT_IDX = VirtioRing.VIRTIO_F_EVENT_IDX;
    /** Reused "UNUSED" bit: never seen by drivers. */
    public static final int VHOST_USER_F_PROTOCOL_FEATURES = 30;
    public static final int VIRTIO_F_VERSION_1 = VirtioRing.VIRTIO_F_VERSION_1;
    public static final int VIRTIO_F_ACCESS_PLATFORM = VirtioRing.VIRTIO_F_ACCESS_PLATFORM;
    public static final int VIRTIO_F_RING_PACKED = VirtioRing.VIRTIO_F_RING_PACKED;

    /** Virtio device status bits (SET_STATUS / GET_STATUS). */
    public static final int STATUS_ACKNOWLEDGE = 1;
    public static final int STATUS_DRIVER = 2;
    public static final int STATUS_DRIVER_OK = 4;
    public static final int STATUS_FEATURES_OK = 8;
    public static final int STATUS_DEVICE_NEEDS_RESET = 64;
    public static final int STATUS_FAILED = 128;

    private VirtioFeatures() {
    }

    public static long bit(int bit) {
        return 1L << bit;
    }

    public static boolean has(long features, int bit) {
        return (features & (1L << bit)) != 0;
    }
}
