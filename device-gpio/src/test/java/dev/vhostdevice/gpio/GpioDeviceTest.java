package dev.vhostdevice.gpio;

import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_IN;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_NONE;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_DIRECTION_OUT;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_STATUS_INVALID;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_STATUS_VALID;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH;
import static dev.vhostdevice.gpio.GpioDevice.VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING;
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
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.gpio.GpioHarness.IrqBuffer;
import dev.vhostdevice.vhostuser.engine.FeatureOffer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The gpio device on the simulated chip {@code s8}, driven in-process through both queues, its interrupts
 * delivered through a real eventfd and epoll set ({@link GpioHarness#pump}).
 */
class GpioDeviceTest {
    private static final String NAMES = "sim-0\0sim-1\0sim-2\0sim-3\0sim-4\0sim-5\0sim-6\0sim-7\0";

    private GpioHarness gpio;

    private GpioHarness start(int lines) throws Exception {
        gpio = new GpioHarness(new SimulatedChip(lines, Linux.system()));
        return gpio;
    }

    @AfterEach
    void tearDown() {
        if (gpio != null) {
            gpio.close();
        }
    }

    /** Makes {@code out} an output at {@code value} and its partner an input, as sysfs does. */
    private void drive(int out, int value) {
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, out, value);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, out, VIRTIO_GPIO_DIRECTION_OUT);
    }

    private void assertRefused(int type, int line, long value) {
        int[] r = gpio.call(type, line, value);
        assertEquals(VIRTIO_GPIO_STATUS_ERR, r[0], "type " + type + " line " + line + " value " + value);
        assertEquals(0, r[1], "the value byte of an error is 0");
    }

    // ------------------------------------------------------------------------------ identity, config

    @Test
    void itIsDevice41WithTwoQueuesAndTheIrqFeature() throws Exception {
        start(8);
        assertEquals(41, GpioDevice.VIRTIO_ID_GPIO);
        assertEquals(2, gpio.device.queueCount());
        assertEquals(1L, gpio.device.deviceFeatures() & 1L, "VIRTIO_GPIO_F_IRQ");
        assertEquals(1L, FeatureOffer.virtioFeatures(gpio.device) & 1L);
        assertEquals(8, gpio.device.configSize());
    }

    @Test
    void configSpaceHoldsNgpioAndTheNamesSizeAndAnySliceIsReturnedExactly() throws Exception {
        start(8);
        byte[] all = new byte[8];
        gpio.device.readConfig(0, all);
        assertArrayEquals(new byte[] {8, 0, 0, 0, 48, 0, 0, 0}, all, "ngpio 8, padding, names 8 x 'sim-N\\0'");
        byte[] names = new byte[4];
        gpio.device.readConfig(4, names);
        assertArrayEquals(new byte[] {48, 0, 0, 0}, names);
        byte[] high = new byte[1];
        gpio.device.readConfig(1, high);
        assertArrayEquals(new byte[] {0}, high);
        byte[] none = new byte[0];
        gpio.device.readConfig(8, none);
    }

    @Test
    void aChipOf256LinesHasTwoByteNgpio() throws Exception {
        start(256);
        byte[] all = new byte[2];
        gpio.device.readConfig(0, all);
        assertArrayEquals(new byte[] {0, 1}, all);
    }

    // ------------------------------------------------------------------------------ requests

    @Test
    void lineNamesComeBackWhenTheResponseIsExactlyOnePlusTheNamesSize() throws Exception {
        start(8);
        Used used = gpio.send(VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, 1 + 48);
        assertEquals(49, used.length(), "the driver drops the names unless the used length is exact");
        byte[] r = gpio.response();
        assertEquals(VIRTIO_GPIO_STATUS_OK, r[0]);
        assertEquals(NAMES, new String(r, 1, 48, StandardCharsets.US_ASCII));
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 48, 50})
    void lineNamesIntoABufferOfTheWrongSizeAreAnError(int length) throws Exception {
        start(8);
        Used used = gpio.send(VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0, length);
        assertEquals(2, used.length());
        assertEquals(VIRTIO_GPIO_STATUS_ERR, gpio.response()[0]);
        assertEquals(0, gpio.response()[1]);
        if (length > 2) {
            assertEquals((byte) 0xee, gpio.response()[2], "nothing written past the error");
        }
    }

    @Test
    void everyLineStartsAsAnInputReadingZero() throws Exception {
        start(8);
        for (int line = 0; line < 8; line++) {
            assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, line, 0));
            assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, line, 0));
        }
    }

    @Test
    void anInputReadsWhatItsWiredPartnerDrivesAndTheRolesSwap() throws Exception {
        start(8);
        drive(0, 1);
        assertEquals(VIRTIO_GPIO_DIRECTION_OUT, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0));
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0));
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0), "an output reads its own value");
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 2, 0), "another pair is not wired to it");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0));

        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_IN);
        drive(1, 1);
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0));
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 1, VIRTIO_GPIO_DIRECTION_NONE);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0), "a released line drives nothing");
        assertEquals(VIRTIO_GPIO_DIRECTION_NONE, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 1, 0));
    }

    @Test
    void theLastLineOfAnOddChipHasNoPartner() throws Exception {
        start(3);
        drive(1, 1);
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0));
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 2, 0));
    }

    @Test
    void aValueSetOnAnInputIsOnlyCachedUntilTheLineBecomesAnOutput() throws Exception {
        start(8);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0), "line 0 is still an input");
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT);
        assertEquals(1, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0));
    }

    @Test
    void directionOutBeforeAnyValueIsAnErrorAndNoneForgetsTheValue() throws Exception {
        start(8);
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_NONE);
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT);
        assertEquals(VIRTIO_GPIO_DIRECTION_NONE, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0));
    }

    @ParameterizedTest
    @ValueSource(ints = {VIRTIO_GPIO_MSG_GET_DIRECTION, VIRTIO_GPIO_MSG_SET_DIRECTION, VIRTIO_GPIO_MSG_GET_VALUE,
            VIRTIO_GPIO_MSG_SET_VALUE, VIRTIO_GPIO_MSG_IRQ_TYPE})
    void aLineOutOfRangeIsAnErrorForEveryPerLineRequest(int type) throws Exception {
        start(8);
        assertRefused(type, 8, 0);
        assertRefused(type, 0xFFFF, 0);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 7, 0), "the device carries on");
    }

    @Test
    void invalidValuesDirectionsAndIrqTypesAreErrors() throws Exception {
        start(8);
        assertRefused(VIRTIO_GPIO_MSG_SET_VALUE, 0, 2);
        assertRefused(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0xFFFF_FFFFL);
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, 3);
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, 0x8000_0002L);
        for (int type : new int[] {5, 6, 7, 9, 12, 15, 16, 0x101}) {
            assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, 0, type);
        }
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0), "nothing changed");
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 7, 0x100, 0xFFFF})
    void anUnknownRequestTypeIsAnError(int type) throws Exception {
        start(8);
        assertRefused(type, 0, 0);
    }

    @Test
    void aResponseOfTheWrongSizeIsAnErrorWrittenAsFarAsItFits() throws Exception {
        start(8);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        Used one = gpio.send(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0, 1);
        assertEquals(1, one.length());
        assertEquals(VIRTIO_GPIO_STATUS_ERR, gpio.response()[0]);
        Used three = gpio.send(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1, 3);
        assertEquals(2, three.length());
        assertArrayEquals(new byte[] {VIRTIO_GPIO_STATUS_ERR, 0, (byte) 0xee}, gpio.response());
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT);
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0), "the refused SET_VALUE changed nothing");
    }

    @Test
    void aRequestWithoutAWritableByteCompletesWithLengthZero() throws Exception {
        start(8);
        long header = gpio.buffer(8);
        gpio.requests.write(header, new byte[] {4, 0, 0, 0, 0, 0, 0, 0});
        int head = gpio.requests.add(readable(header, 8));
        gpio.host.kick(0);
        Used used = gpio.requests.pollUsed();
        assertEquals(head, used.head());
        assertEquals(0, used.length());
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 0, 0));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2, 7, 9, 16})
    void aRequestThatIsNotEightBytesIsAnError(int length) throws Exception {
        start(8);
        long header = gpio.buffer(Math.max(length, 1));
        gpio.requests.write(header, GpioHarness.filled(Math.max(length, 1)));
        long response = gpio.buffer(2);
        int head = length == 0 ? gpio.requests.add(writable(response, 2))
                : gpio.requests.add(readable(header, length), writable(response, 2));
        gpio.host.kick(0);
        Used used = gpio.requests.pollUsed();
        assertEquals(head, used.head());
        assertEquals(2, used.length());
        assertEquals(VIRTIO_GPIO_STATUS_ERR, gpio.requests.read(response, 1)[0]);
    }

    @Test
    void aRequestSplitOverSeveralDescriptorsIsServedByItsByteCounts() throws Exception {
        start(8);
        long a = gpio.buffer(3);
        long b = gpio.buffer(5);
        gpio.requests.write(a, new byte[] {4, 0, 1});
        gpio.requests.write(b, new byte[] {0, 0, 0, 0, 0});
        long status = gpio.buffer(1);
        long value = gpio.buffer(1);
        int head = gpio.requests.add(readable(a, 3), readable(b, 5), writable(status, 1), writable(value, 1));
        gpio.host.kick(0);
        Used used = gpio.requests.pollUsed();
        assertEquals(head, used.head());
        assertEquals(2, used.length());
        assertEquals(VIRTIO_GPIO_STATUS_OK, gpio.requests.read(status, 1)[0]);
        assertEquals(0, gpio.requests.read(value, 1)[0]);
    }

    @Test
    void aMalformedChainCompletesWithLengthZeroAndTheNextRequestIsServed() throws Exception {
        start(8);
        long response = gpio.buffer(2);
        // A request buffer outside guest memory: the walker faults the chain.
        int head = gpio.requests.add(readable(0x7fff_0000_0000L, 8), writable(response, 2));
        gpio.host.kick(0);
        Used used = gpio.requests.pollUsed();
        assertEquals(head, used.head());
        assertEquals(0, used.length());
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 3, 0));
    }

    // ------------------------------------------------------------------------------ interrupts

    /** Line 1 an input with {@code type}, line 0 an output at {@code start}. */
    private void wireIrq(int type, int start) {
        drive(0, start);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 1, VIRTIO_GPIO_DIRECTION_IN);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, type);
    }

    @Test
    void aBufferWaitsForAnEdgeThatArrivesThroughTheChipsEventfdOnTheNextWakeUp() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer b = gpio.irq(1);
        assertEquals(0, gpio.pump());
        assertTrue(gpio.noIrqCompleted(), "no edge yet: the buffer waits");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        assertTrue(gpio.noIrqCompleted(), "the edge is delivered by the worker's epoll, not inline");
        assertEquals(1, gpio.pump());
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
        IrqBuffer again = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(again), "edge both: the falling edge too");
    }

    @Test
    void eachToggleIsExactlyOneInterruptWhenTheDriverRequeuesAtOnce() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        int interrupts = 0;
        IrqBuffer b = gpio.irq(1);
        for (int toggle = 1; toggle <= 100; toggle++) {
            gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, toggle & 1);
            gpio.pump();
            if (gpio.completed(b) == VIRTIO_GPIO_IRQ_STATUS_VALID) {
                interrupts++;
                b = gpio.irq(1);
            }
        }
        gpio.pump();
        assertEquals(100, interrupts);
        assertTrue(gpio.noIrqCompleted());
    }

    @Test
    void risingAndFallingFireOnlyOnTheirEdges() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING, 1);
        IrqBuffer b = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "falling edge on a rising irq");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));

        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_NONE);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING);
        IrqBuffer f = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "no change, no edge");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(f));
    }

    @Test
    void theInputChangingByItsPartnerChangingDirectionIsAnEdgeToo() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING, 1);
        IrqBuffer b = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_IN); // line 1 now pulled down
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
    }

    @Test
    void anEdgeWithNoBufferWaitingIsLatchedAndLaterEdgesCoalesceIntoIt() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        IrqBuffer b = gpio.irq(1);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b), "the latched edge completes it at once");
        IrqBuffer next = gpio.irq(1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "the three edges were one pending interrupt");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(next));
    }

    @Test
    void edgesBeforeTheIrqWasEnabledAreNotInterrupts() throws Exception {
        start(8);
        drive(0, 0);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        gpio.irq(1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted());
    }

    @Test
    void levelHighCompletesWhileTheLevelHoldsAndWaitsWhileItDoesNot() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_LEVEL_HIGH, 1);
        for (int i = 0; i < 3; i++) {
            assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(gpio.irq(1)), "level high holds");
        }
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        IrqBuffer b = gpio.irq(1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "low: the buffer waits");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
    }

    @Test
    void levelLowIsActiveWhileTheLineReadsZero() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_LEVEL_LOW, 1);
        IrqBuffer b = gpio.irq(1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted());
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        IrqBuffer c = gpio.irq(1);
        assertTrue(gpio.noIrqCompleted(), "a level that went away is not latched");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(c));
    }

    @Test
    void aBufferForALineWithoutIrqOrASecondBufferForALineIsInvalidAtOnce() throws Exception {
        start(8);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(1)), "irq NONE");
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer first = gpio.irq(1);
        IrqBuffer second = gpio.irq(1);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(second));
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(first));
    }

    @Test
    void disablingTheIrqReturnsTheWaitingBufferInvalidAtOnceAndNoMoreEdgesCount() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer b = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_NONE);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b), "promptly, not on the next edge");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        assertEquals(0, gpio.pump(), "a disabled line does not wake the worker");
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        IrqBuffer again = gpio.irq(1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "the edge while disabled is forgotten");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(again));
    }

    @Test
    void directionNoneReturnsTheWaitingBufferInvalidAndDisablesTheIrq() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer b = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_DIRECTION, 1, VIRTIO_GPIO_DIRECTION_NONE);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b));
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(1)), "irq is NONE now");
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH); // a released line
    }

    @Test
    void theSameIrqTypeAgainIsAcceptedAndChangingTypesKeepsTheWaitingBuffer() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING, 0);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_NONE);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_NONE);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        IrqBuffer b = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_FALLING);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertTrue(gpio.noIrqCompleted(), "now falling only");
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 0);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(b));
    }

    @Test
    void malformedOrOutOfRangeEventBuffersAreInvalidAtOnceAndTheQueueCarriesOn() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(8)));
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(0xFFFF)));
        long request = gpio.buffer(3);
        gpio.events.write(request, new byte[] {1, 0, 0});
        long status = gpio.buffer(1);
        IrqBuffer threeBytes = gpio.irq(readable(request, 3), writable(status, 1));
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, statusOf(threeBytes, status));
        long wide = gpio.buffer(2);
        IrqBuffer twoByteResponse = gpio.irq(readable(request, 2), writable(wide, 2));
        Used used = gpio.events.pollUsed();
        assertEquals(twoByteResponse.head(), used.head());
        assertEquals(1, used.length());
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.events.read(wide, 1)[0]);
        IrqBuffer noResponse = gpio.irq(readable(request, 2));
        used = gpio.events.pollUsed();
        assertEquals(noResponse.head(), used.head());
        assertEquals(0, used.length());
        IrqBuffer outside = gpio.irq(readable(0x7fff_0000_0000L, 2), writable(status, 1));
        used = gpio.events.pollUsed();
        assertEquals(outside.head(), used.head());
        assertEquals(0, used.length(), "a faulty chain has no buffers to answer in");

        IrqBuffer good = gpio.irq(1);
        gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 0, 1);
        gpio.pump();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(good));
    }

    private int statusOf(IrqBuffer b, long status) {
        Used used = gpio.events.pollUsed();
        assertEquals(b.head(), used.head());
        assertEquals(1, used.length());
        return gpio.events.read(status, 1)[0];
    }

    @Test
    void withoutTheIrqFeatureIrqTypesAreRefusedAndEveryEventBufferIsInvalid() throws Exception {
        gpio = new GpioHarness(new SimulatedChip(8, Linux.system()), false);
        drive(0, 0);
        assertRefused(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH);
        gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 1, VIRTIO_GPIO_IRQ_TYPE_NONE);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(1)));
    }

    @Test
    void everyLineCanWaitAtOnceAndEachEdgeCompletesOnlyItsLine() throws Exception {
        start(256);
        IrqBuffer[] buffers = new IrqBuffer[128];
        for (int pair = 0; pair < 128; pair++) {
            drive(2 * pair, 0);
            gpio.ok(VIRTIO_GPIO_MSG_IRQ_TYPE, 2 * pair + 1, VIRTIO_GPIO_IRQ_TYPE_EDGE_RISING);
        }
        // 128 waiting buffers in a 64-entry ring would not fit: wait on half, complete them, then the rest.
        for (int half = 0; half < 2; half++) {
            for (int pair = half * 64; pair < half * 64 + 32; pair++) {
                buffers[pair] = gpio.irq(2 * pair + 1);
            }
            assertEquals(32, gpio.device.waitingCount());
            for (int pair = half * 64 + 31; pair >= half * 64; pair--) {
                gpio.ok(VIRTIO_GPIO_MSG_SET_VALUE, 2 * pair, 1);
                gpio.pump();
                assertEquals(VIRTIO_GPIO_IRQ_STATUS_VALID, gpio.completed(buffers[pair]), "pair " + pair);
            }
            assertEquals(0, gpio.device.waitingCount());
        }
    }

    // ------------------------------------------------------------------------------ lifecycle

    @Test
    void stoppingTheEventQueueReturnsTheWaitingBuffersInvalid() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer b = gpio.irq(1);
        gpio.device.queueStopping(gpio.host.queue(GpioDevice.EVENT_QUEUE));
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b));
        assertEquals(0, gpio.device.waitingCount());
    }

    @Test
    void aMemoryChangeReturnsTheWaitingBuffersBeforeTheOldMappingGoes() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        IrqBuffer b = gpio.irq(1);
        gpio.device.memoryChanged(null);
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b));
    }

    @Test
    void aResetReturnsTheBuffersAndPutsEveryLineBackToItsInitialState() throws Exception {
        start(8);
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 1);
        IrqBuffer b = gpio.irq(1);
        gpio.device.reset();
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(b));
        assertEquals(VIRTIO_GPIO_IRQ_STATUS_INVALID, gpio.completed(gpio.irq(1)), "irq NONE after reset");
        assertEquals(VIRTIO_GPIO_DIRECTION_IN, gpio.ok(VIRTIO_GPIO_MSG_GET_DIRECTION, 0, 0));
        assertEquals(0, gpio.ok(VIRTIO_GPIO_MSG_GET_VALUE, 1, 0), "line 0 drives nothing any more");
        assertRefused(VIRTIO_GPIO_MSG_SET_DIRECTION, 0, VIRTIO_GPIO_DIRECTION_OUT); // the cached value is gone
        assertEquals(0, gpio.pump());
    }

    @Test
    void closingWithABufferWaitingUnwatchesAndClosesTheChipsEventfdAndLeavesNoThread() throws Exception {
        long fdsBefore = openFds();
        int threadsBefore = Thread.activeCount();
        start(8);
        assertEquals(1, gpio.watched.size(), "one eventfd for the whole simulated chip");
        wireIrq(VIRTIO_GPIO_IRQ_TYPE_EDGE_BOTH, 0);
        gpio.irq(1);
        assertEquals(threadsBefore, Thread.activeCount(), "waiting takes no thread");
        GpioHarness closing = gpio;
        gpio = null;
        closing.close();
        assertTrue(closing.watched.isEmpty(), "the eventfd was unwatched before it was closed");
        assertEquals(fdsBefore, openFds(), "no fd leaked");
        assertEquals(threadsBefore, Thread.activeCount());
    }

    private static long openFds() throws Exception {
        try (var list = Files.list(Path.of("/proc/self/fd"))) {
            return list.count();
        }
    }
}
