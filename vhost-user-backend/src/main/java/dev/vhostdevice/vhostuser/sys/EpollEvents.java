package dev.vhostdevice.vhostuser.sys;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A reusable array of {@code struct epoll_event} for {@link Linux#epollWait}. On x86_64 the struct is packed
 * (12 bytes, data at 4); elsewhere it is 16 bytes with data at 8.
 */
public final class EpollEvents {
    static final boolean PACKED = "amd64".equals(System.getProperty("os.arch"))
            || "x86_64".equals(System.getProperty("os.arch"));
    static final long SIZE = PACKED ? 12 : 16;
    static final long DATA_OFFSET = PACKED ? 4 : 8;

    private final MemorySegment segment;
    private final int capacity;

    public EpollEvents(int capacity, Arena arena) {
        this.capacity = capacity;
        this.segment = arena.allocate(SIZE * capacity, 8);
    }

    public int capacity() {
        return capacity;
    }

    public MemorySegment segment() {
        return segment;
    }

    public int events(int index) {
        return segment.get(ValueLayout.JAVA_INT_UNALIGNED, SIZE * index);
    }

    public long data(int index) {
        return segment.get(ValueLayout.JAVA_LONG_UNALIGNED, SIZE * index + DATA_OFFSET);
    }

    /** For substitute {@link Linux} implementations. */
    public void set(int index, int events, long data) {
        segment.set(ValueLayout.JAVA_INT_UNALIGNED, SIZE * index, events);
        segment.set(ValueLayout.JAVA_LONG_UNALIGNED, SIZE * index + DATA_OFFSET, data);
    }
}
