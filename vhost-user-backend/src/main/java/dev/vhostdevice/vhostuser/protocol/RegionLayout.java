package dev.vhostdevice.vhostuser.protocol;

/**
 * How a memory region is laid out on the wire: the standard 32 bytes, or 40 with XEN_MMAP (flags and domid).
 * Chosen per connection from the negotiated protocol features.
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
}
