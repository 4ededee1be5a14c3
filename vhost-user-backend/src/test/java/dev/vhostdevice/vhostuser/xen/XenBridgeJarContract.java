package dev.vhostdevice.vhostuser.xen;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The same jar, as a process, serves a QEMU-style session and then a bridge-style session (issue #12 §3): the
 * device jar a user runs ({@code device.jar}, so a failsafe test after {@code package}) is started once, and one
 * connection after the other drives it the QEMU way (32-byte regions over a memfd) and the bridge's way
 * (xen.md §4.1 with XEN_MMAP acked and 40-byte regions, re-probe included). In another process the fake
 * privcmd/gntdev seam is out of reach, so the bridge session's regions are {@link XenBridgeSimulator.Mode#UNIX}
 * (xen_mmap_flags 0, plain shared memory); foreign and grant mappings are covered in-process by
 * {@link XenBridgeContract}.
 *
 * <p>A device module adds itself with a small {@code *IT} subclass: the in-process contract that describes the
 * device (queues, sizes, features, one exchange) and the command line that makes the jar's device that one.
 */
public abstract class XenBridgeJarContract {
    @TempDir
    protected Path dir;

    /** The device's in-process contract: how the bridge sizes it and what a request and its answer are. */
    protected abstract XenBridgeContract device();

    /** The jar's arguments serving {@code socket} with the device {@link #device()} describes. */
    protected abstract List<String> arguments(Path socket);

    @Test
    void oneJarProcessServesAQemuStyleSessionAndThenABridgeStyleSession() throws Exception {
        XenBridgeContract device = device();
        Path socket = dir.resolve(device.name() + ".sock0"); // the path the bridge builds
        try (FakeXen ram = new FakeXen(XenBridgeContract.DOMID, XenBridgeContract.RAM_PAGES,
                XenBridgeContract.BASE_GFN);
             DeviceProcess jar = DeviceProcess.start(socket, arguments(socket).toArray(String[]::new))) {
            try (XenBridgeSimulator qemu = XenBridgeSimulator.connect(socket, XenBridgeSimulator.Mode.QEMU_LIKE, ram,
                    device.queueCount(), device.queueSize())) {
                device.session(qemu);
                assertFalse(ProtocolFeature.XEN_MMAP.isIn(qemu.ackedProtocolFeatures()), "QEMU-style: 32-byte regions");
            }
            try (XenBridgeSimulator bridge = XenBridgeSimulator.connect(socket, XenBridgeSimulator.Mode.UNIX, ram,
                    device.queueCount(), device.queueSize())) {
                bridge.probe();
                assertTrue(ProtocolFeature.XEN_MMAP.isIn(bridge.ackedProtocolFeatures()), "bridge-style: 40-byte");
                bridge.activate(device.features());
                device.exchange(bridge);
                bridge.probe(); // the guest driver probes again on the live connection
                bridge.activate(device.features());
                device.exchange(bridge);
                bridge.assertNothingPending();
                bridge.remove();
            }
            assertTrue(jar.isAlive(), jar.log());
        }
    }
}
