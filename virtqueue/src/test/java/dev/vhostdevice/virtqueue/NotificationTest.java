package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.testing.DriverQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Used-buffer notifications and kick suppression, with and without VIRTIO_F_EVENT_IDX (virtio 1.2 §2.7.7–10). */
class NotificationTest {
    private QueueFixture f;
    private DriverQueue driver;

    @BeforeEach
    void setUp() throws Exception {
        f = new QueueFixture(16);
        driver = f.driver;
    }

    @AfterEach
    void tearDown() {
        f.close();
    }

    private void serveOne() {
        assertTrue(f.queue.pop(f.chain));
        f.queue.addUsed(f.chain);
    }

    @ParameterizedTest(name = "used_event {0}, old {1}, new {2} -> {3}")
    @CsvSource({
            "0, 0, 1, true",
            "5, 3, 5, false",
            "5, 3, 7, true",
            "65535, 65534, 2, true",
            "7, 9, 9, false",
    })
    void needEventFollowsTheSpecTable(int event, int oldIdx, int newIdx, boolean expected) {
        assertEquals(expected, VirtioRing.needEvent(event, newIdx, oldIdx));
    }

    @Test
    void withoutEventIdxTheDriverIsNotifiedUnlessItSetNoInterrupt() {
        driver.add(writable(0x10000, 4));
        serveOne();
        assertTrue(f.queue.needsNotification());

        driver.setNoInterrupt(true);
        driver.add(writable(0x10000, 4));
        serveOne();
        assertFalse(f.queue.needsNotification());
    }

    @Test
    void nothingCompletedMeansNoNotification() {
        assertFalse(f.queue.needsNotification());
        driver.add(writable(0x10000, 4));
        serveOne();
        assertTrue(f.queue.needsNotification());
        assertFalse(f.queue.needsNotification(), "the decision is once per batch");
    }

    @Test
    void withEventIdxTheDriverIsNotifiedOnlyWhenABatchPassesUsedEvent() throws Exception {
        enableEventIdx();
        driver.setUsedEvent(2);
        for (int i = 0; i < 2; i++) {
            driver.add(writable(0x10000 + 64L * i, 4));
            serveOne();
            assertFalse(f.queue.needsNotification(), "used idx " + (i + 1) + " has not passed used_event 2");
        }
        driver.add(writable(0x10000, 4));
        serveOne();
        assertTrue(f.queue.needsNotification(), "used idx 3 passed used_event 2");

        driver.setNoInterrupt(true); // ignored under EVENT_IDX
        driver.setUsedEvent(3);
        driver.add(writable(0x10000, 4));
        serveOne();
        assertTrue(f.queue.needsNotification());
    }

    @Test
    void theDeviceAndTheDriverKitAgreeOnWhenAnInterruptIsWanted() throws Exception {
        enableEventIdx();
        driver.setEventIdx(true);
        for (int usedEvent = 0; usedEvent < 6; usedEvent++) {
            driver.setUsedEvent(usedEvent);
            int before = driver.usedIdx();
            driver.add(writable(0x10000, 4));
            serveOne();
            assertEquals(driver.interruptWanted(before), f.queue.needsNotification(), "used_event " + usedEvent);
            driver.pollUsed();
        }
    }

    @Test
    void aBatchIsOneDecision() throws Exception {
        enableEventIdx();
        driver.setUsedEvent(0);
        for (int i = 0; i < 5; i++) {
            driver.add(writable(0x10000 + 64L * i, 4));
        }
        for (int i = 0; i < 5; i++) {
            serveOne();
        }
        assertTrue(f.queue.needsNotification());
    }

    @Test
    void withoutEventIdxKicksAreSuppressedWithNoNotify() {
        f.queue.disableNotification();
        driver.add(writable(0x10000, 4));
        assertFalse(driver.kickPrepare());
        assertTrue(f.queue.enableNotification(), "a chain arrived while kicks were off: drain again");
        driver.add(writable(0x10100, 4));
        assertTrue(driver.kickPrepare());
    }

    @Test
    void withEventIdxTheDeviceAsksForAKickAtItsNextAvailIndex() throws Exception {
        enableEventIdx();
        driver.setEventIdx(true);
        driver.add(writable(0x10000, 4));
        driver.add(writable(0x10100, 4));
        serveOne();
        assertTrue(f.queue.enableNotification(), "chain 2 is still waiting");
        assertEquals(1, driver.availEvent());
        serveOne();
        assertFalse(f.queue.enableNotification());
        assertEquals(2, driver.availEvent());
        driver.kickPrepare();
        driver.add(writable(0x10200, 4));
        assertTrue(driver.kickPrepare(), "the driver passed avail_event 2");
    }

    @Test
    void theDrainLoopLosesNoChainPublishedBetweenDrainAndEnable() {
        // disable -> drain -> (driver publishes without kicking) -> enable says "look again".
        f.queue.disableNotification();
        driver.add(writable(0x10000, 4));
        serveOne();
        driver.add(writable(0x10100, 4));
        assertFalse(driver.kickPrepare(), "kicks are off, so this chain comes with no kick");
        assertTrue(f.queue.enableNotification());
        serveOne();
        assertFalse(f.queue.enableNotification());
    }

    private void enableEventIdx() throws QueueConfigException {
        f.queue.stop();
        f.queue.setEventIdx(true);
        f.queue.activate(f.memory);
    }
}
