package dev.vhostdevice.i2c;

import dev.vhostdevice.virtqueue.memory.Errno;

/**
 * The {@code sim} adapter: each listed address is a 256-byte EEPROM that behaves like a 24C02, so the device
 * can be used and tested without hardware. Byte i initially holds i. The first byte of a write sets the address
 * pointer, further bytes are stored from it; reads continue from it; the pointer wraps at 256 (a real 24C02
 * wraps writes within an 8-byte page and needs a write cycle; neither matters to a guest test). Zero-length
 * messages (SMBus quick, i2cdetect's probe) are acknowledged. An unlisted address does not acknowledge:
 * the whole transaction fails with ENXIO, as a host driver reports a NACK, and nothing is executed.
 */
public final class SimulatedAdapter implements I2cAdapter {
    public static final String NAME = "sim";
    public static final int EEPROM_SIZE = 256;

    private final byte[][] eeproms = new byte[128][];
    private final int[] pointers = new int[128];

    public SimulatedAdapter(int[] addresses) {
        for (int address : addresses) {
            if (address < 0 || address > 127) {
                throw new IllegalArgumentException("7-bit address expected: " + address);
            }
            byte[] memory = new byte[EEPROM_SIZE];
            for (int i = 0; i < EEPROM_SIZE; i++) {
                memory[i] = (byte) i;
            }
            eeproms[address] = memory;
        }
    }

    @Override
    public synchronized int transfer(I2cTransfer t) {
        for (int m = 0; m < t.count(); m++) {
            int address = t.address(m);
            if (address < 0 || address > 127 || eeproms[address] == null) {
                return Errno.ENXIO; // what Linux bus drivers return for an address nobody acknowledges
            }
        }
        for (int m = 0; m < t.count(); m++) {
            byte[] memory = eeproms[t.address(m)];
            int length = t.length(m);
            int pointer = pointers[t.address(m)];
            if (t.isRead(m)) {
                for (int i = 0; i < length; i++) {
                    t.setByte(m, i, memory[pointer]);
                    pointer = (pointer + 1) & (EEPROM_SIZE - 1);
                }
            } else if (length > 0) {
                pointer = t.byteAt(m, 0);
                for (int i = 1; i < length; i++) {
                    memory[pointer] = (byte) t.byteAt(m, i);
                    pointer = (pointer + 1) & (EEPROM_SIZE - 1);
                }
            }
            pointers[t.address(m)] = pointer;
        }
        return OK;
    }

    /** Byte {@code index} of the EEPROM at {@code address} (for tests and diagnostics). */
    public synchronized int peek(int address, int index) {
        return eeproms[address][index] & 0xFF;
    }

    @Override
    public String describe() {
        return NAME;
    }

    @Override
    public void close() {
    }
}
