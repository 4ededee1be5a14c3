package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Queue-fatal input (virtqueue.md §7 classes 2, 7, 8, 9): the queue latches a {@link QueueFault}, serves nothing
 * more, and only a reset brings it back.
 */
class QueueFaultTest {
    private static final int SIZE = 8;
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

    private void assertBroken(QueueFault fault) {
        assertFalse(f.queue.pop(f.chain));
        assertEquals(fault, f.queue.fault());
        assertTrue(f.queue.isBroken());
        // Latched: a later good-looking ring is not served either.
        assertFalse(f.queue.pop(f.chain));
        assertFalse(f.queue.hasAvailable());
        assertFalse(f.queue.enableNotification());
    }

    // --- class 2: available index runaway, re-submitted heads ------------------------------------------

    @Test
    void anAvailIndexExactlyQueueSizeAheadIsServed() {
        for (int i = 0; i < SIZE; i++) {
            driver.add(writable(0x10000 + 64L * i, 64));
        }
        for (int i = 0; i < SIZE; i++) {
            assertTrue(f.queue.pop(f.chain));
        }
        assertFalse(f.queue.pop(f.chain));
        assertNull(f.queue.fault());
    }

    @Test
    void anAvailIndexMoreThanQueueSizeAheadBreaksTheQueue() {
        driver.setAvailIdx(SIZE + 1);
        assertBroken(QueueFault.AVAIL_INDEX_RUNAWAY);
    }

    @Test
    void anAvailIndexMovedBackwardsBreaksTheQueue() {
        driver.add(writable(0x10000, 64));
        assertTrue(f.queue.pop(f.chain));
        driver.setAvailIdx(0);
        assertBroken(QueueFault.AVAIL_INDEX_RUNAWAY);
    }

    @Test
    void theAvailIndexWrapsAt65536() throws Exception {
        f.queue.stop();
        f.queue.restore(new QueueState(0xFFFF, 0xFFFF, false));
        f.queue.activate(f.memory);
        driver.setAvailIdx(0xFFFF);
        driver.add(writable(0x10000, 64));
        driver.add(writable(0x10100, 64));
        assertEquals(1, driver.availIdx());
        assertTrue(f.queue.pop(f.chain));
        f.queue.addUsed(f.chain);
        assertTrue(f.queue.pop(f.chain));
        f.queue.addUsed(f.chain);
        assertFalse(f.queue.pop(f.chain));
        assertEquals(1, f.queue.nextAvail());
        assertEquals(1, f.queue.usedIndexInRing());
    }

    @Test
    void aHeadRepublishedWhileInFlightBreaksTheQueue() {
        int head = driver.add(writable(0x10000, 64));
        assertTrue(f.queue.pop(f.chain));
        driver.publish(head);
        assertBroken(QueueFault.HEAD_IN_FLIGHT);
    }

    @Test
    void aHeadRepublishedAfterCompletionIsServedAgain() {
        int head = driver.add(writable(0x10000, 64));
        assertTrue(f.queue.pop(f.chain));
        f.queue.addUsed(f.chain);
        driver.publish(head);
        assertTrue(f.queue.pop(f.chain));
        assertEquals(head, f.chain.head());
    }

    // --- class 7: head out of range -----------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(ints = {SIZE, SIZE + 1, 0xFFFF})
    void aHeadOutOfRangeBreaksTheQueue(int head) {
        driver.publish(head);
        assertBroken(QueueFault.HEAD_OUT_OF_RANGE);
    }

    @Test
    void completingAHeadThatIsNotInFlightIsRefusedBeforeTheRingIsTouched() {
        int usedBefore = f.queue.usedIndexInRing();
        assertThrows(IllegalStateException.class, () -> f.queue.addUsed(3, 0));
        assertThrows(IllegalStateException.class, () -> f.queue.addUsed(SIZE, 0));
        assertEquals(usedBefore, f.queue.usedIndexInRing());
        assertNull(driver.pollUsed());
    }

