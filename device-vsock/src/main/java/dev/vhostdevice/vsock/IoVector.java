package dev.vhostdevice.vsock;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A reusable native {@code struct iovec[]}: the pieces of guest memory (or of a device buffer) one
 * {@code sendmsg}/{@code recvmsg} moves. Filled with raw addresses, so adding a piece allocates nothing; the
 * caller guarantees the pieces stay mapped for the call (guest memory is stable within a device callback).
 */
public final class IoVector {
    /** Linux's UIO_MAXIOV is 1024; a vsock packet needs a handful. */
    public static final int CAPACITY = 64;
    private static final long IOVEC_SIZE = 16;

    private final MemorySegment table;
    /** The same pieces as (segment, offset, length) for substitute seams that cannot use raw addresses. */
    private final MemorySegment[] segments = new MemorySegment[CAPACITY];
    private final long[] offsets = new long[CAPACITY];
    private final long[] lengths = new long[CAPACITY];
    private int count;
    private long bytes;

    public IoVector(Arena arena) {
        this.table = arena.allocate(IOVEC_SIZE * CAPACITY, 8);
    }

    public void clear() {
        count = 0;
        bytes = 0;
    }

    /** Adds {@code length} bytes of native {@code segment} at {@code offset}; false when the table is full. */
    public boolean add(MemorySegment segment, long offset, long length) {
        if (length <= 0) {
            return true;
        }
        if (count == CAPACITY) {
            return false;
        }
        if (!segment.isNative() || offset < 0 || offset + length > segment.byteSize()) {
            throw new IllegalArgumentException("piece outside its segment or not native");
        }
        table.set(ValueLayout.JAVA_LONG, IOVEC_SIZE * count, segment.address() + offset);
        table.set(ValueLayout.JAVA_LONG, IOVEC_SIZE * count + 8, length);
        segments[count] = segment;
        offsets[count] = offset;
        lengths[count] = length;
        count++;
        bytes += length;
        return true;
    }

    public int count() {
        return count;
    }

    /** Bytes in all pieces. */
    public long bytes() {
        return bytes;
    }

    public MemorySegment segment(int i) {
        return segments[i];
    }

    public long offset(int i) {
        return offsets[i];
    }

    public long length(int i) {
        return lengths[i];
    }

    MemorySegment table() {
        return table;
    }
}
