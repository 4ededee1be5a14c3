package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeJarContract;
import java.nio.file.Path;
import java.util.List;

/** vhost-device-rng.jar as a process: a QEMU-style and then a bridge-style session, {@link RngUnderXenBridgeTest}'s requests. */
class RngJarUnderXenBridgeIT extends XenBridgeJarContract {
    @Override
    protected XenBridgeContract device() {
        return new RngUnderXenBridgeTest();
    }

    @Override
    protected List<String> arguments(Path socket) {
        return List.of("--socket-path", socket.toString());
    }
}
