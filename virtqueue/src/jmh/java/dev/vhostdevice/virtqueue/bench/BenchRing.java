package dev.vhostdevice.virtqueue.bench;

import static dev.vhostdevice.virtqueue.VirtioRing.AVAIL_IDX;
import static dev.vhostdevice.virtqueue.VirtioRing.AVAIL_RING;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_IDX;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_RING;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_ELEMENT_SIZE;

import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * One split ring for the benchmarks: guest memory, the driver kit (used only at set-up, to lay out the rings and
 * write descriptors), the device's {@link SplitQueue}, and an allocation-free driver fast path used inside the
 * timed code: {@link #publish} re-publishes an already written chain (avail slot + release of avail.idx, as Linux's
 * virtqueue_add does per buffer) and {@link #consumeUsed} reads the used entries back (acquire of used.idx, then the
 * elements), so the ring never fills and both sides of the protocol are paid for.
 */
final class BenchRing implements AutoCloseable {
    static final String ALLOCATE = "allocate";
    static final String MEMFD = "memfd";

    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final ValueLayout.OfShort U16_PLAIN = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32_PLAIN = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Guest-physical layout: rings at RING_BASE, indirect tables from TABLES, data buffers from DATA. */
    static final long RING_BASE = 0x1000;
    static final long TABLES = 0x1_0000;
    static final long DATA = 0x10_0000;
    static final long MEMORY_BYTES = 0x40_0000; // 4 MiB

    final GuestMemory memory;
    final DriverQueue driver;
    final SplitQueue queue;
    final int size;
    private final MemorySegment avail;
    private final MemorySegment used;
    private int availIdx;
    private int lastUsed;

    BenchRing(String memoryKind, int size) throws Exception {
        this.memory = guestMemory(memoryKind);
        this.size = size;
        this.driver = DriverQueue.layout(memory, size, RING_BASE);
        this.queue = new SplitQueue("bench", size);
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
        this.avail = memory.slice(driver.availAddress(), VirtioRing.availRingBytes(size));
        this.used = memory.slice(driver.usedAddress(), VirtioRing.usedRingBytes(size));
    }

    /** The benchmarks' guest memory: {@link #ALLOCATE} or {@link #MEMFD}, every page touched once. */
    static GuestMemory guestMemory(String memoryKind) throws Exception {
        GuestMemory memory = switch (memoryKind) {
            case ALLOCATE -> GuestMemory.allocate(0, MEMORY_BYTES);
            case MEMFD -> {
                MemoryMapper mapper = MemoryMapper.system();
                int fd = mapper.createMemoryFile("vq-bench", MEMORY_BYTES);
                try {
                    yield GuestMemory.builder(mapper).mapFile(0, MEMORY_BYTES, fd, 0).build();
                } finally {
                    mapper.close(fd); // the mapping outlives the descriptor
                }
            }
            default -> throw new IllegalArgumentException("memory kind: " + memoryKind);
        };
        // Touch every page once so no page fault lands inside a measurement (memfd pages are lazily allocated).
        memory.region(0).segment().fill((byte) 0);
        return memory;
    }

    /** Driver: makes the chain at {@code head} (descriptors already written) available again. */
    void publish(int head) {
        avail.set(U16_PLAIN, AVAIL_RING + 2L * (availIdx & (size - 1)), (short) head);
        availIdx = (availIdx + 1) & 0xFFFF;
        U16.setRelease(avail, (long) AVAIL_IDX, (short) availIdx);
    }

    /** Driver: consumes every used entry published so far; returns a checksum of (head, length) pairs. */
    long consumeUsed() {
        int usedIdx = Short.toUnsignedInt((short) U16.getAcquire(used, (long) USED_IDX));
        long sum = 0;
        while (lastUsed != usedIdx) {
            long element = USED_RING + (long) USED_ELEMENT_SIZE * (lastUsed & (size - 1));
            sum += ((long) used.get(U32_PLAIN, element) << 32) + used.get(U32_PLAIN, element + 4);
            lastUsed = (lastUsed + 1) & 0xFFFF;
        }
        return sum;
    }

    /** Expected {@link #consumeUsed} checksum for one entry. */
    static long usedChecksum(int head, int length) {
        return ((long) head << 32) + length;
    }

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new IllegalStateException("benchmark set-up check failed: " + what);
        }
    }

    @Override
    public void close() {
        memory.close();
    }
}
