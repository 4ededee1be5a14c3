package dev.vhostdevice.i2c;

import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeJarContract;
import java.nio.file.Path;
import java.util.List;

/** vhost-device-i2c.jar as a process: a QEMU-style and then a bridge-style session, {@link I2cUnderXenBridgeTest}'s requests. */
class I2cJarUnderXenBridgeIT extends XenBridgeJarContract {
    @Override
    protected XenBridgeContract device() {
        return new I2cUnderXenBridgeTest();
    }

    @Override
    protected List<String> arguments(Path socket) {
        return List.of("--socket-path", socket.toString(), "--device-list", "sim:" + I2cUnderXenBridgeTest.EEPROM);
    }
}
