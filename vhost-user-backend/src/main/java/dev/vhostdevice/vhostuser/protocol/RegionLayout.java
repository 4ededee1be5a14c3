package dev.vhostdevice.vhostuser.protocol;

/**
 * How a memory region is laid out on the wire: the standard 32 bytes, or 40 with XEN_MMAP (flags and domid).
 * The entry size of a message is read from the message itself (payload size against the region count), because
 * front-ends disagree with the ack: QEMU 10.0.2 acks XEN_MMAP and sends 32-byte entries, the Xen bridge sends
 * 40-byte entries whatever was acked. The negotiated layout only says which sizes are acceptable.
 */
public enum RegionLayout {
    STANDARD(32),
    XEN(40);

    private final int size;

    RegionLayout(int size) {
        this.size = size;
    }

    /** Bytes of one region in SET_MEM_TABLE (ADD/REM_MEM_REG add 8 bytes of padding before it). */
    public int size() {
        return size;
    }

    /** The negotiated layout: XEN once XEN_MMAP is acked. */
    public static RegionLayout negotiated(long ackedProtocolFeatures) {
        return ProtocolFeature.XEN_MMAP.isIn(ackedProtocolFeatures) ? XEN : STANDARD;
    }

    /**
     * The layout of {@code count} entries in {@code bytes}, or null if no acceptable layout fits: STANDARD
     * always, XEN only when it is the negotiated layout.
     */
    public static RegionLayout ofEntries(long bytes, int count, RegionLayout negotiated) {
        if (bytes == (long) count * STANDARD.size) {
            return STANDARD;
        }
        if (negotiated == XEN && bytes == (long) count * XEN.size) {
            return XEN;
        }
        return null;
    }
}
