package dev.vhostdevice.virtqueue.bench;

import static dev.vhostdevice.virtqueue.PackedRing.DESC_ADDR;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_FLAGS;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_ID;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_LEN;
import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;

import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.PackedRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.PackedDriverQueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * One packed ring for the benchmarks, the counterpart of {@link BenchRing}: the same guest memory and layout,
 * the device's {@link PackedQueue}, and an allocation-free driver fast path for the timed code. A packed driver
 * cannot re-publish a chain by its head alone: {@link #publish} writes the chain's descriptors into the next ring
 * slots (id, addr, len, flags; the head's flags last, with release), as Linux's virtqueue_add_packed does, and
 * {@link #consumeUsed} reads used descriptors back (acquire of each flags word) and skips by each id's slots.
 */
final class PackedBenchRing implements AutoCloseable {
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final ValueLayout.OfShort U16_PLAIN = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32_PLAIN = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64_PLAIN = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final GuestMemory memory;
    final PackedQueue queue;
    final int size;
    private final MemorySegment ring;
    /** Per chain (its id): the descriptors' address, length and flags (WRITE, NEXT, INDIRECT). */
    private final long[][] addresses;
    private final int[][] lengths;
    private final int[][] flags;
    private int nextAvail;
    private boolean availWrap = true;
    private int lastUsed;
    private boolean usedWrap = true;

    PackedBenchRing(String memoryKind, int size, int chains) throws Exception {
        this.memory = BenchRing.guestMemory(memoryKind);
        this.size = size;
        PackedDriverQueue layout = PackedDriverQueue.layout(memory, size, BenchRing.RING_BASE);
        this.queue = new PackedQueue("bench", size);
        layout.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
        this.ring = memory.slice(layout.descAddress(), (long) DESCRIPTOR_SIZE * size);
        this.addresses = new long[chains][];
        this.lengths = new int[chains][];
        this.flags = new int[chains][];
    }

    /** Set-up: chain {@code id} is these buffers (direct). */
    void prepare(int id, Buffer... buffers) {
        addresses[id] = new long[buffers.length];
        lengths[id] = new int[buffers.length];
        flags[id] = new int[buffers.length];
        for (int k = 0; k < buffers.length; k++) {
            addresses[id][k] = buffers[k].address();
            lengths[id][k] = buffers[k].length();
            flags[id][k] = (buffers[k].writable() ? VIRTQ_DESC_F_WRITE : 0)
                    | (k < buffers.length - 1 ? VIRTQ_DESC_F_NEXT : 0);
        }
    }

    /** Set-up: chain {@code id} is one INDIRECT descriptor whose packed table at {@code table} holds the buffers. */
    void prepareIndirect(int id, long table, Buffer... buffers) {
        MemorySegment entries = memory.slice(table, (long) DESCRIPTOR_SIZE * buffers.length);
        for (int k = 0; k < buffers.length; k++) {
            long at = (long) DESCRIPTOR_SIZE * k;
            entries.set(U64_PLAIN, at + DESC_ADDR, buffers[k].address());
            entries.set(U32_PLAIN, at + DESC_LEN, buffers[k].length());
            entries.set(U16_PLAIN, at + DESC_FLAGS, (short) (buffers[k].writable() ? VIRTQ_DESC_F_WRITE : 0));
        }
        addresses[id] = new long[] {table};
        lengths[id] = new int[] {buffers.length * DESCRIPTOR_SIZE};
        flags[id] = new int[] {VIRTQ_DESC_F_INDIRECT};
    }

    /** Driver: makes chain {@code id} available in the next slots. */
    void publish(int id) {
        long[] a = addresses[id];
        int[] l = lengths[id];
        int[] f = flags[id];
        long headAt = (long) DESCRIPTOR_SIZE * nextAvail;
        short headFlags = 0;
        for (int k = 0; k < a.length; k++) {
            long at = (long) DESCRIPTOR_SIZE * nextAvail;
            ring.set(U64_PLAIN, at + DESC_ADDR, a[k]);
            ring.set(U32_PLAIN, at + DESC_LEN, l[k]);
            ring.set(U16_PLAIN, at + DESC_ID, (short) id);
            short descFlags = (short) (PackedRing.availFlags(availWrap) | f[k]);
            if (k == 0) {
                headFlags = descFlags;
            } else {
                ring.set(U16_PLAIN, at + DESC_FLAGS, descFlags);
            }
            if (++nextAvail == size) {
                nextAvail = 0;
                availWrap = !availWrap;
            }
        }
        U16.setRelease(ring, headAt + DESC_FLAGS, headFlags);
    }

    /** Driver: consumes every used descriptor published so far; the same checksum as {@link BenchRing}. */
    long consumeUsed() {
        long sum = 0;
        while (true) {
            long at = (long) DESCRIPTOR_SIZE * lastUsed;
            int f = Short.toUnsignedInt((short) U16.getAcquire(ring, at + DESC_FLAGS));
            boolean avail = (f & PackedRing.VIRTQ_DESC_F_AVAIL) != 0;
            boolean used = (f & PackedRing.VIRTQ_DESC_F_USED) != 0;
            if (avail != used || used != usedWrap) {
                return sum;
            }
            int id = Short.toUnsignedInt(ring.get(U16_PLAIN, at + DESC_ID));
            sum += BenchRing.usedChecksum(id, ring.get(U32_PLAIN, at + DESC_LEN));
            lastUsed += addresses[id].length;
            if (lastUsed >= size) {
                lastUsed -= size;
                usedWrap = !usedWrap;
            }
        }
    }

    @Override
    public void close() {
        memory.close();
    }
}
