package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.Payload.MemoryRegion;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.virtqueue.memory.AreaMapper;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MappingKind;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Maps what the front-end shares by fd, through virtqueue's {@link AreaMapper}: memory-table regions and the
 * other fd-backed areas (dirty log, inflight buffer). Turns a description the area mapper refuses into a
 * {@link ProtocolException} naming it. Never keeps {@code fd}; the caller closes it.
 */
public final class RegionMapper {
    private static final Logger LOG = LoggerFactory.getLogger(RegionMapper.class);

    private final AreaMapper areas;

    public RegionMapper(AreaMapper areas) {
        this.areas = areas;
    }

    /**
     * A memory-table region: a single-region memory owning its mapping (closing it unmaps). Its xen_mmap_flags
     * (0 in 32-byte entries) choose the {@link MappingKind}; an invalid set, or a Xen kind this host cannot map,
     * is refused and nothing is mapped.
     */
    public GuestMemory map(MemoryRegion region, int fd) throws ProtocolException, ErrnoException {
        validate(region);
        try {
            MappingKind kind = MappingKind.ofXenFlags(region.xenMmapFlags());
            if ((region.xenMmapFlags() & MappingKind.XEN_MMAP_FLAG_NO_ADVANCE_MAP_SPEC_TEXT) != 0) {
                LOG.warn("region {}: NO_ADVANCE_MAP as bit 8 (the spec text's 0x100; front-ends send 0x8), accepted",
                        describe(region));
            }
            return areas.map(kind, region.guestPhysAddr(), region.memorySize(), fd, region.mmapOffset(),
                    region.xenMmapData());
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
        String xen = r.xenMmapFlags() != 0 || r.xenMmapData() != 0
                ? " xen flags 0x%x domain %d".formatted(r.xenMmapFlags(), r.xenMmapData()) : "";
        return "[gpa 0x%x size 0x%x uva 0x%x offset 0x%x%s]".formatted(r.guestPhysAddr(), r.memorySize(),
                r.userAddr(), r.mmapOffset(), xen);
    }
}
