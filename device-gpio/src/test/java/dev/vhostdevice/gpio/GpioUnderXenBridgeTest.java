package dev.vhostdevice.gpio;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeSimulator;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * vhost-device-gpio under the Xen bridge: two queues of 256, the simulated chip {@code s4} driven through grant
 * and foreign mappings. Requests are served one at a time here, so the event queue is checked with a buffer
 * that completes at once (a line whose irq is NONE); waiting interrupts are covered by the other tests.
 */
class GpioUnderXenBridgeTest extends XenBridgeContract {
    @Override
    protected DeviceFactory factory() {
        return () -> new GpioDevice(new SimulatedChip(4, Linux.system()));
    }

    @Override
    protected String name() {
        return "gpio";
    }

    @Override
    protected int queueCount() {
        return 2;
    }

    @Override
    protected int queueSize() {
        return 256;
    }

    @Override
    protected int configSize() {
        return GpioDevice.CONFIG_SIZE;
    }

    @Override
    protected long driverFeatures() {
        return 1L << GpioDevice.VIRTIO_GPIO_F_IRQ;
    }

    private static byte[] request(int type, int line, int value) {
        return new byte[] {(byte) type, 0, (byte) line, 0, (byte) value, 0, 0, 0};
    }

    private static byte[] call(XenBridgeSimulator guest, int type, int line, int value) throws Exception {
        XenBridgeSimulator.Used used = guest.exchange(GpioDevice.REQUEST_QUEUE, List.of(request(type, line, value)),
                GpioDevice.RESPONSE_SIZE);
        assertEquals(GpioDevice.RESPONSE_SIZE, used.length());
        return used.bytes();
    }

    @Override
    protected void exchange(XenBridgeSimulator guest) throws Exception {
        XenBridgeSimulator.Used names = guest.exchange(GpioDevice.REQUEST_QUEUE,
                List.of(request(GpioDevice.VIRTIO_GPIO_MSG_GET_LINE_NAMES, 0, 0)), 1 + 24);
        assertEquals(25, names.length());
        assertEquals("\0sim-0\0sim-1\0sim-2\0sim-3\0", new String(names.bytes(), StandardCharsets.US_ASCII));
        // A bridge re-probe keeps the connection and with it the chip: line 2 back to an input first.
        call(guest, GpioDevice.VIRTIO_GPIO_MSG_SET_DIRECTION, 2, GpioDevice.VIRTIO_GPIO_DIRECTION_IN);
        for (int line = 0; line < 4; line++) {
            assertArrayEquals(new byte[] {0, GpioDevice.VIRTIO_GPIO_DIRECTION_IN},
                    call(guest, GpioDevice.VIRTIO_GPIO_MSG_GET_DIRECTION, line, 0));
        }
        call(guest, GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE, 2, 1);
        call(guest, GpioDevice.VIRTIO_GPIO_MSG_SET_DIRECTION, 2, GpioDevice.VIRTIO_GPIO_DIRECTION_OUT);
        assertArrayEquals(new byte[] {0, 1}, call(guest, GpioDevice.VIRTIO_GPIO_MSG_GET_VALUE, 3, 0));
        assertArrayEquals(new byte[] {GpioDevice.VIRTIO_GPIO_STATUS_ERR, 0},
                call(guest, GpioDevice.VIRTIO_GPIO_MSG_GET_VALUE, 4, 0));
        XenBridgeSimulator.Used irq = guest.exchange(GpioDevice.EVENT_QUEUE, List.of(new byte[] {3, 0}), 1);
        assertArrayEquals(new byte[] {GpioDevice.VIRTIO_GPIO_IRQ_STATUS_INVALID}, irq.bytes(), "irq NONE");
    }
}
