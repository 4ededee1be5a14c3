package dev.vhostdevice.gpio;

import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_IN;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_NONE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_OUT;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_STATUS_INVALID;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_STATUS_VALID;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_NONE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_GET_DIRECTION;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_GET_LINE_NAMES;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_GET_VALUE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_IRQ_TYPE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_SET_DIRECTION;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_STATUS_ERR;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_STATUS_OK;
import static dev.vhostdevice.gpio.GpioHost.GPIO_V2_LINE_FLAG_INPUT;
import static dev.vhostdevice.gpio.GpioHost.GPIO_V2_LINE_FLAG_OUTPUT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.gpio.GpioHarness.IrqBuffer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The gpio device on a host chip scripted behind the native seam ({@link ScriptedGpioHost}): which uAPI calls
 * each guest request makes, edges arriving on real line-request fds through epoll, and the interest in each fd
 * changed as buffers come and go.
 */
class HostChipTest {
    /** {@code /dev/gpiochip3}: led (an output), an unnamed input, button (input), relay (output). */
    private final ScriptedGpioHost script = new ScriptedGpioHost(new String[] {"led", "", "button", "relay"},
            new long[] {GPIO_V2_LINE_FLAG_OUTPUT, GPIO_V2_LINE_FLAG_INPUT, GPIO_V2_LINE_FLAG_INPUT,
                    GPIO_V2_LINE_FLAG_OUTPUT});
    private static final int BUTTON = 2;
    private static final long EDGES = GpioHost.GPIO_V2_LINE_FLAG_EDGE_RISING | GpioHost.GPIO_V2_LINE_FLAG_EDGE_FALLING;
    private GpioHarness gpio;

    private GpioHarness start() throws Exception {
        gpio = new GpioHarness(HostChip.open(script, ScriptedGpioHost.PATH));
        return gpio;
    }

    @AfterEach
    void tearDown() {
        if (gpio != null) {
            gpio.close();
        }
    }

    private void assertRefused(int type, int line, long value) {
        assertEquals(VIRTIO_GPIO_STATUS_ERR, gpio.call(type, line, value)[0], "type " + type + " line " + line);
    }

