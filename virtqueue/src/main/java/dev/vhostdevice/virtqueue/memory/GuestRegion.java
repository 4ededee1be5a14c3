package dev.vhostdevice.virtqueue.memory;

import java.lang.foreign.MemorySegment;

/**
 * One contiguous piece of guest-physical memory: {@code size} bytes from {@code guestAddress}, backed either by
 * {@code segment} (exactly {@code size} bytes long, mapped in advance: the usual case) or, for memory that can
 * only be mapped per access (Xen grants without advance mapping), by {@code onDemand} with a null segment.
 */
public record GuestRegion(long guestAddress, long size, MemorySegment segment, OnDemandMemory onDemand) {

    public GuestRegion {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
        if ((segment == null) == (onDemand == null)) {
            throw new IllegalArgumentException("a region has either a segment or on-demand memory");
        }
        if (segment != null && segment.byteSize() != size) {
            throw new IllegalArgumentException(
                    "segment is " + segment.byteSize() + " bytes, region is " + size);
        }
        if (Long.compareUnsigned(guestAddress + size - 1, guestAddress) < 0) {
            throw new IllegalArgumentException(
                    "region 0x%x+0x%x wraps past 2^64".formatted(guestAddress, size));
        }
    }

    /** A region mapped in advance. */
    public GuestRegion(long guestAddress, long size, MemorySegment segment) {
        this(guestAddress, size, segment, null);
    }

    /** A region mapped per access. */
    public GuestRegion(long guestAddress, long size, OnDemandMemory onDemand) {
        this(guestAddress, size, null, onDemand);
    }

    /** Whether buffers here are mapped per access ({@link #segment()} is then null). */
    public boolean isOnDemand() {
        return onDemand != null;
    }

    /** The last guest-physical address inside the region (inclusive, so a region may end at 2^64). */
    public long lastAddress() {
        return guestAddress + size - 1;
    }

    /** Whether {@code gpa} lies inside the region. */
    public boolean contains(long gpa) {
        return Long.compareUnsigned(gpa, guestAddress) >= 0 && Long.compareUnsigned(gpa, lastAddress()) <= 0;
    }

    @Override
    public String toString() {
        return "GuestRegion[0x%x..0x%x%s]".formatted(guestAddress, lastAddress(), onDemand != null ? ", per access" : "");
    }
}
