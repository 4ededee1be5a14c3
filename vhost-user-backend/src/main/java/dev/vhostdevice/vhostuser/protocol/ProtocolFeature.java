package dev.vhostdevice.vhostuser.protocol;

/**
 * VHOST_USER_PROTOCOL_F_* bits. Source: QEMU vhost-user.rst at f6b615b (bits 0-19); 20-22 as upstream assigned
 * them in 2026 (vhost-user-protocol.md §0: rust-vmm vhost 0.16 still says SHMEM = 21). Checked 2026-11.
 */
public enum ProtocolFeature {
    MQ(0),
    LOG_SHMFD(1),
    RARP(2),
    REPLY_ACK(3),
    MTU(4),
    BACKEND_REQ(5),
    CROSS_ENDIAN(6),
    CRYPTO_SESSION(7),
    PAGEFAULT(8),
    CONFIG(9),
    BACKEND_SEND_FD(10),
    HOST_NOTIFIER(11),
    INFLIGHT_SHMFD(12),
    RESET_DEVICE(13),
    INBAND_NOTIFICATIONS(14),
    CONFIGURE_MEM_SLOTS(15),
    STATUS(16),
    XEN_MMAP(17),
    SHARED_OBJECT(18),
    DEVICE_STATE(19),
    GET_VRING_BASE_INFLIGHT(20),
    GPA_ADDRESSES(21),
    SHMEM(22);

    /** The highest bit the Xen bridge (xen-vhost-frontend) accepts in an offer. */
    public static final int HIGHEST_XEN_COMPATIBLE_BIT = 17;

    private final int bit;

    ProtocolFeature(int bit) {
        this.bit = bit;
    }

    public int bit() {
        return bit;
    }

    public long mask() {
        return 1L << bit;
    }

    public boolean isIn(long features) {
        return (features & mask()) != 0;
    }

    public static long maskOf(ProtocolFeature... features) {
        long mask = 0;
        for (ProtocolFeature feature : features) {
            mask |= feature.mask();
        }
        return mask;
    }
}