    @Test
    void namesAndDirectionsAreReadAtOpenAndNoLineIsRequestedUntilTheGuestUsesIt() throws Exception {
        start();
        assertEquals(VIRTIO_GPIO_DIRECTION_OUT, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0));
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 1, 0));
        gpio.send(VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 1 + 18);
        assertEquals("\0led\0\0button\0relay\0", new String(gpio.response(), StandardCharsets.US_ASCII));
        assertEquals(List.of(), script.calls);
        assertTrue(gpio.watched.isEmpty());
    }

    @Test
    void aChipWhoseLinesHaveNoNamesReportsANamesSizeOfZero() throws Exception {
        gpio = new GpioHarness(HostChip.open(new ScriptedGpioHost(new String[] {"", ""},
                new long[] {GPIO_V2_LINE_FLAG_INPUT, GPIO_V2_LINE_FLAG_INPUT}), ScriptedGpioHost.PATH));
        byte[] config = new byte[8];
        gpio.device.readConfig(0, config);
        assertEquals(2, config[0]);
        assertEquals(0, config[4]);
    }

    @Test
    void directionsAndValuesMapToOneLineRequestReconfiguredInPlaceAndReleasedOnNone() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        int fd = script.lineFd(BUTTON);
        assertEquals(0, gpio.watched.get(fd), "watched, with no interest until an irq is enabled");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, BUTTON, 1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_OUT);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, BUTTON, 0);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, BUTTON, 0));
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_NONE);
        assertEquals(List.of("request 2 0x4 0", "config 2 0x8 1", "set 2 0", "get 2", "close 2"), script.calls);
        assertFalse(gpio.watched.containsKey(fd), "unwatched before it was closed");
    }

    @Test
    void anUnrequestedInputIsRequestedToBeReadButAnUnconfiguredOutputIsLeftAlone() throws Exception {
        start();
        script.inputLevel[1] = 1;
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0));
        assertRefused(VIRTIO_GPIO_MSG_GET_VALUE, 3, 0);
        assertEquals(List.of("request 1 0x4 0", "get 1"), script.calls);
    }

    @Test
    void anEdgeOnTheLineRequestFdCompletesTheWaitingBufferThroughEpoll() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        assertEquals(GPIO_V2_LINE_FLAG_INPUT | EDGES, script.flags(BUTTON));
        int fd = script.lineFd(BUTTON);
        assertEquals(Linux.EPOLLIN, gpio.watched.get(fd));
        IrqBuffer b = gpio.irq(BUTTON);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted());
        script.edge(BUTTON, 1);
        assertEquals(1, gpio.pump());
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
        IrqBuffer falling = gpio.irq(BUTTON);
        script.edge(BUTTON, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(falling));
    }

    @Test
    void aLatchedEdgeTurnsTheFdsInterestOffUntilABufferTakesItAndLaterEdgesCoalesce() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        int fd = script.lineFd(BUTTON);
        script.edge(BUTTON, 1);
        assertEquals(1, gpio.pump());
        assertEquals(0, gpio.watched.get(fd), "latched: nothing more to learn from the fd");
        script.edge(BUTTON, 0);
        script.edge(BUTTON, 1);
        assertEquals(0, gpio.pump(), "an edge storm does not wake the worker");
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(gpio.irq(BUTTON)), "at once");
        assertEquals(Linux.EPOLLIN, gpio.watched.get(fd));
        IrqBuffer next = gpio.irq(BUTTON);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "the coalesced edges were drained");
        script.edge(BUTTON, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(next));
    }

    @Test
    void disablingTheIrqReconfiguresWithoutEdgesAndReturnsTheBuffer() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        IrqBuffer b = gpio.irq(BUTTON);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_NONE);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b));
        assertEquals(GPIO_V2_LINE_FLAG_INPUT, script.flags(BUTTON));
        assertEquals(0, gpio.watched.get(script.lineFd(BUTTON)));
    }

    @Test
    void levelTypesAreRefusedBecauseTheUapiDetectsOnlyEdges() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW);
        assertEquals(List.of("request 2 0x4 0"), script.calls);
    }

    @Test
    void anIrqOnAnOutputIsRefusedByTheChip() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, 0, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(0)), "the irq stayed NONE");
        assertEquals(List.of("request 0 0x8 1", "config 0 0x8 1"), script.calls,
                "an output at start-up is taken at the value the guest sets first");
    }

    @Test
    void aFailingIoctlIsAnErrorStatusLoggedOncePerLineAndErrno() throws Exception {
        start();
        String log = capturingStandardError(() -> {
            for (int i = 0; i < 3; i++) {
                script.failNext.put("request", Errno.EBUSY);
                assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
            }
            script.failNext.put("request", Errno.EIO);
            assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
            script.failNext.put("request", Errno.EBUSY);
            assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 1, VIRTIO_GPIO_DIRECTION_IN);
        });
        assertEquals(1, count(log, "line 2: GPIO_V2_GET_LINE_IOCTL failed: EBUSY"), log);
        assertEquals(1, count(log, "line 2: GPIO_V2_GET_LINE_IOCTL failed: EIO"), log);
        assertEquals(1, count(log, "line 1: GPIO_V2_GET_LINE_IOCTL failed: EBUSY"), log);
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, BUTTON, 0), "unchanged");
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);

        script.failNext.put("get", Errno.EIO);
        assertRefused(VIRTIO_GPIO_MSG_GET_VALUE, BUTTON, 0);
        script.failNext.put("config", Errno.EINVAL);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(BUTTON)), "the irq stayed NONE");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, BUTTON, 1);
        script.failNext.put("config", Errno.EINVAL);
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_OUT);
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, BUTTON, 0));
    }

    @Test
    void aLineEventReadErrorStopsTheFdFromWakingTheWorker() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        gpio.irq(BUTTON);
        script.edge(BUTTON, 1);
        script.failNext.put("events", Errno.EIO);
        capturingStandardError(() -> assertEquals(1, gpio.pump()));
        assertEquals(0, gpio.watched.get(script.lineFd(BUTTON)));
    }

    @Test
    void closingReleasesEveryLineAndTheChip() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 1, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        gpio.irq(BUTTON);
        assertEquals(3, script.openFds);
        GpioHarness closing = gpio;
        gpio = null;
        closing.close();
        assertEquals(0, script.openFds);
        assertTrue(closing.watched.isEmpty());
    }

    @Test
    void aResetReleasesEveryLineAndRestoresTheDirectionsReadAtOpen() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 3, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_IN);
        gpio.device.reset();
        assertEquals(1, script.openFds, "only the chip");
        assertTrue(gpio.watched.isEmpty());
        assertEquals(VIRTIO_GPIO_DIRECTION_OUT, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 3, 0));
    }

    @Test
    void aChipThatCannotBeOpenedIsRefusedWithOneLine() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> HostChip.open(script, "/dev/gpiochip9"));
        assertEquals("cannot open /dev/gpiochip9: ENOENT", e.getMessage());
    }

    @Test
    void anIrqTypeChangeOnAReleasedLineIsRefused() throws Exception {
        start();
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, BUTTON, VIRTIO_GPIO_DIRECTION_NONE);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, BUTTON, VIRTIO_GPIO_IRQ_TYPE_NONE);
        assertEquals(VIRTIO_GPIO_STATUS_OK, gpio.call(VIRTIO_GPIO_MSG_GET_DIRECTION, BUTTON, 0)[0]);
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int at = text.indexOf(part); at >= 0; at = text.indexOf(part, at + 1)) {
            n++;
        }
        return n;
    }

    private interface Action {
        void run() throws Exception;
    }

    private static synchronized String capturingStandardError(Action action) throws Exception {
        PrintStream saved = System.err;
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            action.run();
        } finally {
            System.setErr(saved);
        }
        return err.toString(StandardCharsets.UTF_8);
    }
}
