package dev.vhostdevice.gpio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue.Completion;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The gpio device in its real vhost-user server, driven over the socket by a front-end replaying QEMU 10's
 * sequence: interrupts travel from the simulated chip's eventfd through the session worker's own epoll loop to
 * the event queue and its call eventfd; a front-end that disconnects with a buffer waiting leaves no fd and no
 * thread behind.
 */
class GpioSessionTest {
    private static final Duration WAIT = Duration.ofSeconds(5);

    @TempDir
    Path dir;
    VhostUserServer server;
    TestFrontend frontend;
    FrontendQueue requests;
    FrontendQueue events;
    long fdsBefore;
    int threadsBefore;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("gpio.sock"),
                () -> new GpioDevice(new SimulatedChip(8, Linux.system())));
        fdsBefore = openFds();
        threadsBefore = Thread.activeCount();
        frontend = TestFrontend.connect(dir.resolve("gpio.sock"));
        frontend.ram();
        frontend.negotiateLikeQemu10(QemuDevice.gpio());
        frontend.sync(); // the unmasked call fds QEMU sends last (without a reply) are in force
        requests = frontend.queue(GpioDevice.REQUEST_QUEUE);
        events = frontend.queue(GpioDevice.EVENT_QUEUE);
    }

    @AfterEach
    void stop() {
        if (frontend != null) {
            frontend.close();
        }
        server.close();
    }

    private byte[] request(int type, int line, int value) throws Exception {
        requests.post(new byte[] {(byte) type, 0, (byte) line, 0, (byte) value, 0, 0, 0}, 2);
        requests.kick();
        Completion c = requests.awaitUsed(WAIT);
        assertEquals(2, c.length());
        return c.written();
    }

    private void waitForIrq(int line) throws Exception {
        events.post(new byte[] {(byte) line, 0}, 1);
        events.kick();
    }

    @Test
    void anEdgeOnTheSimulatedChipCompletesTheWaitingBufferThroughTheWorkersEpollAndInterrupts() throws Exception {
        assertArrayEquals(new byte[] {0, 0}, request(GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE, 0, 0));
        request(GpioDevice.VIRTIO_GPIO_MSG_SET_DIRECTION, 0, GpioDevice.VIRTIO_GPIO_DIRECTION_OUT);
        request(GpioDevice.VIRTIO_GPIO_MSG_IRQ_TYPE, 1, GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        for (int toggle = 1; toggle <= 20; toggle++) {
            waitForIrq(1);
            assertThrows(AssertionError.class, () -> events.awaitUsed(Duration.ofMillis(20)), "it waits");
            events.takeCalls();
            request(GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE, 0, toggle & 1);
            Completion c = events.awaitUsed(WAIT);
            assertArrayEquals(new byte[] {GpioDevice.VIRTIO_GPIO_IRQ_STATUS_VALID}, c.written(), "toggle " + toggle);
            assertTrue(events.awaitCall(WAIT) > 0, "the guest is interrupted at toggle " + toggle);
        }
        waitForIrq(1);
        request(GpioDevice.VIRTIO_GPIO_MSG_IRQ_TYPE, 1, GpioDevice.VIRTIO_GPIO_IRQ_TYPE_NONE);
        assertArrayEquals(new byte[] {GpioDevice.VIRTIO_GPIO_IRQ_STATUS_INVALID}, events.awaitUsed(WAIT).written());
    }

    @Test
    void disconnectingWithABufferWaitingLeavesNoFdAndNoThread() throws Exception {
        request(GpioDevice.VIRTIO_GPIO_MSG_IRQ_TYPE, 1, GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        waitForIrq(1);
        assertThrows(AssertionError.class, () -> events.awaitUsed(Duration.ofMillis(50)));
        frontend.close();
        frontend = null;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while ((openFds() > fdsBefore || Thread.activeCount() > threadsBefore) && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(fdsBefore, openFds(), "the chip's eventfd, the worker's epoll and the session's fds closed");
        assertEquals(threadsBefore, Thread.activeCount(), "the session's worker is gone and nothing else was started");
    }

    private static long openFds() throws Exception {
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            return list.count() - 1; // the listing's own directory fd
        }
    }
}
