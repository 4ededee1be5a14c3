package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A started queue whose rings leave guest memory (a memory table without their region) parks instead of
 * breaking, and resumes where it was once a table holds the rings again (REM_MEM_REG then ADD_MEM_REG).
 */
class ParkedQueueTest {
    private static final int SIZE = 8;
    private QueueFixture f;
    /** Guest memory that ends before the rings at 0x1000. */
    private GuestMemory withoutRings;

    @BeforeEach
    void setUp() throws Exception {
        f = new QueueFixture(SIZE);
        withoutRings = GuestMemory.allocate(0, 0x1000);
    }

    @AfterEach
    void tearDown() {
        withoutRings.close();
        f.close();
    }

    @Test
    void aRemapWithoutTheRingsParksTheQueueWithoutBreakingIt() {
        f.driver.add(writable(0x10000, 8));
        f.popOne();

        assertFalse(f.queue.remap(withoutRings));

        assertTrue(f.queue.isParked());
        assertFalse(f.queue.isReady());
        assertFalse(f.queue.isBroken(), "parked, not broken");
        assertFalse(f.queue.hasAvailable());
        assertFalse(f.queue.pop(f.chain), "a parked queue pops nothing");
        assertEquals(new QueueState(1, 0, false), f.queue.state(), "position kept");
        assertEquals(1, f.queue.inFlightCount(), "in-flight head kept");
    }

    @Test
    void aRemapThatHoldsTheRingsAgainResumesWhereTheQueueWas() {
        f.driver.add(writable(0x10000, 8));
        int held = f.popOne().head();
        f.queue.remap(withoutRings);
        int next = f.driver.add(writable(0x10100, 8)); // published while parked

        assertTrue(f.queue.remap(f.memory));

        assertFalse(f.queue.isParked());
        assertTrue(f.queue.isReady());
        f.queue.addUsed(held, 0); // a head popped before parking completes after it
        assertEquals(next, f.popOne().head(), "the chain published while parked comes next");
        assertEquals(1, f.driver.usedIdx());
    }

    @Test
    void aParkedQueueStaysParkedThroughRemapsThatStillLackTheRings() {
        f.queue.remap(withoutRings);
        assertFalse(f.queue.remap(withoutRings));
        assertTrue(f.queue.isParked());
    }

    @Test
    void aParkedQueueRefusesConfigurationAndStopEndsIt() {
        f.queue.remap(withoutRings);
        assertThrows(QueueConfigException.class, () -> f.queue.setSize(4));
        assertThrows(QueueConfigException.class, () -> f.queue.restore(new QueueState(5, 5, false)));

        f.queue.stop();

        assertFalse(f.queue.isParked());
        assertFalse(f.queue.remap(f.memory), "a stopped queue is not started by a remap");
        assertFalse(f.queue.isReady());
    }

    @Test
    void aRemapOfAStoppedQueueDoesNothing() {
        f.queue.stop();
        assertFalse(f.queue.remap(withoutRings));
        assertFalse(f.queue.isParked());
    }
}
