package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DESC;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DISABLE;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_ENABLE;
import static dev.vhostdevice.virtqueue.PackedRing.VIRTQ_DESC_F_AVAIL;
import static dev.vhostdevice.virtqueue.PackedRing.VIRTQ_DESC_F_USED;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import dev.vhostdevice.virtqueue.testing.PackedDriverQueue;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The packed ring (packed-ring.md §1-§4) from the device's side, against {@link PackedDriverQueue} laying out
 * chains as Linux does, and every hostile-driver rule of §6.1 as a named test with its typed fault.
 */
class PackedQueueTest {
    private static final long RING = 0x1000;
    private static final long DATA = 0x40000;
    private GuestMemory memory;
    private PackedDriverQueue driver;
    private PackedQueue queue;
    private final Chain chain = new Chain();

    private void open(int size) throws QueueConfigException {
        memory = GuestMemory.allocate(0, 1 << 20);
        driver = PackedDriverQueue.layout(memory, size, RING);
        queue = new PackedQueue("p0", Math.max(size, 8));
        driver.configure(queue);
        queue.setIndirectAllowed(true);
        queue.activate(memory);
    }

    @AfterEach
    void tearDown() {
        if (memory != null) {
            memory.close();
        }
    }

    private Chain popOne() {
        assertTrue(queue.pop(chain), () -> "expected a chain, " + queue);
        return chain;
    }

    private void completeAndCheck(int expectedId, int length) {
        queue.addUsed(chain.head(), length);
        queue.flushUsed();
        assertEquals(new Used(expectedId, length), driver.pollUsed());
    }

    // ------------------------------------------------------------- recorded buffers (inflight resubmission)

    @Test
    void aRecorderSeesEachRingDescriptorOfAPopInOrder() throws Exception {
        open(8);
        List<String> seen = new ArrayList<>();
        queue.setDescriptorRecorder((index, address, length, id, flags) ->
                seen.add(index + ":" + Long.toHexString(address) + "/" + length + "#" + id + ((flags & VIRTQ_DESC_F_NEXT) != 0 ? "+" : "")));
        int id = driver.add(readable(DATA, 16), writable(DATA + 64, 32));
        popOne();
        assertEquals(List.of("0:40000/16#" + id + "+", "1:40040/32#" + id), seen);
    }

