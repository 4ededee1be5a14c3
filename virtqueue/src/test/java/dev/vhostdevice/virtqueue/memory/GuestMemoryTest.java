package dev.vhostdevice.virtqueue.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Translation of guest-physical ranges: a range is guest memory only if every byte is; rings and tables
 * ({@link GuestMemory#slice}) must lie in one region, buffers ({@link GuestMemory#contains}) may span adjacent ones.
 */
class GuestMemoryTest {
    private Arena arena;
    private GuestMemory memory;

    /** [0x0, 0x10000) and [0x10000, 0x20000) adjacent, a hole, then [0x30000, 0x31000). */
    @BeforeEach
    void setUp() {
        arena = Arena.ofShared();
        memory = GuestMemory.of(region(0x30000, 0x1000), region(0x10000, 0x10000), region(0, 0x10000));
    }

    @AfterEach
    void tearDown() {
        arena.close();
    }

    private GuestRegion region(long gpa, long size) {
        return new GuestRegion(gpa, size, arena.allocate(size, 4096));
    }

    @Test
    void regionsAreSortedByAddress() {
        assertEquals(0, memory.region(0).guestAddress());
        assertEquals(0x10000, memory.region(1).guestAddress());
        assertEquals(0x30000, memory.region(2).guestAddress());
    }

    @Test
    void everyAddressFindsItsRegionAndHolesFindNone() {
        assertEquals(0, memory.regionIndex(0));
        assertEquals(0, memory.regionIndex(0xFFFF));
        assertEquals(1, memory.regionIndex(0x10000));
        assertEquals(1, memory.regionIndex(0x1FFFF));
        assertEquals(-1, memory.regionIndex(0x20000));
        assertEquals(2, memory.regionIndex(0x30FFF));
        assertEquals(-1, memory.regionIndex(0x31000));
        assertEquals(-1, memory.regionIndex(-1L));
        assertEquals(-1, memory.regionIndex(Long.MIN_VALUE));
    }

    @Test
    void aSliceMustLieInOneRegion() {
        assertNotNull(memory.slice(0xFFF0, 16));
        assertNull(memory.slice(0xFFF0, 17), "spans two adjacent regions");
        assertNull(memory.slice(0x30FF0, 17), "runs off the last region");
        assertNull(memory.slice(0x20000, 1), "in a hole");
        assertNull(memory.slice(0, 0), "empty");
        assertNull(memory.slice(0x100, -1L), "a length near 2^64");
    }

    @Test
    void aSliceSeesTheRegionsBytes() {
        memory.region(1).segment().set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0x10, (byte) 42);
        MemorySegment slice = memory.slice(0x10010, 1);
        assertEquals(42, slice.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
    }

    @Test
    void aRangeMayStraddleAdjacentRegionsButNotAHole() {
        assertTrue(memory.contains(0xFFF0, 0x20));
        assertTrue(memory.contains(0, 0x20000));
        assertFalse(memory.contains(0, 0x20001));
        assertFalse(memory.contains(0x1FFF0, 0x20));
        assertTrue(memory.contains(0x30000, 0x1000));
        assertTrue(memory.contains(0x30000, 0));
        assertFalse(memory.contains(0x20000, 0));
        assertFalse(memory.contains(0x100, -5));
    }

    @Test
    void aRangeWrappingPast2To64IsNotGuestMemory() {
        GuestMemory top = GuestMemory.of(region(-0x1000L, 0x1000), region(0, 0x1000));
        assertTrue(top.contains(-0x10L, 0x10), "ends exactly at 2^64");
        assertFalse(top.contains(-0x10L, 0x20), "wraps to 0, even though 0 is mapped");
        assertNull(top.slice(-0x10L, 0x20));
    }

    @Test
    void overlappingRegionsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.of(region(0, 0x2000), region(0x1000, 0x2000)));
        assertThrows(IllegalArgumentException.class, () -> GuestMemory.of(region(0, 0x2000), region(0, 0x1000)));
    }

    @Test
    void aRegionMustBeAsLongAsItsSegmentAndNotWrap() {
        MemorySegment segment = arena.allocate(0x1000);
        assertThrows(IllegalArgumentException.class, () -> new GuestRegion(0, 0x2000, segment));
        assertThrows(IllegalArgumentException.class, () -> new GuestRegion(0, 0, MemorySegment.NULL));
        assertThrows(IllegalArgumentException.class, () -> new GuestRegion(-0x800L, 0x1000, segment));
    }

    @Test
    void allocatedMemoryIsFreedOnClose() {
        GuestMemory owned = GuestMemory.allocate(0x1000, 0x1000);
        MemorySegment segment = owned.region(0).segment();
        segment.set(java.lang.foreign.ValueLayout.JAVA_BYTE, 0, (byte) 1);
        owned.close();
        assertFalse(segment.scope().isAlive());
    }

    @Test
    void callerOwnedSegmentsOutliveTheMemory() {
        memory.close();
        assertTrue(memory.region(0).segment().scope().isAlive());
    }
}
