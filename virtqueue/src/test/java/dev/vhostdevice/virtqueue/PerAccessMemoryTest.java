package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.OnDemandMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Buffers in memory mapped per access (Xen grants without advance mapping): the walker maps each piece for its
 * chain, read-only when device-readable, and every mapping is undone before the used entry is published. The
 * device code (reader, writer) is the same as over ordinary memory.
 */
class PerAccessMemoryTest {
    static final long RINGS = 0;
    static final long WINDOW = 0x10_0000;
    static final long WINDOW_SIZE = 0x10_0000;

    /** Maps slices of one native buffer, each with its own arena; counts what is live. */
    final class Window implements OnDemandMemory {
        final MemorySegment backing = Arena.ofAuto().allocate(WINDOW_SIZE, 4096);
        final List<String> maps = new ArrayList<>();
        int live;
        int usedIdxAtLastUnmap = -1;
        long failAt = -1;
        boolean released;

        @Override
        public Mapping map(long offset, long length, boolean writable) throws ErrnoException {
            if (offset == failAt) {
                throw new ErrnoException("IOCTL_GNTDEV_MAP_GRANT_REF", Errno.EINVAL);
            }
            maps.add((writable ? "w " : "r ") + Long.toHexString(offset) + "+" + length);
            Arena arena = Arena.ofShared();
            MemorySegment segment = MemorySegment.ofAddress(backing.address() + offset).reinterpret(length, arena, null);
            live++;
            return new Mapping() {
                @Override
                public MemorySegment segment() {
                    return segment;
                }

                @Override
                public void unmap() {
                    if (arena.scope().isAlive()) {
                        usedIdxAtLastUnmap = driver.usedIdx();
                        arena.close();
                        live--;
                    }
                }
            };
        }

        @Override
        public void release() {
            released = true;
        }
    }

    Window window;
    GuestMemory memory;
    DriverQueue driver;
    SplitQueue queue;
    final Chain chain = new Chain();

    @BeforeEach
    void setUp() throws Exception {
        window = new Window();
        memory = GuestMemory.builder().allocate(RINGS, 0x10_0000).onDemand(WINDOW, WINDOW_SIZE, window).build();
        driver = DriverQueue.layout(memory, 64, 0x1000);
        queue = new SplitQueue("grant", 64);
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
    }

    @AfterEach
    void tearDown() {
        memory.close();
        assertTrue(window.released, "closing the memory releases the region");
    }

    @Test
    void piecesAreMappedReadOnlyOrWritableAndUnmappedBeforeTheUsedIndexMoves() {
        window.backing.set(ValueLayout.JAVA_INT_UNALIGNED, 0x2010, 0x11223344);
        int head = driver.add(readable(WINDOW + 0x2010, 4), writable(WINDOW + 0x5000, 8));
        assertTrue(queue.pop(chain));
        assertEquals(List.of("r 2010+4", "w 5000+8"), window.maps);
        assertEquals(2, window.live);
        assertEquals(0x11223344, chain.reader().readInt());
        chain.writer().writeLong(0x0102030405060708L);
        queue.addUsed(chain);
        assertEquals(0, window.live);
        assertEquals(0, window.usedIdxAtLastUnmap, "unmapped while the used index still said 0");
        assertEquals(new DriverQueue.Used(head, 8), driver.pollUsed());
        assertEquals(0x0102030405060708L, window.backing.get(ValueLayout.JAVA_LONG_UNALIGNED, 0x5000));
        assertThrows(IllegalStateException.class, () -> chain.pieceSegment(0).get(ValueLayout.JAVA_BYTE, 0),
                "an unmapped piece can no longer be touched");
    }

    @Test
    void completingByHeadUnmapsTooAndTheCommonRegionsMapNothing() {
        int inRam = driver.add(writable(0x8000, 16));
        int inWindow = driver.add(writable(WINDOW + 0x9000, 16));
        Chain second = new Chain();
        assertTrue(queue.pop(chain));
        assertTrue(queue.pop(second));
        assertEquals(1, window.live, "only the per-access piece is mapped");
        queue.addUsed(inWindow, 0);
        assertEquals(0, window.live);
        queue.addUsed(inRam, 0);
        assertEquals(inWindow, driver.pollUsed().head());
        assertEquals(inRam, driver.pollUsed().head());
    }

    @Test
    void aBufferThatCannotBeMappedFailsThatRequestOnly() {
        window.failAt = 0x3000;
        int bad = driver.add(readable(WINDOW + 0x1000, 8), writable(WINDOW + 0x3000, 8));
        int good = driver.add(writable(WINDOW + 0x4000, 8));
        assertTrue(queue.pop(chain));
        assertEquals(bad, chain.head());
        assertEquals(ChainFault.BUFFER_NOT_MAPPABLE, chain.fault());
        assertEquals(0, window.live, "what was mapped before the failure is undone");
        queue.addUsed(chain);
        assertTrue(queue.pop(chain));
        assertEquals(good, chain.head());
        assertTrue(chain.isValid());
        queue.addUsed(chain);
        assertFalse(queue.isBroken());
        assertEquals(0, window.live);
    }

    @Test
    void anIndirectTableThereIsMappedReadOnlyForTheWalk() {
        long table = WINDOW + 0x6000;
        // The driver kit writes tables through guest memory; this table lives in the window's backing.
        MemorySegment t = window.backing.asSlice(0x6000, 32);
        t.set(ValueLayout.JAVA_LONG_UNALIGNED, 0, WINDOW + 0x7000);
        t.set(ValueLayout.JAVA_LONG_UNALIGNED, 8, 4L | 1L << 32 | 1L << 48); // len 4, NEXT, next 1
        t.set(ValueLayout.JAVA_LONG_UNALIGNED, 16, WINDOW + 0x7100);
        t.set(ValueLayout.JAVA_LONG_UNALIGNED, 24, 8L | (2L << 32)); // len 8, WRITE
        int head = driver.prepare(readable(table, 32));
        driver.writeDescriptor(head, table, 32, 4 /* INDIRECT */, 0);
        driver.publish(head);
        assertTrue(queue.pop(chain));
        assertTrue(chain.isValid(), String.valueOf(chain.fault()));
        assertEquals(List.of("r 6000+32", "r 7000+4", "w 7100+8"), window.maps);
        queue.addUsed(chain);
        assertEquals(0, window.live);
    }

    @Test
    void stoppingTheQueueUnmapsWhatItsChainsHeld() {
        driver.add(writable(WINDOW, 4096), writable(WINDOW + 0x10000, 100));
        assertTrue(queue.pop(chain));
        assertEquals(2, window.live);
        queue.stop();
        assertEquals(0, window.live);
    }
}
