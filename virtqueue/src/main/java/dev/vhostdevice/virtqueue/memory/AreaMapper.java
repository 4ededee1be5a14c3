package dev.vhostdevice.virtqueue.memory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one way this project maps an fd-backed area: guest RAM regions of every {@link MappingKind}, the dirty log,
 * the inflight buffer. Each call returns a one-region {@link GuestMemory} that owns its mapping (closing it
 * unmaps). Plain fds go through {@link MemoryMapper}, Xen's privcmd and gntdev through {@link XenIo}: both seams
 * can be substituted.
 */
public final class AreaMapper {
    private static final Logger LOG = LoggerFactory.getLogger(AreaMapper.class);

    private final MemoryMapper system;
    private final XenMapper xen;

    public AreaMapper(MemoryMapper system, XenIo xen) {
        this.system = system;
        this.xen = new XenMapper(xen);
    }

    public AreaMapper(MemoryMapper system) {
        this(system, XenIo.system());
    }

    public static AreaMapper system() {
        return new AreaMapper(MemoryMapper.system());
    }

    /**
     * {@code size} bytes of {@code fd} from {@code fileOffset}, shared read-write, at {@code guestAddress}.
     * Throws {@link IllegalArgumentException} for an area the file does not hold (see
     * {@link GuestMemory.Builder#mapFile}).
     */
    public GuestMemory mapShared(long guestAddress, long size, int fd, long fileOffset) throws ErrnoException {
        return GuestMemory.builder(system).mapFile(guestAddress, size, fd, fileOffset).build();
    }

    /**
     * A guest RAM region of {@code kind}. Xen kinds need a zero {@code fileOffset} and a 16-bit {@code domid}
     * ({@link IllegalArgumentException} otherwise), a host with {@code /dev/xen} ({@link ErrnoException}
     * ENODEV otherwise) and with 4 KiB pages (EOPNOTSUPP otherwise): nothing is ever mapped as plain memory in
     * their place. The caller keeps {@code fd};
     * regions that need it later keep their own copy.
     */
    public GuestMemory map(MappingKind kind, long guestAddress, long size, int fd, long fileOffset, int domid)
            throws ErrnoException {
        if (kind == MappingKind.SHARED_FD) {
            return mapShared(guestAddress, size, fd, fileOffset);
        }
        if (fileOffset != 0) {
            throw new IllegalArgumentException(kind + " region with mmap_offset 0x" + Long.toHexString(fileOffset)
                    + " (must be 0)");
        }
        if ((domid & ~0xFFFF) != 0) {
            throw new IllegalArgumentException(kind + " region for domain " + Integer.toUnsignedString(domid)
                    + " (Xen domain ids are 16 bits)");
        }
        GuestMemory.Builder builder = GuestMemory.builder(system);
        try {
            GuestRegion region = switch (kind) {
                case XEN_FOREIGN -> xen.foreign(guestAddress, size, fd, domid, builder.owner());
                case XEN_GRANT -> xen.grant(guestAddress, size, fd, domid, builder.owner());
                case XEN_GRANT_PER_ACCESS -> null;
                case SHARED_FD -> throw new AssertionError();
            };
            if (region == null) {
                builder.onDemand(guestAddress, size, xen.grantPerAccess(guestAddress, size, fd, domid).onDemand());
            } else {
                builder.add(region);
            }
            LOG.info("mapped a {} region of 0x{} bytes at 0x{} of domain {}", kind, Long.toHexString(size),
                    Long.toHexString(guestAddress), domid);
            return builder.build();
        } catch (ErrnoException | RuntimeException e) {
            builder.discard();
            throw e;
        }
    }
}
