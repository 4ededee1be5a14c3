package dev.vhostdevice.vhostuser.device;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.testkit.DriverRing;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The same device objects run inside another VMM's process: no socket, no eventfd, the VMM calls in. */
class EmbeddedDeviceHostTest {

    @Test
    void aVmmDrivesTheDeviceInProcessAndGetsOneNotificationPerBatch() throws Exception {
        try (GuestMemory memory = GuestMemory.allocate(0, 1 << 20)) {
            DriverRing driver = new DriverRing(memory.region(0).segment(), 16, 0x0, 0x1000, 0x2000, 0x4000);
            SplitQueue[] queues = {new SplitQueue("q0", 256), new SplitQueue("q1", 256)};
            queues[0].setSize(16);
            queues[0].setAddresses(driver.descGpa, driver.availGpa, driver.usedGpa);
            queues[0].activate(memory);
            List<Integer> interrupts = new ArrayList<>();
            EchoDevice device = new EchoDevice();
            EmbeddedDeviceHost host = new EmbeddedDeviceHost(device, queues, interrupts::add, null, null);

            int a = driver.add("abc".getBytes(), 8);
            int b = driver.add("xy".getBytes(), 8);
            host.kick(0);

            assertEquals(2, driver.usedIdx());
            assertArrayEquals("cba".getBytes(), driver.written(a, 3));
            assertArrayEquals("yx".getBytes(), driver.written(b, 2));
            assertEquals(List.of(0), interrupts, "one interrupt for the batch of two");
            host.kick(0);
            assertEquals(List.of(0), interrupts, "nothing new completed, no interrupt");
        }
    }

    @Test
    void aFailingDeviceCompletesWhatItPoppedAndTheQueueCarriesOn() throws Exception {
        try (GuestMemory memory = GuestMemory.allocate(0, 1 << 20)) {
            DriverRing driver = new DriverRing(memory.region(0).segment(), 16, 0x0, 0x1000, 0x2000, 0x4000);
            SplitQueue queue = new SplitQueue("q", 16);
            queue.setAddresses(driver.descGpa, driver.availGpa, driver.usedGpa);
            queue.activate(memory);
            VirtioDevice failing = new VirtioDevice() {
                final dev.vhostdevice.virtqueue.Chain chain = new dev.vhostdevice.virtqueue.Chain();

                public int queueCount() {
                    return 1;
                }

                public int maxQueueSize() {
                    return 16;
                }

                public long deviceFeatures() {
                    return 0;
                }

                public void handleQueue(DeviceQueue q) {
                    if (q.pop(chain)) {
                        throw new IllegalStateException("host device unplugged");
                    }
                }
            };
            EmbeddedDeviceHost host = new EmbeddedDeviceHost(failing, new SplitQueue[] {queue}, i -> { }, null, null);
            driver.add(new byte[] {1}, 4);
            host.kick(0);
            assertEquals(1, driver.usedIdx(), "the popped chain was completed");
            assertEquals(0, driver.usedLen(0), "with 0 bytes");
            assertTrue(queue.inFlightCount() == 0 && !queue.isBroken());
        }
    }

    /**
     * gpio's shape: serving the request queue completes a chain the device held on the event queue. That
     * completion is notified at once, not at the event queue's next kick (which may never come).
     */
    @Test
    void aCompletionOnAnotherQueueWhileServingOneIsNotifiedAtOnce() throws Exception {
        try (GuestMemory memory = GuestMemory.allocate(0, 1 << 20)) {
            DriverRing requests = new DriverRing(memory.region(0).segment(), 16, 0x0, 0x1000, 0x2000, 0x4000);
            DriverRing events = new DriverRing(memory.region(0).segment(), 16, 0x10000, 0x11000, 0x12000, 0x14000);
            SplitQueue[] queues = {new SplitQueue("requestq", 16), new SplitQueue("eventq", 16)};
            queues[0].setAddresses(requests.descGpa, requests.availGpa, requests.usedGpa);
            queues[1].setAddresses(events.descGpa, events.availGpa, events.usedGpa);
            queues[0].activate(memory);
            queues[1].activate(memory);
            VirtioDevice device = new VirtioDevice() {
                final dev.vhostdevice.virtqueue.Chain chain = new dev.vhostdevice.virtqueue.Chain();
                DeviceContext context;
                int heldEvent = -1;

                public int queueCount() {
                    return 2;
                }

                public int maxQueueSize() {
                    return 16;
                }

                public long deviceFeatures() {
                    return 0;
                }

                public void attach(DeviceContext c) {
                    context = c;
                }

                public void handleQueue(DeviceQueue q) {
                    while (q.pop(chain)) {
                        if (q.index() == 1) {
                            heldEvent = chain.head(); // waits for an event
                            continue;
                        }
                        if (heldEvent >= 0) {
                            context.queue(1).complete(heldEvent, 0); // the request cancels the wait
                            heldEvent = -1;
                        }
                        q.complete(chain);
                    }
                }
            };
            List<Integer> interrupts = new ArrayList<>();
            EmbeddedDeviceHost host = new EmbeddedDeviceHost(device, queues, interrupts::add, null, null);

            events.add(new byte[0], 8);
            host.kick(1);
            assertEquals(List.of(), interrupts, "the event buffer waits");
            requests.add(new byte[] {1}, 8);
            host.kick(0);

            assertEquals(1, events.usedIdx());
            assertTrue(interrupts.contains(1), "the event queue's completion interrupts now: " + interrupts);
            assertTrue(interrupts.contains(0), "and the request's: " + interrupts);
        }
    }
}
