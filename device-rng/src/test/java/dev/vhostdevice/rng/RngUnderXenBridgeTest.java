package dev.vhostdevice.rng;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeSimulator;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/** vhost-device-rng under the Xen bridge: one queue of 1024, entropy written through grant and foreign mappings. */
class RngUnderXenBridgeTest extends XenBridgeContract {
    @Override
    protected DeviceFactory factory() {
        return () -> new RngDevice(FileEntropySource.open(Path.of("/dev/urandom")), RateLimiter.UNLIMITED, 65536);
    }

    @Override
    protected String name() {
        return "rng";
    }

    @Override
    protected int queueCount() {
        return 1;
    }

    @Override
    protected int configSize() {
        return 0;
    }

    @Override
    protected long driverFeatures() {
        return 0;
    }

    @Override
    protected void exchange(XenBridgeSimulator guest) throws Exception {
        // What hw_random asks for, then a two-descriptor buffer crossing a page: every byte filled.
        for (int[] lengths : new int[][] {{64}, {3000, 3000}}) {
            XenBridgeSimulator.Used used = guest.exchange(0, List.of(), lengths);
            int total = Arrays.stream(lengths).sum();
            assertEquals(total, used.length());
            byte[] bytes = used.bytes();
            assertFalse(Arrays.equals(new byte[total], bytes), "entropy, not the zeroed buffer");
        }
    }
}
