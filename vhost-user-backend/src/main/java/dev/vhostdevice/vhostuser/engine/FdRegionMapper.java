package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;

/** The standard region kind: {@code memory_size} bytes of the fd at {@code mmap_offset}, shared read-write. */
public final class FdRegionMapper implements RegionMapper {
    private final MemoryMapper mapper;

    public FdRegionMapper(MemoryMapper mapper) {
        this.mapper = mapper;
    }

    @Override
    public GuestMemory map(MemoryRegion region, int fd) throws ProtocolException, ErrnoException {
        validate(region);
        if (region.xenMmapFlags() != 0) {
            throw ProtocolException.invalid("Xen mapping flags 0x" + Integer.toHexString(region.xenMmapFlags())
                    + " need a Xen region mapper");
        }
        try {
            return GuestMemory.builder(mapper)
                    .mapFile(region.guestPhysAddr(), region.memorySize(), fd, region.mmapOffset())
                    .build();
        } catch (IllegalArgumentException e) {
            throw ProtocolException.invalid("region " + describe(region) + ": " + e.getMessage());
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