    @Test
    void aRecordedBufferIsPoppedFromItsCopiesAndCompletedUnderItsId() throws Exception {
        open(8);
        long[] addresses = {DATA, DATA + 64};
        int[] lengths = {16, 32};
        int[] flags = {VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};
        assertTrue(queue.popRecorded(chain, 5, addresses, lengths, flags, 2));
        assertTrue(chain.isValid());
        assertEquals(16, chain.readableBytes());
        assertEquals(32, chain.writableBytes());
        assertEquals(1, queue.inFlightCount());
        assertEquals(2, queue.inFlightSlots());
        assertEquals(new QueueState(0x8000, 0x8000, false), queue.state(), "next avail does not move");
        queue.addUsed(chain.head(), 7);
        queue.flushUsed();
        var ring = memory.slice(RING, 16);
        var le = java.nio.ByteOrder.LITTLE_ENDIAN;
        assertEquals(7, ring.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED.withOrder(le), PackedRing.DESC_LEN));
        assertEquals(5, ring.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le), PackedRing.DESC_ID));
        assertEquals(PackedRing.usedFlags(true) | VIRTQ_DESC_F_WRITE,
                Short.toUnsignedInt(ring.get(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(le),
                        PackedRing.DESC_FLAGS)));
        assertEquals(PackedRing.position(2, true), queue.nextUsed(), "used advances by the buffer's two slots");
    }

    @Test
    void recordedBuffersThatCannotBeInFlightAreRefusedWithoutBreakingTheQueue() throws Exception {
        open(8);
        long[] addresses = {DATA, DATA + 64, DATA + 128};
        int[] lengths = {16, 16, 16};
        int[] chained = {VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_NEXT, 0};
        assertTrue(queue.popRecorded(chain, 3, addresses, lengths, chained, 1 + 2));
        assertFalse(queue.popRecorded(chain, 3, addresses, lengths, chained, 3), "id 3 is in flight");
        assertFalse(queue.popRecorded(chain, 4, addresses, lengths, new int[] {0, 0, 0}, 3), "chain ends early");
        assertFalse(queue.popRecorded(chain, 4, addresses, lengths, new int[] {VIRTQ_DESC_F_NEXT, 0, 0}, 1),
                "the last descriptor has NEXT");
        assertFalse(queue.popRecorded(chain, 4, new long[9], new int[9], new int[9], 9), "more slots than the ring");
        assertFalse(queue.popRecorded(chain, 4, addresses, lengths, chained, 0), "no descriptors");
        assertTrue(queue.popRecorded(chain, 4, new long[] {0xFFFF_0000_0000L}, new int[] {8}, new int[] {0}, 1));
        assertFalse(chain.isValid(), "a buffer outside guest memory is a refused chain, completed with 0 bytes");
        assertFalse(queue.isBroken());
    }

    // --------------------------------------------------------------------------- layout and wrap counters

    @Test
    void availabilityTruthTableForBothWraps() {
        for (boolean wrap : new boolean[] {true, false}) {
            assertTrue(PackedRing.isAvailable(PackedRing.availFlags(wrap), wrap));
            assertFalse(PackedRing.isAvailable(PackedRing.availFlags(!wrap), wrap), "a stale lap is not available");
            assertFalse(PackedRing.isAvailable(PackedRing.usedFlags(wrap), wrap));
            assertFalse(PackedRing.isAvailable(PackedRing.usedFlags(!wrap), wrap));
        }
        assertFalse(PackedRing.isAvailable(0, true), "the zeroed ring holds nothing");
        assertFalse(PackedRing.isAvailable(0, false));
    }

    @Test
    void aZeroedRingIsEmpty() throws Exception {
        open(8);
        assertFalse(queue.hasAvailable());
        assertFalse(queue.pop(chain));
        assertEquals(new QueueState(0x8000, 0x8000, false), queue.state());
    }

    @Test
    void aSingleBufferIsPoppedAndUsedWithItsIdAndWrite() throws Exception {
        open(8);
        int id = driver.add(writable(DATA, 64));
        assertTrue(queue.hasAvailable());
        Chain c = popOne();
        assertTrue(c.isValid());
        assertEquals(id, c.bufferId());
        assertEquals(1, c.ringSlots());
        assertEquals(64, c.writableBytes());
        c.writer().writeLong(0x1122334455667788L);
        queue.addUsed(c);
        queue.flushUsed();
        assertEquals(PackedRing.usedFlags(true) | VIRTQ_DESC_F_WRITE, driver.flagsAt(0));
        assertEquals(new Used(id, 8), driver.pollUsed());
        assertEquals(new QueueState(0x8001, 0x8001, false), queue.state());
    }

    @Test
    void aChainOfThreeReadsEveryDescriptor() throws Exception {
        open(8);
        int id = driver.add(readable(DATA, 16), readable(DATA + 16, 16), writable(DATA + 64, 32));
        Chain c = popOne();
        assertEquals(3, c.ringSlots());
        assertEquals(3, c.descriptorCount());
        assertEquals(32, c.readableBytes());
        assertEquals(32, c.writableBytes());
        completeAndCheck(id, 0);
        assertEquals(0x8003, queue.nextUsed());
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aChainCrossesTheRingEndAndFlipsTheWrap(boolean idInEveryDescriptor) throws Exception {
        open(4);
        driver.setIdInEveryDescriptor(idInEveryDescriptor);
        // Move both sides to slot 3 of the first lap.
        for (int i = 0; i < 3; i++) {
            int id = driver.add(writable(DATA, 8));
            popOne();
            completeAndCheck(id, 0);
        }
        int id = driver.add(readable(DATA, 8), readable(DATA + 8, 8), writable(DATA + 16, 8));
        Chain c = popOne();
        assertTrue(c.isValid(), c::toString);
        assertEquals(id, c.bufferId(), "the id comes from the last descriptor");
        assertEquals(3, c.ringSlots());
        assertEquals(PackedRing.position(2, false), queue.nextAvail());
        completeAndCheck(id, 8);
        assertEquals(PackedRing.position(2, false), queue.nextUsed());
    }

    @Test
    void threeLapsOfASizeThreeRing() throws Exception {
        open(3);
        for (int i = 0; i < 9; i++) {
            int id = driver.add(writable(DATA, 8));
            Chain c = popOne();
            assertEquals(id, c.bufferId());
            completeAndCheck(id, 4);
        }
        // Three laps: the wrap counters flipped three times.
        assertEquals(PackedRing.position(0, false), queue.nextAvail());
        assertEquals(PackedRing.position(0, false), queue.nextUsed());
        assertEquals(driver.availPosition(), queue.nextAvail());
        assertEquals(driver.usedPosition(), queue.nextUsed());
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 16})
    void indirectTablesInPackedForm(int entries) throws Exception {
        open(8);
        DriverQueueBuffers buffers = new DriverQueueBuffers(entries);
        int id = driver.addIndirect(0x30000, buffers.array);
        Chain c = popOne();
        assertTrue(c.isValid(), c::toString);
        assertEquals(id, c.bufferId());
        assertEquals(1, c.ringSlots(), "an indirect buffer takes one ring slot");
        assertEquals(entries + 1, c.descriptorCount());
        assertEquals(buffers.writableBytes, c.writableBytes());
        completeAndCheck(id, 0);
    }

    /** Buffers for an indirect table: the first readable, the rest writable. */
    private record DriverQueueBuffers(Buffer[] array, long writableBytes) {
        DriverQueueBuffers(int entries) {
            this(make(entries), 8L * (entries - 1));
        }

        private static Buffer[] make(int entries) {
            var out = new Buffer[entries];
            for (int i = 0; i < entries; i++) {
                out[i] = i == 0 ? readable(DATA, 8) : writable(DATA + 8L * i, 8);
            }
            return out;
        }
    }

    @Test
    void outOfOrderCompletionWritesUsedInCompletionOrder() throws Exception {
        open(8);
        int first = driver.add(readable(DATA, 8), writable(DATA + 8, 8));
        int second = driver.add(writable(DATA + 16, 8));
        Chain a = new Chain();
        Chain b = new Chain();
        assertTrue(queue.pop(a));
        assertTrue(queue.pop(b));
        queue.addUsed(b.head(), 1);
        queue.addUsed(a.head(), 2);
        queue.flushUsed();
        // The second buffer's used descriptor sits at slot 0, though it was read from slot 2.
        assertEquals(new Used(second, 1), driver.pollUsed());
        assertEquals(new Used(first, 2), driver.pollUsed());
        assertNull(driver.pollUsed());
        assertEquals(0x8003, queue.nextUsed());
    }

    @Test
    void aBatchPublishesItsFirstFlagsLast() throws Exception {
        open(8);
        Chain[] chains = {new Chain(), new Chain(), new Chain()};
        for (Chain c : chains) {
            driver.add(writable(DATA, 8));
            assertTrue(queue.pop(c));
        }
        for (Chain c : chains) {
            queue.addUsed(c.head(), 0);
        }
        // Slots 1 and 2 are written, slot 0 still shows the driver's available flags: the driver sees nothing.
        assertEquals(PackedRing.usedFlags(true), driver.flagsAt(1));
        assertEquals(PackedRing.usedFlags(true), driver.flagsAt(2));
        assertNull(driver.pollUsed());
        queue.needsNotification(); // publishes the batch
        assertEquals(PackedRing.usedFlags(true), driver.flagsAt(0));
        for (int i = 0; i < 3; i++) {
            assertTrue(driver.pollUsed() != null);
        }
    }

    @Test
    void stopPublishesAPendingBatch() throws Exception {
        open(8);
        int id = driver.add(writable(DATA, 8));
        popOne();
        queue.addUsed(chain.head(), 0);
        queue.stop();
        assertEquals(new Used(id, 0), driver.pollUsed());
    }

    @Test
    void headsAreBelowTheSizeWhateverTheIds() throws Exception {
        open(8);
        driver.addWithId(0xFFFF, writable(DATA, 8));
        Chain c = popOne();
        assertTrue(c.isValid());
        assertEquals(0xFFFF, c.bufferId(), "H10: an id beyond the size is echoed, never used as an index");
        assertTrue(c.head() >= 0 && c.head() < 8);
        queue.addUsed(c);
        queue.flushUsed();
        assertEquals(0xFFFF, Short.toUnsignedInt(memory.slice(RING + 12, 2).get(
                java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, 0)));
    }

    @Test
    void completingAHeadNotInFlightThrowsBeforeTouchingTheRing() throws Exception {
        open(8);
        assertThrows(IllegalStateException.class, () -> queue.addUsed(0, 0));
        assertThrows(IllegalStateException.class, () -> queue.addUsed(9, 0));
        assertEquals(0, driver.flagsAt(0));
    }

    // ------------------------------------------------------------------------------------ base and sizes

    @ParameterizedTest
    @ValueSource(ints = {1, 3, 256, 32768})
    void positionsRoundTripAtEverySlotAndWrap(int size) throws Exception {
        memory = GuestMemory.allocate(0, 1 << 20);
        queue = new PackedQueue("p0", size);
        queue.setSize(size);
        int step = Math.max(1, size / 64);
        for (int slot = 0; slot < size; slot += step) {
            for (boolean wrap : new boolean[] {true, false}) {
                int avail = PackedRing.position(slot, wrap);
                int used = PackedRing.position(size - 1 - slot, !wrap);
                queue.restore(new QueueState(avail, used, false));
                assertEquals(new QueueState(avail, used, false), queue.state());
            }
        }
    }

    @Test
    void aRestoredSlotAtOrBeyondTheSizeIsRefused() throws Exception {
        memory = GuestMemory.allocate(0, 1 << 20);
        queue = new PackedQueue("p0", 8);
        queue.setSize(3);
        assertThrows(QueueConfigException.class, () -> queue.restore(new QueueState(PackedRing.position(3, true),
                0x8000, false)), "H1");
        assertThrows(QueueConfigException.class, () -> queue.restore(new QueueState(0x8000,
                PackedRing.position(7, false), false)), "H1");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 9, 32769, -1})
    void badSizesAreRefused(int size) {
        PackedQueue q = new PackedQueue("p0", 8);
        assertThrows(QueueConfigException.class, () -> q.setSize(size), "H17");
    }

    @Test
    void sizesNeedNotBeAPowerOfTwo() throws Exception {
        PackedQueue q = new PackedQueue("p0", 8);
        q.setSize(3);
        q.setSize(7);
        assertEquals(7, q.size());
        assertThrows(IllegalArgumentException.class, () -> new PackedQueue("p1", 0));
    }

    @Test
    void misalignedAreasAndAreasOutsideMemoryAreRefused() throws Exception {
        memory = GuestMemory.allocate(0, 1 << 20);
        PackedQueue q = new PackedQueue("p0", 8);
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1008, 0x2000, 0x3000), "H16");
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1000, 0x2002, 0x3000), "H16");
        assertThrows(QueueConfigException.class, () -> q.setAddresses(0x1000, 0x2000, 0x3001), "H16");
        assertThrows(QueueConfigException.class, () -> q.activate(memory), "addresses not set");
        q.setAddresses((1 << 20) - 64, 0x2000, 0x3000);
        assertThrows(QueueConfigException.class, () -> q.activate(memory), "H16: ring past the end of memory");
        q.setAddresses(0x1000, 0x2000, 1 << 20);
        assertThrows(QueueConfigException.class, () -> q.activate(memory));
        assertFalse(q.isReady());
    }

    // ------------------------------------------------------------------------------ event suppression

    @Test
    void deviceAreaDisablesDuringServiceAndEnablesAfter() throws Exception {
        open(8);
        queue.disableNotification();
        assertEquals(RING_EVENT_FLAGS_DISABLE, driver.deviceEventFlags());
        assertFalse(driver.kickPrepare());
        assertFalse(queue.enableNotification());
        assertEquals(RING_EVENT_FLAGS_ENABLE, driver.deviceEventFlags());
        driver.add(writable(DATA, 8));
        assertTrue(driver.kickPrepare());
    }

    @Test
    void withEventIdxTheDeviceAsksForAKickAtNextAvail() throws Exception {
        open(4);
        queue.setEventIdx(true);
        driver.setEventIdx(true);
        for (int i = 0; i < 5; i++) {
            int id = driver.add(writable(DATA, 8));
            popOne();
            completeAndCheck(id, 0);
        }
        assertFalse(queue.enableNotification());
        assertEquals(RING_EVENT_FLAGS_DESC, driver.deviceEventFlags());
        assertEquals(PackedRing.position(1, false), driver.deviceEventOffWrap());
        driver.kickPrepare();
        driver.add(writable(DATA, 8));
        assertTrue(driver.kickPrepare(), "the slot the device waits for was made available");
        driver.add(writable(DATA, 8));
        assertFalse(driver.kickPrepare(), "past the event: no kick");
    }

    @Test
    void theReCheckAfterEnablingCatchesABufferMadeAvailableMeanwhile() throws Exception {
        open(8);
        queue.disableNotification();
        // The driver publishes while kicks are disabled and therefore does not kick.
        driver.add(writable(DATA, 8));
        assertFalse(driver.kickPrepare());
        assertTrue(queue.enableNotification(), "lost wake-up: the device must drain again");
        assertTrue(queue.pop(chain));
    }

    @Test
    void driverEventSuppressionDecidesCalls() throws Exception {
        open(8);
        driver.setDriverEvent(RING_EVENT_FLAGS_DISABLE, 0);
        cycle();
        assertFalse(queue.needsNotification(), "DISABLE: no call");
        driver.setDriverEvent(RING_EVENT_FLAGS_ENABLE, 0);
        cycle();
        assertTrue(queue.needsNotification(), "ENABLE: call");
        assertFalse(queue.needsNotification(), "nothing new: no call");
        driver.setDriverEvent(3, 0);
        cycle();
        assertTrue(queue.needsNotification(), "H14: reserved flags call");
        driver.setDriverEvent(RING_EVENT_FLAGS_DESC, 0x7FFF);
        cycle();
        assertTrue(queue.needsNotification(), "H14: DESC without EVENT_IDX calls");
    }

    @Test
    void descEventsInThisLapAndThePreviousLap() throws Exception {
        open(4);
        queue.setEventIdx(true);
        cycle();
        assertTrue(queue.needsNotification(), "the first decision after a start always calls");
        // Used at slot 1 (wrap 1). Ask for a call when slot 2 is used.
        driver.setDriverEvent(RING_EVENT_FLAGS_DESC, PackedRing.position(2, true));
        cycle();
        assertFalse(queue.needsNotification(), "slot 1 used: not yet");
        cycle();
        assertTrue(queue.needsNotification(), "slot 2 used: call");
        // Now at slot 3 (wrap 1); an event at slot 0 of the next lap (wrap 0) lies one use ahead.
        driver.setDriverEvent(RING_EVENT_FLAGS_DESC, PackedRing.position(0, false));
        cycle();
        assertFalse(queue.needsNotification(), "slot 3 used: not yet");
        cycle();
        assertTrue(queue.needsNotification(), "slot 0 of the next lap used: call");
        // An event in the previous lap (slot 3, wrap 1) lies behind: no call.
        driver.setDriverEvent(RING_EVENT_FLAGS_DESC, PackedRing.position(3, true));
        cycle();
        assertFalse(queue.needsNotification(), "an event of the previous lap is behind");
    }

    @Test
    void needEventOnOneLineOfTwoLaps() {
        int size = 4;
        // Moving from 3/1 to 1/0 uses slots 3 and 0 (of the second lap).
        int from = PackedRing.position(3, true);
        int to = PackedRing.position(1, false);
        assertTrue(PackedRing.needEvent(PackedRing.position(3, true), to, from, size));
        assertTrue(PackedRing.needEvent(PackedRing.position(0, false), to, from, size));
        assertFalse(PackedRing.needEvent(PackedRing.position(1, false), to, from, size));
        assertFalse(PackedRing.needEvent(PackedRing.position(2, true), to, from, size), "previous event");
        assertFalse(PackedRing.needEvent(PackedRing.position(0x7FFF, true), to, from, size), "H15: off beyond");
    }

    private void cycle() {
        while (driver.pollUsed() != null) {
            // what the last decision published
        }
        int id = driver.add(writable(DATA, 8));
        assertTrue(queue.pop(chain));
        queue.addUsed(chain.head(), 0);
        assertEquals(id, chain.bufferId());
    }

    // ------------------------------------------------------------------- hostile driver: chain faults

    /** Pops the next chain, expects {@code fault} with the given id and slots, completes it, and serves another. */
    private void expectChainFault(ChainFault fault, int id, int slots) {
        Chain c = popOne();
        assertEquals(fault, c.fault(), c::toString);
        assertEquals(0, c.pieceCount());
        assertEquals(id, c.bufferId());
        assertEquals(slots, c.ringSlots());
        queue.addUsed(c);
        queue.flushUsed();
        assertEquals(new Used(id, 0), driver.pollUsed());
        assertFalse(queue.isBroken());
        int good = driver.add(writable(DATA, 8));
        Chain next = popOne();
        assertTrue(next.isValid(), next::toString);
        assertEquals(good, next.bufferId());
        queue.addUsed(next);
        queue.flushUsed();
        driver.pollUsed();
    }

    @Test
    void h4NextOnEverySlotIsAChainTooLong() throws Exception {
        open(4);
        for (int i = 0; i < 4; i++) {
            driver.writeSlot(i, DATA, 8, i, driver.availFlagsNow() | VIRTQ_DESC_F_NEXT);
        }
        Chain c = popOne();
        assertEquals(ChainFault.CHAIN_TOO_LONG, c.fault());
        assertEquals(4, c.ringSlots(), "the walk stops after one lap");
        assertEquals(3, c.bufferId());
        assertEquals(PackedRing.position(0, false), queue.nextAvail());
        queue.addUsed(c);
        assertFalse(queue.isBroken());
        assertFalse(queue.pop(chain), "the next lap holds nothing");
    }

    @Test
    void h6AnIndirectTableOfLengthZero() throws Exception {
        open(8);
        int id = driver.addRaw(0, 0x30000, 0, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_TABLE_EMPTY, id, 1);
    }

    @Test
    void h6AnIndirectTableNotAMultipleOf16() throws Exception {
        open(8);
        int id = driver.addRaw(0, 0x30000, 24, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_TABLE_BAD_LENGTH, id, 1);
    }

    @Test
    void h6AnIndirectTableOverTheCap() throws Exception {
        open(8);
        queue.stop();
        queue.setIndirectCap(4);
        queue.activate(memory);
        int id = driver.addRaw(0, 0x30000, 5 * 16, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_TABLE_TOO_LONG, id, 1);
    }

    @Test
    void h6AnIndirectTableOutsideMemory() throws Exception {
        open(8);
        int id = driver.addRaw(0, (1 << 20) - 16, 32, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE, id, 1);
        int id2 = driver.addRaw(1, -16L, 16, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_TABLE_OUT_OF_RANGE, id2, 1);
    }

    @Test
    void h7IndirectWithNext() throws Exception {
        open(8);
        driver.writeIndirectTable(0x30000, writable(DATA, 8));
        int id = driver.addRaw(0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT);
        // The NEXT makes the following slot part of the chain: it must be there for the walk to end.
        driver.addRaw(5, DATA, 8, VIRTQ_DESC_F_WRITE);
        Chain c = popOne();
        assertEquals(ChainFault.INDIRECT_WITH_NEXT, c.fault());
        assertEquals(2, c.ringSlots());
        assertEquals(5, c.bufferId(), "the id is the last descriptor's, not the head's " + id);
    }

    @Test
    void h7IndirectReachedThroughNext() throws Exception {
        open(8);
        driver.writeIndirectTable(0x30000, writable(DATA, 8));
        driver.addRaw(0, DATA, 8, VIRTQ_DESC_F_NEXT);
        driver.addRaw(1, 0x30000, 16, VIRTQ_DESC_F_INDIRECT);
        Chain c = popOne();
        assertEquals(ChainFault.INDIRECT_IN_CHAIN, c.fault());
        assertEquals(2, c.ringSlots());
        assertEquals(1, c.bufferId());
    }

    @Test
    void h7NestedIndirect() throws Exception {
        open(8);
        driver.writeDescriptorAt(0x30000, 0x31000, 16, 0, VIRTQ_DESC_F_INDIRECT);
        int id = driver.addRaw(0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.NESTED_INDIRECT, id, 1);
    }

    @Test
    void h8NextOnTheLastTableEntryIsIgnored() throws Exception {
        open(8);
        driver.writeDescriptorAt(0x30000, DATA, 8, 0, VIRTQ_DESC_F_NEXT);
        driver.writeDescriptorAt(0x30010, DATA + 8, 8, 0, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT);
        int id = driver.addRaw(0, 0x30000, 32, VIRTQ_DESC_F_INDIRECT);
        Chain c = popOne();
        assertTrue(c.isValid(), c::toString);
        assertEquals(1, c.ringSlots());
        assertEquals(8, c.readableBytes());
        assertEquals(8, c.writableBytes());
        completeAndCheck(id, 0);
        assertEquals(PackedRing.position(1, true), queue.nextAvail(), "nothing walked on into the ring");
    }

    @Test
    void h9IndirectWithoutTheFeature() throws Exception {
        open(8);
        queue.stop();
        queue.setIndirectAllowed(false);
        queue.activate(memory);
        driver.writeIndirectTable(0x30000, writable(DATA, 8));
        int id = driver.addRaw(0, 0x30000, 16, VIRTQ_DESC_F_INDIRECT);
        expectChainFault(ChainFault.INDIRECT_NOT_NEGOTIATED, id, 1);
    }

    @Test
    void h11ABufferOutsideMemoryInTheMiddleOfAChainStillEndsTheChain() throws Exception {
        open(8);
        int id = driver.add(readable(DATA, 8), readable((1 << 20) - 4, 8), writable(DATA, 8));
        expectChainFault(ChainFault.BUFFER_OUT_OF_RANGE, id, 3);
        assertEquals(PackedRing.position(4, true), queue.nextAvail());
    }

    @Test
    void h11ABufferWrappingPast2To64() throws Exception {
        open(8);
        int id = driver.addRaw(0, -8L, 16, 0);
        expectChainFault(ChainFault.BUFFER_OUT_OF_RANGE, id, 1);
    }

    @Test
    void h11ATotalOver4GiB() throws Exception {
        open(8);
        int id = driver.add(readable(DATA, 8), readable(DATA, -1));
        expectChainFault(ChainFault.TOTAL_LENGTH_OVERFLOW, id, 2);
    }

    @Test
    void h12AReadableBufferAfterAWritableOne() throws Exception {
        open(8);
        int id = driver.add(writable(DATA, 8), readable(DATA + 8, 8));
        expectChainFault(ChainFault.READABLE_AFTER_WRITABLE, id, 2);
    }

    @Test
    void h13DescriptorsAreReadOnceAtPop() throws Exception {
        open(8);
        driver.add(readable(DATA, 8), writable(DATA + 8, 8));
        Chain c = popOne();
        // The driver rewrites the ring after the pop; the chain keeps what was read.
        driver.writeSlot(0, 0xDEAD0000L, 1, 9, 0);
        driver.writeSlot(1, 0xDEAD0000L, 1, 9, 0);
        assertEquals(8, c.readableBytes());
        assertEquals(DATA, c.pieceAddress(0));
        assertEquals(DATA + 8, c.pieceAddress(1));
    }

    // ------------------------------------------------------------------- hostile driver: queue faults

    private void assertBroken(QueueFault fault) {
        assertFalse(queue.pop(chain));
        assertEquals(fault, queue.fault());
        assertTrue(queue.isBroken());
        assertFalse(queue.pop(chain));
        assertFalse(queue.hasAvailable());
        assertFalse(queue.enableNotification());
    }

    @Test
    void h2AStaleLapOrABrokenHeadIsAnEmptyRing() throws Exception {
        open(4);
        driver.writeSlot(0, DATA, 8, 0, PackedRing.availFlags(false));
        assertFalse(queue.pop(chain));
        driver.writeSlot(0, DATA, 8, 0, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
        assertFalse(queue.pop(chain));
        driver.writeSlot(0, DATA, 8, 0, 0);
        assertFalse(queue.pop(chain));
        assertFalse(queue.isBroken(), "never scan ahead, never break on an empty slot");
    }

    @Test
    void h3AChainDescriptorNotMarkedAvailableBreaksTheQueue() throws Exception {
        open(8);
        driver.add(readable(DATA, 8), writable(DATA + 8, 8));
        driver.corruptFlags(1, VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED);
        assertBroken(QueueFault.CHAIN_FLAGS_MISMATCH);
        assertEquals(0, queue.inFlightCount());
    }

    @Test
    void h5AChainRunningIntoBuffersInFlightBreaksTheQueue() throws Exception {
        open(4);
        driver.add(writable(DATA, 8));
        popOne();
        // Three free slots; the driver lies with NEXT on all of them and on the in-flight slot after.
        for (int slot = 1; slot < 4; slot++) {
            driver.writeSlot(slot, DATA, 8, 1, driver.availFlagsNow() | VIRTQ_DESC_F_NEXT);
        }
        assertBroken(QueueFault.RING_OVERRUN);
    }

    @Test
    void h5ABufferMadeAvailableWhileEverySlotIsInFlightBreaksTheQueue() throws Exception {
        open(2);
        driver.add(writable(DATA, 8));
        driver.add(writable(DATA, 8));
        popOne();
        assertTrue(queue.pop(new Chain()));
        // Slot 0 of the next lap, though the device returned nothing.
        driver.writeSlot(0, DATA, 8, 7, PackedRing.availFlags(false));
        assertBroken(QueueFault.RING_OVERRUN);
    }

    @Test
    void h10AnIdReusedWhileInFlightBreaksTheQueue() throws Exception {
        open(8);
        driver.add(writable(DATA, 8));
        popOne();
        assertEquals(0, chain.bufferId());
        driver.addWithId(0, writable(DATA, 8));
        assertBroken(QueueFault.BUFFER_ID_IN_FLIGHT);
    }

    @Test
    void aResetQueueServesAgain() throws Exception {
        open(8);
        driver.add(writable(DATA, 8));
        popOne();
        driver.addWithId(0, writable(DATA, 8));
        assertFalse(queue.pop(chain));
        queue.reset();
        assertFalse(queue.isBroken());
        assertEquals(0, queue.inFlightCount());
        PackedDriverQueue fresh = PackedDriverQueue.layout(memory, 8, RING);
        fresh.configure(queue);
        queue.activate(memory);
        int id = fresh.add(writable(DATA, 8));
        assertTrue(queue.pop(chain));
        assertEquals(id, chain.bufferId());
    }

    // ----------------------------------------------------------------------------------- dirty logging

    @Test
    void usedWritesLogTheirDescriptorSlotAndDeviceAreaWritesTheirArea() throws Exception {
        open(8);
        List<long[]> dirty = new ArrayList<>();
        queue.setDirtyLog((gpa, length) -> dirty.add(new long[] {gpa, length}));
        driver.add(writable(DATA, 8));
        driver.add(writable(DATA + 64, 8));
        popOne();
        Chain second = new Chain();
        assertTrue(queue.pop(second));
        second.writer().writeInt(7);
        queue.addUsed(second);
        queue.addUsed(chain);
        queue.disableNotification();
        assertArrayEquals(new long[] {RING, 16}, dirty.get(0), "the used descriptor at slot 0");
        assertArrayEquals(new long[] {DATA + 64, 4}, dirty.get(1), "the bytes written");
        assertArrayEquals(new long[] {RING + 16, 16}, dirty.get(2), "the used descriptor at slot 1");
        assertArrayEquals(new long[] {driver.deviceAreaAddress() + 2, 2}, dirty.get(3), "device area flags");
    }
}
