package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.vhostdevice.virtqueue.memory.Errno;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The {@code sim} adapter behaves like a 24C02 EEPROM at each listed address. */
class SimulatedAdapterTest {
    private final SimulatedAdapter sim = new SimulatedAdapter(new int[] {0x50, 0x52});
    private final I2cTransfer t = new I2cTransfer();

    @AfterEach
    void tearDown() {
        t.close();
    }

    private int run(Object... messages) {
        t.clear();
        for (Object m : messages) {
            if (m instanceof int[] write) {
                int i = t.add(write[0], false, write.length - 1);
                for (int b = 1; b < write.length; b++) {
                    t.setByte(i, b - 1, write[b]);
                }
            } else if (m instanceof Read read) {
                t.add(read.address(), true, read.length());
            }
        }
        return sim.transfer(t);
    }

    private static int[] w(int address, int... bytes) {
        int[] m = new int[bytes.length + 1];
        m[0] = address;
        System.arraycopy(bytes, 0, m, 1, bytes.length);
        return m;
    }

    private record Read(int address, int length) {
    }

    private static Read r(int address, int length) {
        return new Read(address, length);
    }

    private byte[] readData(int message) {
        return t.data().asSlice(t.offset(message), t.length(message)).toArray(ValueLayout.JAVA_BYTE);
    }

    @Test
    void byteIHoldsIInitially() {
        assertEquals(I2cAdapter.OK, run(w(0x50, 0x10), r(0x50, 3)));
        assertArrayEquals(ScriptedHost.bytes(0x10, 0x11, 0x12), readData(1));
        assertEquals(0xff, sim.peek(0x52, 0xff));
    }

    @Test
    void aOneByteWriteSetsThePointerAndReadsContinueFromIt() {
        run(w(0x50, 0x80));
        assertEquals(I2cAdapter.OK, run(r(0x50, 1)));
        assertArrayEquals(ScriptedHost.bytes(0x80), readData(0));
        run(r(0x50, 2));
        assertArrayEquals(ScriptedHost.bytes(0x81, 0x82), readData(0));
    }

    @Test
    void furtherBytesAreWrittenFromThePointerWhichThenPointsPastThem() {
        assertEquals(I2cAdapter.OK, run(w(0x50, 0x20, 0xaa, 0xbb)));
        assertEquals(0xaa, sim.peek(0x50, 0x20));
        assertEquals(0xbb, sim.peek(0x50, 0x21));
        run(r(0x50, 1));
        assertArrayEquals(ScriptedHost.bytes(0x22), readData(0));
    }

    @Test
    void readsAndWritesWrapAt256() {
        run(w(0x50, 0xff, 0x01, 0x02));
        assertEquals(0x01, sim.peek(0x50, 0xff));
        assertEquals(0x02, sim.peek(0x50, 0x00));
        run(w(0x50, 0xfe), r(0x50, 4));
        assertArrayEquals(ScriptedHost.bytes(0xfe, 0x01, 0x02, 0x01), readData(1));
    }

    @Test
    void eachEepromHasItsOwnMemoryAndPointer() {
        run(w(0x50, 0x05, 0x99));
        assertEquals(0x05, sim.peek(0x52, 0x05));
        run(w(0x52, 0x40));
        run(r(0x50, 1));
        assertArrayEquals(ScriptedHost.bytes(0x06), readData(0));
    }

    @Test
    void zeroLengthMessagesAreAcknowledged() {
        assertEquals(I2cAdapter.OK, run(w(0x50)));
        assertEquals(I2cAdapter.OK, run(r(0x50, 0)));
    }

    @Test
    void anUnlistedAddressNacksAndNothingOfTheTransactionIsExecuted() {
        assertEquals(Errno.ENXIO, run(w(0x50, 0x30, 0x11), r(0x51, 1)));
        assertEquals(0x30, sim.peek(0x50, 0x30), "the write before the NACK was not done");
        assertEquals(Errno.ENXIO, run(w(0x53)));
    }

    @Test
    void addressesOutsideTheSevenBitRangeAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new SimulatedAdapter(new int[] {128}));
    }
}
