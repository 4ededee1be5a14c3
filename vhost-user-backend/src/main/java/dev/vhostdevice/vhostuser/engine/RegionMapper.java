package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.memory.AreaMapper;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;

/**
 * Maps what the front-end shares by fd, through virtqueue's {@link AreaMapper}: memory-table regions and the
 * other fd-backed areas (dirty log, inflight buffer). Turns a description the area mapper refuses into a
 * {@link ProtocolException} naming it. Never keeps {@code fd}; the caller closes it.
 */
public final class RegionMapper {
    private final AreaMapper areas;

    public RegionMapper(AreaMapper areas) {
        this.areas = areas;
    }

    /** A memory-table region: a single-region memory owning its mapping (closing it unmaps). */
    public GuestMemory map(MemoryRegion region, int fd) throws ProtocolException, ErrnoException {
        validate(region);
        if (region.xenMmapFlags() != 0) {
            throw ProtocolException.invalid("region " + describe(region) + ": Xen mapping flags 0x"
                    + Integer.toHexString(region.xenMmapFlags()) + " are not supported");
        }
        try {
            return areas.mapShared(region.guestPhysAddr(), region.memorySize(), fd, region.mmapOffset());
        } catch (IllegalArgumentException e) {
            throw ProtocolException.invalid("region " + describe(region) + ": " + e.getMessage());
        }
    }

    /** Another fd-backed area ({@code what} names it in errors), mapped at address 0 of a one-region memory. */
    public GuestMemory mapArea(String what, long size, int fd, long offset) throws ProtocolException, ErrnoException {
        try {
            return areas.mapShared(0, size, fd, offset);
        } catch (IllegalArgumentException e) {
            throw ProtocolException.invalid(what + ": " + e.getMessage());
        }
    }

    /** Size non-zero, and no address range wraps past 2^64. */
    static void validate(MemoryRegion region) throws ProtocolException {
        long size = region.memorySize();
        if (size <= 0) {
            throw ProtocolException.invalid("region " + describe(region) + ": size must be positive (and below 2^63)");
        }
        if (wraps(region.guestPhysAddr(), size) || wraps(region.userAddr(), size) || region.mmapOffset() < 0
                || wraps(region.mmapOffset(), size)) {
            throw ProtocolException.invalid("region " + describe(region) + ": address + size overflows");
        }
    }

    private static boolean wraps(long start, long size) {
        return Long.compareUnsigned(start + size - 1, start) < 0;
    }

    static String describe(MemoryRegion r) {
        return "[gpa 0x%x size 0x%x uva 0x%x offset 0x%x]".formatted(r.guestPhysAddr(), r.memorySize(),
                r.userAddr(), r.mmapOffset());
    }
}
