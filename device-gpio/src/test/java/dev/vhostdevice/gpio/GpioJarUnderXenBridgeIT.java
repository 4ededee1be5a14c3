package dev.vhostdevice.gpio;

import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeJarContract;
import java.nio.file.Path;
import java.util.List;

/** vhost-device-gpio.jar as a process: a QEMU-style and then a bridge-style session, {@link GpioUnderXenBridgeTest}'s requests. */
class GpioJarUnderXenBridgeIT extends XenBridgeJarContract {
    @Override
    protected XenBridgeContract device() {
        return new GpioUnderXenBridgeTest();
    }

    @Override
    protected List<String> arguments(Path socket) {
        return List.of("--socket-path", socket.toString(), "--device-list", "s4");
    }
}
