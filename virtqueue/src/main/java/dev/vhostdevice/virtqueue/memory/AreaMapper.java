package dev.vhostdevice.virtqueue.memory;

/**
 * The one way this project maps an fd-backed area: guest RAM regions, the dirty log, the inflight buffer. Each
 * call returns a one-region {@link GuestMemory} that owns its mapping (closing it unmaps). The kind of an area
 * decides how it is mapped; every kind's system calls go through a substitutable seam.
 */
public final class AreaMapper {
    private final MemoryMapper system;

    public AreaMapper(MemoryMapper system) {
        this.system = system;
    }

    public static AreaMapper system() {
        return new AreaMapper(MemoryMapper.system());
    }

    public MemoryMapper memoryMapper() {
        return system;
    }

    /**
     * {@code size} bytes of {@code fd} from {@code fileOffset}, shared read-write, at {@code guestAddress}.
     * Throws {@link IllegalArgumentException} for an area the file does not hold (see
     * {@link GuestMemory.Builder#mapFile}).
     */
    public GuestMemory mapShared(long guestAddress, long size, int fd, long fileOffset) throws ErrnoException {
        return GuestMemory.builder(system).mapFile(guestAddress, size, fd, fileOffset).build();
    }
}
