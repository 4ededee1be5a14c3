package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A request travels driver → device → driver through the rings, for each chain shape a Linux driver makes. */
class SplitQueueRoundTripTest {
    private GuestMemory memory;
    private DriverQueue driver;
    private SplitQueue queue;
    private final Chain chain = new Chain();

    @BeforeEach
    void setUp() throws Exception {
        memory = GuestMemory.allocate(0, 1 << 20);
        driver = DriverQueue.layout(memory, 256, 0x1000);
        queue = new SplitQueue("test", 256);
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
    }

    @AfterEach
    void tearDown() {
        memory.close();
    }

    @Test
    void aReadableThenWritableChainIsReadAndAnswered() {
        driver.write(0x10000, "ping".getBytes());
        int head = driver.add(readable(0x10000, 4), writable(0x20000, 8));

        assertTrue(queue.pop(chain));
        assertEquals(head, chain.head());
        assertTrue(chain.isValid());
        assertEquals(4, chain.readableBytes());
        assertEquals(8, chain.writableBytes());
        byte[] request = new byte[4];
        chain.reader().read(request, 0, 4);
        assertArrayEquals("ping".getBytes(), request);
        chain.writer().writeInt(0x706f6e67);
        queue.addUsed(chain);

        DriverQueue.Used used = driver.pollUsed();
        assertEquals(new DriverQueue.Used(head, 4), used);
        assertArrayEquals(new byte[] {0x67, 0x6e, 0x6f, 0x70}, driver.read(0x20000, 4));
        assertFalse(queue.pop(chain));
        assertNull(driver.pollUsed());
    }

    @Test
    void heapBackedGuestMemoryServesTheSameWay() throws Exception {
        try (GuestMemory heap = GuestMemory.builder().heap(0, 1 << 16).build()) {
            DriverQueue d = DriverQueue.layout(heap, 8, 0x1000);
            SplitQueue q = new SplitQueue("heap", 8);
            d.configure(q);
            q.activate(heap);
            d.write(0x8000, new byte[] {1, 2, 3, 4});
            int head = d.add(readable(0x8000, 4), writable(0x9000, 4));
            assertTrue(q.pop(chain));
            chain.writer().writeInt(chain.reader().readInt() + 1);
            q.addUsed(chain);
            assertEquals(new DriverQueue.Used(head, 4), d.pollUsed());
            assertArrayEquals(new byte[] {2, 2, 3, 4}, d.read(0x9000, 4));
        }
    }

    @Test
    void anIndirectChainAtAnOddAddressIsWalked() {
        int head = driver.addIndirect(0x7001, readable(0x10000, 3), readable(0x10003, 5), writable(0x20000, 16));

        assertTrue(queue.pop(chain));
        assertEquals(head, chain.head());
        assertTrue(chain.isValid());
        assertEquals(8, chain.readableBytes());
        assertEquals(16, chain.writableBytes());
        assertEquals(4, chain.descriptorCount());
    }

    @Test
    void fieldsSplitAcrossDescriptorsAreReassembled() {
        driver.write(0x10000, new byte[] {1, 2});
        driver.write(0x10100, new byte[] {3, 4, 5, 6, 7, 8});
        driver.add(readable(0x10000, 2), readable(0x10100, 6), writable(0x20000, 1), writable(0x20100, 7));

        assertTrue(queue.pop(chain));
        assertEquals(0x0807060504030201L, chain.reader().readLong());
        chain.writer().writeLong(0x1122334455667788L);
        queue.addUsed(chain);

        assertEquals(8, driver.pollUsed().length());
        assertArrayEquals(new byte[] {(byte) 0x88}, driver.read(0x20000, 1));
        assertArrayEquals(new byte[] {0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, driver.read(0x20100, 7));
    }
}