    // --- class 8: sizes ------------------------------------------------------------------------------------

    @ParameterizedTest
    @ValueSource(ints = {0, 3, 6, 65535, 65536, -8, 16})
    void aSizeThatIsNotAPowerOfTwoUpToTheMaximumIsRefused(int size) {
        f.queue.stop();
        assertThrows(QueueConfigException.class, () -> f.queue.setSize(size));
        assertEquals(SIZE, f.queue.size());
    }

    @Test
    void theSizeCannotChangeWhileTheQueueRuns() {
        assertThrows(QueueConfigException.class, () -> f.queue.setSize(4));
        assertThrows(QueueConfigException.class, () -> f.queue.setAddresses(0x1000, 0x2000, 0x3000));
    }

    @Test
    void aConstructorMaximumThatIsNotAValidSizeIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new SplitQueue("q", 0));
        assertThrows(IllegalArgumentException.class, () -> new SplitQueue("q", 65536));
        assertThrows(IllegalArgumentException.class, () -> new SplitQueue("q", 100));
    }

    @Test
    void misalignedRingsAreRefused() {
        SplitQueue q = new SplitQueue("q", SIZE);
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1008, 0x2000, 0x3000));
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1000, 0x2001, 0x3000));
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1000, 0x2000, 0x3002));
    }

    @Test
    void ringsOutsideMemoryAreRefusedAtActivation() throws Exception {
        SplitQueue q = new SplitQueue("q", SIZE);
        q.setSize(SIZE);
        q.setAddresses(QueueFixture.MEMORY_SIZE - 64, 0x2000, 0x3000);
        assertThrows(QueueConfigException.class, () -> q.activate(f.memory));
        assertFalse(q.isReady());
        q.setAddresses(0x1000, 0x2000, -8L & ~3L);
        assertThrows(QueueConfigException.class, () -> q.activate(f.memory));
        q.setAddresses(0xFFFF_FFFF_FFFF_FF00L, 0x2000, 0x3000);
        assertThrows(QueueConfigException.class, () -> q.activate(f.memory));
    }

    @Test
    void ringsInMemoryWhoseHostAddressIsMisalignedAreRefused() throws Exception {
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            // Guest 0x0 sits at host address base+1: guest alignment no longer implies host alignment.
            var shifted = arena.allocate(0x10001, 4096).asSlice(1);
            GuestMemory odd = GuestMemory.of(new dev.vhostdevice.virtqueue.memory.GuestRegion(0, 0x10000, shifted));
            SplitQueue q = new SplitQueue("q", SIZE);
            q.setAddresses(0x1000, 0x2000, 0x3000);
            assertThrows(QueueConfigException.class, () -> q.activate(odd));
            GuestMemory bytes = GuestMemory.of(new dev.vhostdevice.virtqueue.memory.GuestRegion(0, 0x10000,
                    java.lang.foreign.MemorySegment.ofArray(new byte[0x10000])));
            assertThrows(QueueConfigException.class, () -> q.activate(bytes), "byte[] memory has alignment 1");
            GuestMemory longs = GuestMemory.of(new dev.vhostdevice.virtqueue.memory.GuestRegion(0, 0x10000,
                    java.lang.foreign.MemorySegment.ofArray(new long[0x2000])));
            q.activate(longs);
            assertTrue(q.isReady(), "long[] heap memory is 8-aligned and can hold rings");
        }
    }

    // --- class 9: reset forgets everything ----------------------------------------------------------------

    @Test
    void afterAResetNothingIsServedUntilTheQueueIsConfiguredAgain() throws Exception {
        driver.add(readable(0x10000, 4));
        driver.setAvailIdx(SIZE + 3);
        assertFalse(f.queue.pop(f.chain));
        assertTrue(f.queue.isBroken());

        f.queue.reset();
        assertFalse(f.queue.isBroken());
        assertFalse(f.queue.isReady());
        assertFalse(f.queue.pop(f.chain), "a reset queue walks no stale chains");
        assertEquals(new QueueState(0, 0, false), f.queue.state());
        assertEquals(SIZE, f.queue.size());

        try (GuestMemory fresh = GuestMemory.allocate(0, QueueFixture.MEMORY_SIZE)) {
            DriverQueue d = DriverQueue.layout(fresh, 4, 0x2000);
            d.configure(f.queue);
            f.queue.activate(fresh);
            int head = d.add(writable(0x10000, 4));
            assertTrue(f.queue.pop(f.chain));
            assertEquals(head, f.chain.head());
        }
    }

    /** Found by the fuzz harness; rust-vmm d951283: a reset queue took guest address 0 for its rings. */
    @Test
    void aResetQueueRefusesToStartUntilItsRingsAreProgrammedAgain() throws Exception {
        try (GuestMemory memory = GuestMemory.allocate(0, 1 << 20)) {
            DriverQueue d = DriverQueue.layout(memory, 16, 0); // rings at GPA 0, as a guest may place them
            SplitQueue q = new SplitQueue("reset", 16);
            d.configure(q);
            q.activate(memory);
            // Read as a ring at GPA 0, this chain's descriptor makes avail.idx 1 with head 0 in slot 0.
            d.add(writable(0x14000, 16));
            q.reset();
            assertThrows(QueueConfigException.class, () -> q.activate(memory));
            assertFalse(q.pop(f.chain), "the stale ring at GPA 0 is never walked");
            d.configure(q);
            q.activate(memory);
            assertTrue(q.isReady());
        }
    }

    @Test
    void aNewQueueNeedsItsRingsBeforeItStarts() {
        SplitQueue q = new SplitQueue("fresh", SIZE);
        assertThrows(QueueConfigException.class, () -> q.activate(f.memory));
    }

    @Test
    void aNewSizeForgetsTheHeadsOfTheOldRing() throws Exception {
        driver.add(writable(0x10000, 4));
        assertTrue(f.queue.pop(f.chain));
        f.queue.stop();
        f.queue.setSize(4);
        assertEquals(0, f.queue.inFlightCount());
    }

    @Test
    void aRestoredStateResumesWhereTheDeviceStopped() throws Exception {
        driver.add(writable(0x10000, 4));
        driver.add(writable(0x10100, 4));
        assertTrue(f.queue.pop(f.chain));
        f.queue.addUsed(f.chain);
        QueueState saved = f.queue.state();
        assertEquals(new QueueState(1, 1, false), saved);

        f.queue.reset();
        driver.configure(f.queue);
        f.queue.restore(saved);
        f.queue.activate(f.memory);
        assertTrue(f.queue.pop(f.chain));
        assertEquals(1, f.chain.head());
    }

    @Test
    void aRestoredStateFarFromTheRingIsCaughtAtTheNextPop() throws Exception {
        driver.add(writable(0x10000, 4));
        f.queue.stop();
        f.queue.restore(new QueueState(0x8000, 0, false));
        f.queue.activate(f.memory);
        assertBroken(QueueFault.AVAIL_INDEX_RUNAWAY);
    }

    @Test
    void queueStateRefusesIndicesWiderThan16Bits() {
        assertThrows(IllegalArgumentException.class, () -> new QueueState(0x10000, 0, false));
        assertThrows(IllegalArgumentException.class, () -> new QueueState(0, -1, false));
    }

    @Test
    void aHeadFromAPreviousBackEndCanBeResubmitted() {
        driver.prepare(writable(0x10000, 4));
        assertTrue(f.queue.popHead(0, f.chain));
        assertTrue(f.chain.isValid());
        assertEquals(1, f.queue.inFlightCount());
        assertFalse(f.queue.popHead(0, f.chain), "already in flight");
        assertFalse(f.queue.popHead(SIZE, f.chain), "out of range");
        f.queue.addUsed(f.chain);
        assertEquals(0, f.queue.inFlightCount());
    }
}
