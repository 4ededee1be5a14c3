package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.device.InflightTracker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * One split queue's part of the inflight buffer (vhost-user-protocol.md §4.5, libvhost-user's layout, which a
 * restarted back-end must read back): a 16-byte header (features u64, version u16, desc_num u16,
 * last_batch_head u16, used_idx u16) then one 16-byte DescStateSplit per descriptor (inflight u8 @0, next u16
 * @6, counter u64 @8).
 */
final class InflightQueueRegion implements InflightTracker {
    static final int HEADER = 16;
    static final int DESC_STATE = 16;
    static final int VERSION = 1;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment region;
    /** Descriptor states in the region (the buffer's queue size; the ring may be smaller). */
    private final int descNum;
    /** The ring's size: heads at or beyond it are never resubmitted. */
    private final int ringSize;
    private long counter;
    private int[] resubmit = new int[0];
    private int resubmitNext;

    /** The per-queue stride: libvhost-user's formula, kept forever so a restarted back-end parses its predecessor's buffer. */
    static long stride(int queueSize) {
        long bytes = (long) DESC_STATE * queueSize + 2;
        return (bytes + 63) & ~63L;
    }

    /** {@code ringSize} (at most {@code descNum}): entries for heads beyond it cannot be requests of this ring. */
    InflightQueueRegion(MemorySegment region, int descNum, int ringSize) {
        this.region = region;
        this.descNum = descNum;
        this.ringSize = Math.min(ringSize, descNum);
    }

    /**
     * Reads the region at ring start: initialises a fresh one, or repairs an interrupted last batch and collects
     * the heads still in flight (in submission order). Returns how many are in flight.
     */
    int prepare(int usedIndexInRing) {
        int version = Short.toUnsignedInt(region.get(U16, 8));
        int recordedDescNum = Short.toUnsignedInt(region.get(U16, 10));
        if (version != VERSION || recordedDescNum != descNum) {
            region.fill((byte) 0);
            region.set(U16, 8, (short) VERSION);
            region.set(U16, 10, (short) this.descNum);
            region.set(U16, 14, (short) usedIndexInRing);
            resubmit = new int[0];
            resubmitNext = 0;
            counter = 1;
            return 0;
        }
        if (Short.toUnsignedInt(region.get(U16, 14)) != usedIndexInRing) {
            // The previous back-end published the used entry but died before recording it: not in flight.
            int last = Short.toUnsignedInt(region.get(U16, 12));
            if (last < descNum) {
                region.set(ValueLayout.JAVA_BYTE, desc(last), (byte) 0);
            }
            region.set(U16, 14, (short) usedIndexInRing);
        }
        // The buffer is front-end memory: counters are arbitrary u64 values, and entries for heads the ring
        // cannot have are stale (cleared, neither resubmitted nor counted).
        int[] heads = new int[ringSize];
        long[] counters = new long[descNum];
        int count = 0;
        long maxCounter = 0;
        for (int head = 0; head < descNum; head++) {
            if (region.get(ValueLayout.JAVA_BYTE, desc(head)) != 0) {
                if (head >= ringSize) {
                    region.set(ValueLayout.JAVA_BYTE, desc(head), (byte) 0);
                    continue;
                }
                long c = region.get(U64, desc(head) + 8);
                counters[head] = c;
                if (Long.compareUnsigned(c, maxCounter) > 0) {
                    maxCounter = c;
                }
                heads[count++] = head;
            }
        }
        resubmit = inCounterOrder(heads, count, counters);
        resubmitNext = 0;
        counter = maxCounter + 1;
        return count;
    }

    /** The first {@code count} of {@code heads} in ascending (unsigned) order of {@code counters[head]}, ties by head. */
    static int[] inCounterOrder(int[] heads, int count, long[] counters) {
        Integer[] order = new Integer[count];
        for (int i = 0; i < count; i++) {
            order[i] = heads[i];
        }
        Arrays.sort(order, (a, b) -> {
            int byCounter = Long.compareUnsigned(counters[a], counters[b]);
            return byCounter != 0 ? byCounter : Integer.compare(a, b);
        });
        int[] sorted = new int[count];
        for (int i = 0; i < count; i++) {
            sorted[i] = order[i];
        }
        return sorted;
    }

    private static long desc(int head) {
        return HEADER + (long) DESC_STATE * head;
    }

    @Override
    public int nextResubmit() {
        return resubmitNext < resubmit.length ? resubmit[resubmitNext++] : -1;
    }

    @Override
    public void popped(int head) {
        region.set(U64, desc(head) + 8, counter++);
        region.set(ValueLayout.JAVA_BYTE, desc(head), (byte) 1);
    }

    @Override
    public void completing(int head) {
        region.set(U16, 12, (short) head);
    }

    @Override
    public void completed(int head, int usedIndex) {
        region.set(ValueLayout.JAVA_BYTE, desc(head), (byte) 0);
        VarHandle.releaseFence();
        region.set(U16, 14, (short) usedIndex);
    }
}
