package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * The dirty-page bitmap from SET_LOG_BASE: bit (gpa / 4096) of the map, set atomically (the front-end reads and
 * clears it concurrently). Bits are set with 32-bit atomic ORs on little-endian words, which is the byte order
 * of the bitmap's bytes on a little-endian host.
 */
final class DirtyLogArea implements AutoCloseable {
    static final int VHOST_LOG_PAGE = 4096;
    private static final VarHandle WORD =
            ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final GuestMemory owner;
    private final MemorySegment bitmap;
    /** Written and read on the device worker only. */
    private boolean dirtied;

    /** {@code owner} is a one-region memory holding the mapped log (GPA 0, so the segment is the map). */
    DirtyLogArea(GuestMemory owner) {
        this.owner = owner;
        this.bitmap = owner.region(0).segment();
    }

    void mark(long guestAddress, long length) {
        if (length <= 0) {
            return;
        }
        long first = Long.divideUnsigned(guestAddress, VHOST_LOG_PAGE);
        long last = Long.divideUnsigned(guestAddress + length - 1, VHOST_LOG_PAGE);
        for (long page = first; page <= last; page++) {
            long word = (page >>> 5) * 4;
            if (word + 4 > bitmap.byteSize()) {
                break; // pages only grow from here: the rest is past a log the front-end sized too small
            }
            WORD.getAndBitwiseOr(bitmap, word, 1 << (page & 31));
        }
        dirtied = true;
    }

    /** Whether pages were marked since the last call (then the log eventfd is signalled). */
    boolean takeDirtied() {
        boolean was = dirtied;
        dirtied = false;
        return was;
    }

    @Override
    public void close() {
        owner.close();
    }
}
