package dev.vhostdevice.vsock;

import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeJarContract;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * vhost-device-vsock.jar as a process: a QEMU-style and then a bridge-style session, {@link VsockUnderXenBridgeTest}'s
 * connection to a host listener on the VM's uds path.
 */
class VsockJarUnderXenBridgeIT extends XenBridgeJarContract {
    private final VsockUnderXenBridgeTest device = new VsockUnderXenBridgeTest();

    private Path uds() {
        return dir.resolve("vm.vsock");
    }

    @BeforeEach
    void listenOnTheHost() throws Exception {
        device.listenOnTheHost(uds());
    }

    @AfterEach
    void closeTheListener() {
        device.closeGuest();
    }

    @Override
    protected XenBridgeContract device() {
        return device;
    }

    @Override
    protected List<String> arguments(Path socket) {
        return List.of("--vm", "guest-cid=3,socket=" + socket + ",uds-path=" + uds());
    }
}
