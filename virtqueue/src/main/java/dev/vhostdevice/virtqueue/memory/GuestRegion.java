package dev.vhostdevice.virtqueue.memory;

import java.lang.foreign.MemorySegment;

/**
 * One contiguous piece of guest-physical memory: {@code size} bytes from {@code guestAddress}, backed by
 * {@code segment} (exactly {@code size} bytes long).
 */
public record GuestRegion(long guestAddress, long size, MemorySegment segment) {

    public GuestRegion {
        if (size <= 0) {
            throw new IllegalArgumentException("region size must be positive: " + size);
        }
        if (segment.byteSize() != size) {
            throw new IllegalArgumentException(
                    "segment is " + segment.byteSize() + " bytes, region is " + size);
        }
        if (Long.compareUnsigned(guestAddress + size - 1, guestAddress) < 0) {
            throw new IllegalArgumentException(
                    "region 0x%x+0x%x wraps past 2^64".formatted(guestAddress, size));
        }
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
        return "GuestRegion[0x%x..0x%x]".formatted(guestAddress, lastAddress());
    }
}
