package dev.vhostdevice.vhostuser.device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Polling through {@link DeviceQueue}: a runner that polls serves chains published without a kick, keeps the
 * driver from kicking meanwhile, and hands notifications back before it sleeps. With and without EVENT_IDX.
 */
class DeviceQueuePollTest {
    private GuestMemory memory;
    private DriverQueue driver;
    private SplitQueue split;
    private final List<Integer> interrupts = new ArrayList<>();
    private DeviceQueue queue;

    private void start(boolean eventIdx) throws Exception {
        memory = GuestMemory.allocate(0, 1 << 20);
        driver = DriverQueue.layout(memory, 16, 0);
        driver.setEventIdx(eventIdx);
        split = new SplitQueue("q", 16);
        driver.configure(split);
        split.setEventIdx(eventIdx);
        split.activate(memory);
        queue = new DeviceQueue(0, split, interrupts::add);
    }

    private int publish(long at) {
        driver.write(at, "abc".getBytes());
        int head = driver.add(Buffer.readable(at, 3), Buffer.writable(at + 0x100, 8));
        return head;
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void whilePollingChainsAreServedAndNotifiedWithoutAKickBeingAskedFor(boolean eventIdx) throws Exception {
        start(eventIdx);
        EchoDevice device = new EchoDevice();
        publish(0x10000);
        assertTrue(driver.kickPrepare(), "a sleeping device wants the first kick");
        assertTrue(queue.poll(device), "the kick's chain is served");
        assertEquals(1, driver.usedIdx());
        assertEquals(List.of(0), interrupts, "the driver is notified per batch while polling");
        driver.pollUsed();
        driver.setUsedEvent(1);

        publish(0x20000);
        assertFalse(driver.kickPrepare(), "no kick while the device polls");
        assertTrue(queue.poll(device));
        assertEquals(2, driver.usedIdx());
        assertEquals(List.of(0, 0), interrupts);
        assertFalse(queue.poll(device), "nothing available: no progress");
        memory.close();
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void endingThePollAsksForKicksAgainAndServesWhatCameMeanwhile(boolean eventIdx) throws Exception {
        start(eventIdx);
        EchoDevice device = new EchoDevice();
        publish(0x10000);
        queue.poll(device);
        publish(0x20000); // published after the device's last look, without a kick
        driver.kickPrepare();
        queue.endPoll(device);
        assertEquals(2, driver.usedIdx(), "the re-check after re-enabling served it");
        publish(0x30000);
        assertTrue(driver.kickPrepare(), "a sleeping device wants a kick again");
        memory.close();
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void aDeviceHoldingChainsBackIsNotCalledAgainUntilThePollEnds(boolean eventIdx) throws Exception {
        start(eventIdx);
        int[] calls = {0};
        VirtioDevice holding = new EchoDevice() {
            @Override
            public void handleQueue(DeviceQueue q) {
                calls[0]++; // a rate limit: leaves the chains in the ring
            }
        };
        publish(0x10000);
        assertFalse(queue.poll(holding), "no progress");
        assertFalse(queue.poll(holding));
        assertEquals(1, calls[0], "not spun on while it holds back");
        queue.endPoll(holding);
        assertEquals(2, calls[0], "ending the poll re-checks the ring, as a service does");
        assertFalse(queue.poll(holding));
        assertEquals(3, calls[0], "a new polling phase asks the device again");
        assertEquals(0, driver.usedIdx());
        memory.close();
    }
}
