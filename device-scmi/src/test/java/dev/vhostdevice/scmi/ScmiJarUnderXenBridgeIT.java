package dev.vhostdevice.scmi;

import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeJarContract;
import java.nio.file.Path;
import java.util.List;

/** vhost-device-scmi.jar as a process: a QEMU-style and then a bridge-style session, {@link ScmiUnderXenBridgeTest}'s requests. */
class ScmiJarUnderXenBridgeIT extends XenBridgeJarContract {
    @Override
    protected XenBridgeContract device() {
        return new ScmiUnderXenBridgeTest();
    }

    @Override
    protected List<String> arguments(Path socket) {
        return List.of("-s", socket.toString(), "-d", "fake");
    }
}
