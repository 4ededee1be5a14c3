package dev.vhostdevice.virtqueue.testing;

/**
 * Hands out guest-physical ranges from a window of guest memory, as a driver would for its buffers. A bump
 * allocator: nothing is freed until {@link #reset()}.
 */
public final class GuestAllocator {
    private final long start;
    private final long end;
    private long next;

    /** Allocates from [{@code start}, {@code start + size}). */
    public GuestAllocator(long start, long size) {
        this.start = start;
        this.end = start + size;
        this.next = start;
    }

    /** {@code length} bytes aligned to {@code alignment} (a power of two). */
    public long allocate(long length, long alignment) {
        long at = (next + alignment - 1) & -alignment;
        if (length < 0 || at + length > end || at < next) {
            throw new IllegalStateException("guest allocator exhausted: " + length + " bytes at 0x" + Long.toHexString(at));
        }
        next = at + length;
        return at;
    }

    public long allocate(long length) {
        return allocate(length, 8);
    }

    public void reset() {
        next = start;
    }
}
