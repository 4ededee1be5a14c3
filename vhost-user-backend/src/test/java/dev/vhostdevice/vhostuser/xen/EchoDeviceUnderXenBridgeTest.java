package dev.vhostdevice.vhostuser.xen;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import java.util.List;

/** The engine under the bridge: two queues of 256 entries (the bridge's gpio shape), 13 grant regions. */
class EchoDeviceUnderXenBridgeTest extends XenBridgeContract {
    /** Three queues of 1024 (the bridge's vsock shape): 19 grant regions and fds in one SET_MEM_TABLE. */
    static final class ThreeQueues extends EchoDeviceUnderXenBridgeTest {
        @Override
        protected DeviceFactory factory() {
            return () -> new EchoDevice() {
                @Override
                public int queueCount() {
                    return 3;
                }

                @Override
                public int maxQueueSize() {
                    return 1024;
                }
            };
        }

        @Override
        protected int queueCount() {
            return 3;
        }

        @Override
        protected int queueSize() {
            return 1024;
        }
    }

    @Override
    protected DeviceFactory factory() {
        return EchoDevice::new;
    }

    @Override
    protected String name() {
        return "echo";
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
        return 8;
    }

    @Override
    protected long driverFeatures() {
        return 1;
    }

    @Override
    protected void exchange(XenBridgeSimulator guest) throws Exception {
        for (int q = 0; q < queueCount(); q++) {
            // A request spanning a page boundary: two grant refs in one per-access mapping.
            XenBridgeSimulator.Used used = guest.exchange(q, List.of("hello".getBytes(), new byte[4090]), 4095);
            assertEquals(4095, used.length());
            assertArrayEquals("olleh".getBytes(), java.util.Arrays.copyOfRange(used.bytes(), 4090, 4095));
        }
    }
}
