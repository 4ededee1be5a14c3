package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.lang.foreign.Arena;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Per-chain validation: each malformed chain is popped with a typed {@link ChainFault} and no buffers, its head
 * can be completed, and the next chain is served normally. Covers the chain-level CVE classes of virtqueue.md §7.
 */
class ChainValidationTest {
    private static final int SIZE = 16;
    private QueueFixture f;
    private DriverQueue driver;

    @BeforeEach
    void setUp() throws Exception {
        f = new QueueFixture(SIZE);
        driver = f.driver;
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    /** Pops the chain at {@code head}, expects {@code fault}, completes it, and checks a good chain follows. */
    private void expectFault(ChainFault fault) {
        Chain chain = f.popOne();
        assertEquals(fault, chain.fault(), chain::toString);
        assertEquals(0, chain.pieceCount());
        assertEquals(0, chain.readableBytes());
        assertEquals(0, chain.writableBytes());
        int head = chain.head();
        f.queue.addUsed(chain);
        assertEquals(new DriverQueue.Used(head, 0), driver.pollUsed());
        assertFalse(f.queue.isBroken());

        int good = driver.add(writable(0x40000, 8));
        Chain next = f.popOne();
        assertTrue(next.isValid());
        assertEquals(good, next.head());
        f.queue.addUsed(next);
        driver.pollUsed();
    }

    private void publishRaw(int head) {
        driver.publish(head);
    }

    // --- CVE class 1: loops and overlong chains -------------------------------------------------------

    @Test
    void aDescriptorLinkedToItselfIsALoop() {
        driver.writeDescriptor(5, 0x10000, 16, VIRTQ_DESC_F_NEXT, 5);
        publishRaw(5);
        expectFault(ChainFault.CHAIN_TOO_LONG);
    }

    @Test
    void aTwoCycleIsALoop() {
        driver.writeDescriptor(5, 0x10000, 16, VIRTQ_DESC_F_NEXT, 6);
        driver.writeDescriptor(6, 0x10010, 16, VIRTQ_DESC_F_NEXT, 5);
        publishRaw(5);
        expectFault(ChainFault.CHAIN_TOO_LONG);
    }

    @Test
    void aChainOfExactlyQueueSizeDescriptorsIsAccepted() {
        for (int i = 0; i < SIZE; i++) {
            driver.writeDescriptor(i, 0x10000 + 16L * i, 16, i < SIZE - 1 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
        }
        publishRaw(0);
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(SIZE, chain.descriptorCount());
        assertEquals(16L * SIZE, chain.readableBytes());
    }

    @Test
    void aLoopInsideAnIndirectTableIsCut() {
        driver.writeDescriptorAt(0x8000, 0x10000, 16, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptorAt(0x8010, 0x10010, 16, VIRTQ_DESC_F_NEXT, 0);
        driver.writeDescriptor(3, 0x8000, 32, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(3);
        expectFault(ChainFault.CHAIN_TOO_LONG);
    }

    @Test
    void lengthsSummingToExactly2To32Minus1AreAccepted() throws Exception {
        try (GuestMemory big = bigMemory()) {
            DriverQueue d = DriverQueue.layout(big, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("big", SIZE);
            d.configure(q);
            q.activate(big);
            d.add(writable(0x1_0000_0000L, 0x7FFF_FFFF), writable(0x1_8000_0000L - 1, 0x8000_0000));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertTrue(chain.isValid(), chain::toString);
            assertEquals(0xFFFF_FFFFL, chain.writableBytes());
        }
    }

    @Test
    void lengthsSummingTo2To32AreRefused() throws Exception {
        try (GuestMemory big = bigMemory()) {
            DriverQueue d = DriverQueue.layout(big, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("big", SIZE);
            d.configure(q);
            q.activate(big);
            d.add(writable(0x1_0000_0000L, 0x8000_0000), writable(0x1_8000_0000L, 0x8000_0000));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertEquals(ChainFault.TOTAL_LENGTH_OVERFLOW, chain.fault());
        }
    }

    @Test
    void aSelfLoopOverAHugeBufferOverflowsTheTotalBeforeItLoopsOut() throws Exception {
        try (GuestMemory big = bigMemory()) {
            DriverQueue d = DriverQueue.layout(big, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("big", SIZE);
            d.configure(q);
            q.activate(big);
            d.writeDescriptor(2, 0x1_0000_0000L, 0x4000_0000, VIRTQ_DESC_F_NEXT, 2);
            d.publish(2);
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertEquals(ChainFault.TOTAL_LENGTH_OVERFLOW, chain.fault());
        }
    }

    @Test
    void writesOver2GiBAreDirtyLoggedInFull() throws Exception {
        try (GuestMemory big = bigMemory()) {
            DriverQueue d = DriverQueue.layout(big, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("big", SIZE);
            d.configure(q);
            q.activate(big);
            java.util.List<long[]> dirty = new java.util.ArrayList<>();
            q.setDirtyLog((gpa, length) -> dirty.add(new long[] {gpa, length}));
            int head = d.add(writable(0x1_0000_0000L, 0xC000_0000));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            // Only the last byte is touched; the used length (3 GiB) still covers the whole buffer.
            chain.writer().seek(0xBFFF_FFFFL);
            chain.writer().writeByte(1);
            q.addUsed(chain);
            assertEquals(new DriverQueue.Used(head, 0xC000_0000), d.pollUsed());
            long bufferBytes = dirty.stream().filter(r -> r[0] >= 0x1_0000_0000L).mapToLong(r -> r[1]).sum();
            assertEquals(0xC000_0000L, bufferBytes, "every written byte must reach the dirty log");
        }
    }

    /** 1 MiB at 0 and 4 GiB at 4 GiB, the latter a memfd mapping so its pages stay untouched (lazy). */
    private static GuestMemory bigMemory() throws java.io.IOException {
        var mapper = dev.vhostdevice.virtqueue.memory.MemoryMapper.system();
        int fd = mapper.createMemoryFile("big", 0x1_0000_0000L);
        try {
            return GuestMemory.builder().allocate(0, 1 << 20).mapFile(0x1_0000_0000L, 0x1_0000_0000L, fd, 0).build();
        } finally {
            mapper.close(fd);
        }
    }

    // --- CVE class 3: zero-length descriptors -------------------------------------------------------------

    @Test
    void zeroLengthDescriptorsAreEmptyButCounted() {
        driver.add(readable(0x10000, 0), readable(0x10000, 4), writable(0x20000, 0), writable(0x20000, 4));
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(4, chain.descriptorCount());
        assertEquals(2, chain.pieceCount());
        assertEquals(4, chain.readableBytes());
        assertEquals(4, chain.writableBytes());
    }

    @Test
    void aChainWhoseOnlyWritableDescriptorIsEmptyCompletesWithLengthZero() {
        int head = driver.add(writable(0x20000, 0));
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(0, chain.writableBytes());
        f.queue.addUsed(chain);
        assertEquals(new DriverQueue.Used(head, 0), driver.pollUsed());
    }

    @Test
    void aZeroLengthIndirectTableIsRefused() {
        driver.writeDescriptor(0, 0x8000, 0, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_EMPTY);
    }

    @Test
    void aZeroLengthDescriptorOutsideMemoryIsHarmless() {
        driver.add(readable(0xFFFF_FFFF_FFFF_0000L, 0), writable(0x20000, 4));
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(1, chain.pieceCount());
    }

    // --- CVE class 4: the whole range, not just its start -----------------------------------------------

    @Test
    void aBufferEndingAtTheLastByteOfMemoryIsAccepted() {
        driver.add(writable(QueueFixture.MEMORY_SIZE - 16, 16));
        assertTrue(f.popOne().isValid());
    }

    @Test
    void aBufferOneBytePastTheEndOfMemoryIsRefused() {
        driver.add(writable(QueueFixture.MEMORY_SIZE - 16, 17));
        expectFault(ChainFault.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void aBufferStartingOutsideMemoryIsRefused() {
        driver.add(readable(QueueFixture.MEMORY_SIZE, 1));
        expectFault(ChainFault.BUFFER_OUT_OF_RANGE);
    }

    // --- CVE class 5: 64-bit wrap ------------------------------------------------------------------------

    @Test
    void aBufferWrappingPast2To64IsRefused() {
        driver.add(readable(0xFFFF_FFFF_FFFF_FFF0L, 0x20));
        expectFault(ChainFault.BUFFER_OUT_OF_RANGE);
    }

    @Test
    void anIndirectTableWrappingPast2To64IsRefused() {
        driver.writeDescriptor(0, 0xFFFF_FFFF_FFFF_FFF0L, 0x20, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE);
    }

    @Test
    void aBufferWrappingFromARegionAtTheTopOfTheAddressSpaceIsRefused() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            GuestMemory top = GuestMemory.builder()
                    .allocate(0, 1 << 16)
                    .add(new GuestRegion(-4096L, 4096, arena.allocate(4096, 4096)))
                    .build();
            DriverQueue d = DriverQueue.layout(top, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("top", SIZE);
            d.configure(q);
            q.activate(top);
            d.add(writable(-16L, 16));
            d.add(writable(-16L, 32));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertTrue(chain.isValid(), "a buffer ending exactly at 2^64 lies in memory");
            assertTrue(q.pop(chain));
            assertEquals(ChainFault.BUFFER_OUT_OF_RANGE, chain.fault());
        }
    }

    // --- CVE class 6: indirect table abuse -------------------------------------------------------------------

    @Test
    void anIndirectDescriptorInsideAnIndirectTableIsRefused() {
        driver.writeDescriptorAt(0x8000, 0x9000, 16, VIRTQ_DESC_F_INDIRECT, 0);
        driver.writeDescriptor(0, 0x8000, 16, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.NESTED_INDIRECT);
    }

    @Test
    void anIndirectTableLengthNotAMultipleOf16IsRefused() {
        driver.writeDescriptor(0, 0x8000, 17, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_BAD_LENGTH);
    }

    @Test
    void anIndirectTableLongerThanTheCapIsRefused() {
        f.queue.stop();
        f.queue.setIndirectCap(4);
        assertDoesNotThrow(() -> f.queue.activate(f.memory));
        driver.writeIndirectTable(0x8000, readable(0x10000, 1), readable(0x10000, 1), readable(0x10000, 1),
                readable(0x10000, 1), readable(0x10000, 1));
        driver.writeDescriptor(0, 0x8000, 5 * 16, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_TOO_LONG);
    }

    @Test
    void anIndirectTableOf65536EntriesIsRefusedByTheDefaultCap() {
        driver.writeDescriptor(0, 0x8000, 16 * 65536, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_TOO_LONG);
    }

    @Test
    void anIndirectTableOutsideMemoryIsRefused() {
        driver.writeDescriptor(0, QueueFixture.MEMORY_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE);
    }

    @Test
    void aNextIndexBeyondTheIndirectTableIsRefused() {
        driver.writeDescriptorAt(0x8000, 0x10000, 4, VIRTQ_DESC_F_NEXT, 2);
        driver.writeDescriptorAt(0x8010, 0x10000, 4, 0, 0);
        driver.writeDescriptor(0, 0x8000, 32, VIRTQ_DESC_F_INDIRECT, 0);
        publishRaw(0);
        expectFault(ChainFault.NEXT_OUT_OF_RANGE);
    }

    @Test
    void indirectTogetherWithNextFollowsTheTableAndIgnoresNext() {
        driver.writeIndirectTable(0x8003, readable(0x10000, 8), writable(0x20000, 8));
        driver.writeDescriptor(1, 0x30000, 64, 0, 0);
        driver.writeDescriptor(0, 0x8003, 32, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
        publishRaw(0);
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(8, chain.readableBytes());
        assertEquals(8, chain.writableBytes(), "descriptor 1 after the table is not part of the chain");
    }

    @Test
    void anIndirectDescriptorEndingADirectChainIsFollowed() {
        driver.writeIndirectTable(0x8000, writable(0x20000, 8));
        driver.writeDescriptor(0, 0x10000, 4, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptor(1, 0x8000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
        publishRaw(0);
        Chain chain = f.popOne();
        assertTrue(chain.isValid());
        assertEquals(4, chain.readableBytes());
        assertEquals(8, chain.writableBytes());
    }

    @Test
    void indirectWithoutTheNegotiatedFeatureIsRefused() throws Exception {
        f.queue.stop();
        f.queue.setIndirectAllowed(false);
        f.queue.activate(f.memory);
        driver.addIndirect(0x8000, readable(0x10000, 4));
        expectFault(ChainFault.INDIRECT_NOT_NEGOTIATED);
    }

    @Test
    void aDescriptorRewrittenAfterThePopDoesNotChangeTheChain() {
        driver.add(readable(0x10000, 4), writable(0x20000, 8));
        Chain chain = f.popOne();
        // The guest races: both descriptors now point far outside memory with new lengths.
        driver.writeDescriptor(0, 0xFFFF_0000_0000L, 4096, VIRTQ_DESC_F_NEXT, 1);
        driver.writeDescriptor(1, 0xFFFF_0000_0000L, 4096, VIRTQ_DESC_F_WRITE, 0);
        assertEquals(4, chain.readableBytes());
        assertEquals(8, chain.writableBytes());
        assertEquals(0x10000, chain.pieceAddress(0));
        assertEquals(0x20000, chain.pieceAddress(1));
        chain.reader().readInt();
        chain.writer().writeLong(1);
    }

    // --- CVE class 7: next out of range ------------------------------------------------------------------

    @Test
    void aNextIndexAtTheQueueSizeIsRefused() {
        driver.writeDescriptor(0, 0x10000, 4, VIRTQ_DESC_F_NEXT, SIZE);
        publishRaw(0);
        expectFault(ChainFault.NEXT_OUT_OF_RANGE);
    }

    @Test
    void aNextIndexOf0xFFFFIsRefused() {
        driver.writeDescriptor(0, 0x10000, 4, VIRTQ_DESC_F_NEXT, 0xFFFF);
        publishRaw(0);
        expectFault(ChainFault.NEXT_OUT_OF_RANGE);
    }

    // --- CVE class 10: direction ---------------------------------------------------------------------------

    @Test
    void aReadableDescriptorAfterAWritableOneIsRefused() {
        driver.add(readable(0x10000, 4), writable(0x20000, 4), readable(0x10010, 4));
        expectFault(ChainFault.READABLE_AFTER_WRITABLE);
    }

    @Test
    void theReaderNeverSeesWritableBytesNorTheWriterReadableOnes() {
        driver.add(readable(0x10000, 4), writable(0x20000, 4));
        Chain chain = f.popOne();
        chain.reader().readInt();
        assertThrowsAccess(() -> chain.reader().readByte());
        chain.writer().writeInt(7);
        assertThrowsAccess(() -> chain.writer().writeByte(1));
        f.queue.addUsed(chain);
        assertEquals(4, driver.pollUsed().length(), "used length never exceeds the writable capacity");
    }

    // --- adjacent regions ----------------------------------------------------------------------------------

    @Test
    void aBufferSpanningTwoAdjacentRegionsBecomesTwoPieces() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            GuestMemory split = GuestMemory.of(
                    new GuestRegion(0, 0x10000, arena.allocate(0x10000, 4096)),
                    new GuestRegion(0x10000, 0x10000, arena.allocate(0x10000, 4096)));
            DriverQueue d = DriverQueue.layout(split, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("split", SIZE);
            d.configure(q);
            q.activate(split);
            d.write(0xFFFC, new byte[] {1, 2, 3, 4, 5, 6, 7, 8});
            d.add(readable(0xFFFC, 8));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertTrue(chain.isValid());
            assertEquals(2, chain.pieceCount());
            assertEquals(0x0807060504030201L, chain.reader().readLong());
        }
    }

    @Test
    void aBufferSpanningAHoleIsRefused() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            GuestMemory holed = GuestMemory.of(
                    new GuestRegion(0, 0x10000, arena.allocate(0x10000, 4096)),
                    new GuestRegion(0x11000, 0x10000, arena.allocate(0x10000, 4096)));
            DriverQueue d = DriverQueue.layout(holed, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("holed", SIZE);
            d.configure(q);
            q.activate(holed);
            d.add(readable(0xFFFC, 8));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertEquals(ChainFault.BUFFER_OUT_OF_RANGE, chain.fault());
        }
    }

    @Test
    void anIndirectTableSpanningTwoAdjacentRegionsIsRefused() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            GuestMemory split = GuestMemory.of(
                    new GuestRegion(0, 0x10000, arena.allocate(0x10000, 4096)),
                    new GuestRegion(0x10000, 0x10000, arena.allocate(0x10000, 4096)));
            DriverQueue d = DriverQueue.layout(split, SIZE, 0x1000);
            SplitQueue q = new SplitQueue("split", SIZE);
            d.configure(q);
            q.setIndirectAllowed(true);
            q.activate(split);
            d.addIndirect(0xFFF0, readable(0x8000, 4), readable(0x8000, 4));
            Chain chain = new Chain();
            assertTrue(q.pop(chain));
            assertEquals(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE, chain.fault(),
                    "tables are read as one segment: they must lie in one region");
        }
    }

    private static void assertThrowsAccess(Runnable access) {
        org.junit.jupiter.api.Assertions.assertThrows(ChainAccessException.class, access::run);
    }

    private static void assertDoesNotThrow(org.junit.jupiter.api.function.Executable e) {
        org.junit.jupiter.api.Assertions.assertDoesNotThrow(e);
    }

    @Test
    void noFaultMeansNoFaultField() {
        driver.add(readable(0x10000, 4));
        assertNull(f.popOne().fault());
    }
}
