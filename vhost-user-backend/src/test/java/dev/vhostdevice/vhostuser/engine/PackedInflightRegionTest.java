package dev.vhostdevice.vhostuser.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.virtqueue.PackedRing;
import dev.vhostdevice.virtqueue.VirtioRing;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The packed inflight region's crash points (packed-ring.md §5.4), a back-end "dying" between any two steps: a
 * fetch is committed by old_free_head, a completion by the old_* copy after its used descriptor is published; a
 * completion whose used descriptor reached the ring but was not committed is committed by the next back-end.
 */
class PackedInflightRegionTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int SIZE = 8;
    private static final int FRESH = PackedRing.FRESH_POSITION | PackedRing.FRESH_POSITION << 16;
    private static final int NEXT = 1; // VIRTQ_DESC_F_NEXT

    private final Arena arena = Arena.ofConfined();
    private final MemorySegment buffer = arena.allocate(PackedInflightRegion.stride(SIZE));
    private final MemorySegment ring = arena.allocate((long) VirtioRing.DESCRIPTOR_SIZE * SIZE);

    @AfterEach
    void close() {
        arena.close();
    }

    private PackedInflightRegion region() {
        return new PackedInflightRegion("test", buffer, SIZE, SIZE);
    }

    /** A pop as PackedQueue reports it: the ring descriptors, then the device-side head. */
    private static void fetch(PackedInflightRegion r, int head, int id, int descriptors) {
        for (int i = 0; i < descriptors; i++) {
            r.descriptor(i, 0x1000L * (id + 1) + i, 64, id, i < descriptors - 1 ? NEXT : 0);
        }
        r.popped(head);
    }

    private static int position(int availSlot, boolean availWrap, int usedSlot, boolean usedWrap) {
        return PackedRing.position(availSlot, availWrap) | PackedRing.position(usedSlot, usedWrap) << 16;
    }

    @Test
    void aFreshRegionResumesAtTheBaseWithNothingInFlight() {
        PackedInflightRegion r = region();
        assertEquals(FRESH, r.prepare(FRESH, ring));
        assertEquals(0, r.resubmitCount());
    }

    @Test
    void committedFetchesAreInFlightAndAvailResumesPastTheirSlots() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        fetch(r, 1, 7, 1);
        PackedInflightRegion next = region();
        assertEquals(position(3, true, 0, true), next.prepare(FRESH, ring));
        assertEquals(2, next.resubmitCount());
    }

    @Test
    void aFetchNotYetCommittedIsNotInFlight() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        r.descriptor(0, 0x9000, 64, 9, 0); // died before popped(): old_free_head not moved
        PackedInflightRegion next = region();
        assertEquals(position(2, true, 0, true), next.prepare(FRESH, ring));
        assertEquals(1, next.resubmitCount());
    }

    @Test
    void aCompletionWhoseUsedDescriptorNeverReachedTheRingIsRolledBack() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        fetch(r, 1, 7, 1);
        r.completing(1); // died before the used descriptor was published
        PackedInflightRegion next = region();
        assertEquals(position(3, true, 0, true), next.prepare(FRESH, ring));
        assertEquals(2, next.resubmitCount());
    }

    @Test
    void aCompletionPublishedButNotCommittedIsCommittedByTheNextBackend() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        fetch(r, 1, 7, 1);
        r.completing(1);
        ring.set(U16, PackedRing.DESC_FLAGS, (short) PackedRing.usedFlags(true)); // the used descriptor, lap 1
        PackedInflightRegion next = region();
        assertEquals(position(3, true, 1, true), next.prepare(FRESH, ring), "used past id 7's one slot");
        assertEquals(1, next.resubmitCount());
    }

    @Test
    void aCommittedCompletionFreesItsEntriesForLaterFetches() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        int used = 0;
        for (int lap = 0; lap < 20; lap++) {
            fetch(r, 0, lap, 3); // 60 fetches through 8 entries: only possible if completions free them
            r.completing(0);
            used += 3;
            r.completed(0, PackedRing.position(used % SIZE, (used / SIZE) % 2 == 0));
        }
        fetch(r, 0, 99, 2);
        PackedInflightRegion next = region();
        // 60 slots used on a ring of 8: 7 laps and 4 slots, wrap flipped 7 times (1 -> 0).
        assertEquals(position(6, false, 4, false), next.prepare(FRESH, ring));
        assertEquals(1, next.resubmitCount());
    }

    @Test
    void aRegionForAnotherQueueSizeOrVersionStartsAfresh() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        buffer.set(U16, 10, (short) 16); // desc_num
        PackedInflightRegion next = region();
        assertEquals(FRESH, next.prepare(FRESH, ring));
        assertEquals(0, next.resubmitCount());
        buffer.set(U16, 18, (short) 0x7FFF); // old_used_idx beyond the ring
        assertEquals(FRESH, region().prepare(FRESH, ring));
    }

    @Test
    void aRegionWhoseUsedPositionTheRingDoesNotShowStartsAfreshAtTheBase() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 2);
        fetch(r, 1, 7, 1);
        r.completing(1);
        // Used position 1, lap 1: the ring's slot 0 must carry that lap's AVAIL bit.
        r.completed(1, PackedRing.position(1, true));
        assertEquals(FRESH, region().prepare(FRESH, ring), "a zeroed ring: the driver laid out a new one");
        r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 5, 1);
        r.completing(0);
        r.completed(0, PackedRing.position(1, true));
        ring.set(U16, PackedRing.DESC_FLAGS, (short) PackedRing.usedFlags(true));
        assertEquals(position(1, true, 1, true), region().prepare(FRESH, ring), "the same ring: the region wins");
    }

    @Test
    void entriesInFlightAreResubmittedInCounterOrderEvenAcrossAWrappedCounter() {
        PackedInflightRegion r = region();
        r.prepare(FRESH, ring);
        fetch(r, 0, 1, 1);
        fetch(r, 1, 2, 1);
        fetch(r, 2, 3, 1);
        // Entries 0, 1, 2 hold the three buffers; make the first fetched have the largest counter.
        buffer.set(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 32 + 8, -1L);
        PackedInflightRegion next = region();
        next.prepare(FRESH, ring);
        assertEquals(3, next.resubmitCount());
        assertEquals(java.util.List.of(1, 2, 0), next.resubmitOrder());
    }
}
