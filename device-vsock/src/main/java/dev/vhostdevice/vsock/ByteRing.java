package dev.vhostdevice.vsock;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A connection's bytes on their way to the host socket that the socket did not take at once: a fixed native
 * ring of the advertised buf_alloc, so a guest within its credit always fits. Allocated only when a host
 * reader falls behind, freed with the connection.
 */
final class ByteRing implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer;
    private final long capacity;
    private long head;
    private long size;

    ByteRing(long capacity) {
        this.capacity = capacity;
        this.buffer = arena.allocate(capacity, 64);
    }

    long size() {
        return size;
    }

    long free() {
        return capacity - size;
    }

    boolean isEmpty() {
        return size == 0;
    }

    /** Appends {@code length} bytes of {@code source}; the caller checked {@link #free()}. */
    void append(MemorySegment source, long offset, long length) {
        if (length > free()) {
            throw new IllegalStateException("ring overflow: " + length + " > " + free());
        }
        long tail = (head + size) % capacity;
        long first = Math.min(length, capacity - tail);
        MemorySegment.copy(source, offset, buffer, tail, first);
        if (first < length) {
            MemorySegment.copy(source, offset + first, buffer, 0, length - first);
        }
        size += length;
    }

    /** Adds the first {@code length} queued bytes (at most {@link #size()}) to {@code vector}: one or two pieces. */
    void addTo(IoVector vector, long length) {
        long first = Math.min(length, capacity - head);
        vector.add(buffer, head, first);
        if (first < length) {
            vector.add(buffer, 0, length - first);
        }
    }

    void consume(long length) {
        head = (head + length) % capacity;
        size -= length;
        if (size == 0) {
            head = 0;
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
