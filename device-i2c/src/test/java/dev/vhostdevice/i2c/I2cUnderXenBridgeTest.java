package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.xen.XenBridgeContract;
import dev.vhostdevice.vhostuser.xen.XenBridgeSimulator;
import java.util.List;

/**
 * vhost-device-i2c under the Xen bridge (its table: i2c, 1 queue of 1024): the simulated EEPROM at 0x50 is
 * written and read back through per-access grant mappings (header and data read-only, status write-only).
 */
class I2cUnderXenBridgeTest extends XenBridgeContract {
    static final int EEPROM = 0x50;

    @Override
    protected DeviceFactory factory() {
        return () -> new I2cDevice(I2cBus.of(List.of(new SimulatedAdapter(new int[] {EEPROM})),
                List.of(new int[] {EEPROM})));
    }

    @Override
    protected String name() {
        return "i2c";
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
        return 1; // VIRTIO_I2C_F_ZERO_LENGTH_REQUEST
    }

    private static byte[] header(int address, int flags) {
        return new byte[] {(byte) (address << 1), 0, 0, 0, (byte) flags, 0, 0, 0};
    }

    @Override
    protected void exchange(XenBridgeSimulator guest) throws Exception {
        // Set the EEPROM's address pointer to 0x10, then read four bytes from it (byte i holds i).
        XenBridgeSimulator.Used set = guest.exchange(0, List.of(header(EEPROM, 0), new byte[] {0x10}), 1);
        assertEquals(1, set.length());
        assertArrayEquals(new byte[] {I2cDevice.VIRTIO_I2C_MSG_OK}, set.bytes());
        XenBridgeSimulator.Used get = guest.exchange(0, List.of(header(EEPROM, I2cDevice.VIRTIO_I2C_FLAGS_M_RD)), 4, 1);
        assertEquals(5, get.length());
        assertArrayEquals(new byte[] {0x10, 0x11, 0x12, 0x13, I2cDevice.VIRTIO_I2C_MSG_OK}, get.bytes());
    }
}
