package dev.vhostdevice.i2c;

import static dev.vhostdevice.i2c.ScriptedHost.bytes;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_I2C;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_SMBUS_QUICK;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_SMBUS_READ_BLOCK_DATA;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_SMBUS_READ_I2C_BLOCK;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_SMBUS_WRITE_BLOCK_DATA;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;
import static dev.vhostdevice.i2c.SmbusTransfer.SUPPORTED_SMBUS_FUNCS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.Errno;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Host adapters behind a scripted seam: mode choice, every SMBus shape, I2C_RDWR, errors. */
class HostAdapterTest {
    private final ScriptedHost host = new ScriptedHost();
    private final I2cTransfer t = new I2cTransfer();

    @AfterEach
    void tearDown() {
        t.close();
    }

    private void write(int address, int... data) {
        int m = t.add(address, false, data.length);
        for (int i = 0; i < data.length; i++) {
            t.setByte(m, i, data[i]);
        }
    }

    private void read(int address, int length) {
        t.add(address, true, length);
    }

    private byte[] message(int m) {
        return t.data().asSlice(t.offset(m), t.length(m)).toArray(ValueLayout.JAVA_BYTE);
    }

    private HostAdapter smbus(long funcs) {
        host.funcs = funcs;
        return host.adapter(0x50);
    }

    // ------------------------------------------------------------------------------------------ opening

    @Test
    void i2cFuncDecidesI2cModeElseAnySmbusFuncGivesSmbusMode() {
        host.funcs = I2C_FUNC_I2C | SUPPORTED_SMBUS_FUNCS;
        assertEquals(HostAdapter.Mode.I2C, HostAdapter.open(host, 3, null, new int[] {0x50}).mode());
        host.funcs = I2C_FUNC_SMBUS_QUICK;
        assertEquals(HostAdapter.Mode.SMBUS, HostAdapter.open(host, 3, null, new int[] {0x50}).mode());
    }

    @Test
    void openingChecksEveryClientAddressWithI2cSlave() {
        host.adapter(0x50, 0x51);
        host.calls.clear();
        HostAdapter.open(host, 3, null, new int[] {0x20, 0x21});
        assertEquals(List.of("open /dev/i2c-3", "funcs", "slave 0x20", "slave 0x21"), host.calls);
    }

    @Test
    void anAdapterWithNeitherI2cNorSmbusIsRefusedAndClosed() {
        host.funcs = 0x2; // 10-bit addressing only
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> host.adapter(0x50));
        assertEquals("/dev/i2c-3 supports neither I2C nor any SMBus transfer (funcs 0x2)", e.getMessage());
        assertEquals(List.of(ScriptedHost.FD), host.closed);
    }

    @Test
    void aClientOwnedByAKernelDriverIsRefused() {
        host.slaveErrno[0x51] = Errno.EBUSY;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> host.adapter(0x50, 0x51));
        assertEquals("/dev/i2c-3: client 0x51 (81) cannot be used: EBUSY (a kernel driver owns it)", e.getMessage());
        assertEquals(List.of(ScriptedHost.FD), host.closed);
    }

    @Test
    void openAndFuncsFailuresNameTheAdapterAndErrno() {
        host.openErrno = Errno.ENOENT;
        assertEquals("cannot open /dev/i2c-3: ENOENT",
                assertThrows(IllegalArgumentException.class, () -> host.adapter(0x50)).getMessage());
        host.openErrno = 0;
        host.funcsErrno = Errno.ENOTTY;
        assertEquals("/dev/i2c-3: I2C_FUNCS failed: ENOTTY",
                assertThrows(IllegalArgumentException.class, () -> host.adapter(0x50)).getMessage());
    }

    // -------------------------------------------------------------------------------------- I2C mode

    @Test
    void i2cModeSendsTheWholeGroupAsOneI2cRdwrAndReturnsTheReadData() {
        HostAdapter adapter = host.adapter(0x50);
        write(0x50, 0x10);
        read(0x50, 3);
        host.reads.add(bytes(7, 8, 9));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertEquals(List.of("rdwr w1@0x50[10] r3@0x50"), host.calls);
        assertArrayEquals(bytes(7, 8, 9), message(1));
    }

    @Test
    void i2cModePassesZeroLengthMessages() {
        HostAdapter adapter = host.adapter(0x50);
        write(0x50);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertEquals(List.of("rdwr w0@0x50"), host.calls);
    }

    @Test
    void anIoctlFailureGivesItsErrnoAndAShortTransferGivesEio() {
        HostAdapter adapter = host.adapter(0x50);
        write(0x50, 1);
        host.results.add(-Errno.ENXIO);
        assertEquals(Errno.ENXIO, adapter.transfer(t));
        host.results.add(0);
        assertEquals(Errno.EIO, adapter.transfer(t));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
    }

    @Test
    void aClosedAdapterFailsWithEbadfAndClosesItsFdOnce() {
        HostAdapter adapter = host.adapter(0x50);
        adapter.close();
        adapter.close();
        write(0x50, 1);
        assertEquals(Errno.EBADF, adapter.transfer(t));
        assertEquals(List.of(ScriptedHost.FD), host.closed);
    }

    // ------------------------------------------------------------------------------------ SMBus mode

    @Test
    void quickWriteAndQuickRead() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        read(0x50, 0);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertEquals(List.of("smbus write cmd=0x00 size=0", "smbus read cmd=0x00 size=0"), host.calls);
    }

    @Test
    void sendByteAndReceiveByte() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x42);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        read(0x50, 1);
        host.reads.add(bytes(0x99));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertArrayEquals(bytes(0x99), message(0));
        assertEquals(List.of("smbus write cmd=0x42 size=1", "smbus read cmd=0x00 size=1"), host.calls);
    }

    @Test
    void byteDataWriteAndRead() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x10, 0xab);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        write(0x50, 0x10);
        read(0x50, 1);
        host.reads.add(bytes(0xab));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertArrayEquals(bytes(0xab), message(1));
        assertEquals(List.of("smbus write cmd=0x10 size=2 data=ab", "smbus read cmd=0x10 size=2"), host.calls);
    }

    @Test
    void wordDataWriteAndReadAreLittleEndianAsOnTheWire() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x20, 0x34, 0x12);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        write(0x50, 0x20);
        read(0x50, 2);
        host.reads.add(bytes(0x78, 0x56));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertArrayEquals(bytes(0x78, 0x56), message(1));
        assertEquals(List.of("smbus write cmd=0x20 size=3 data=3412", "smbus read cmd=0x20 size=3"), host.calls);
    }

    @Test
    void i2cBlockWriteAndRead() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x30, 1, 2, 3, 4);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        write(0x50, 0x30);
        read(0x50, 5);
        host.reads.add(bytes(5, 9, 8, 7, 6, 5));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertArrayEquals(bytes(9, 8, 7, 6, 5), message(1));
        assertEquals(List.of("smbus write cmd=0x30 size=8 data=0401020304", "smbus read cmd=0x30 size=8 want=5"),
                host.calls);
    }

    @Test
    void i2cBlockTransfersUpTo32Bytes() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, new int[33]);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        write(0x50, 0x30);
        read(0x50, 32);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertEquals(SmbusTransfer.I2C_BLOCK_WRITE, SmbusTransfer.of(oneWrite(33), SUPPORTED_SMBUS_FUNCS));
        assertTrue(host.calls.get(1).endsWith("want=32"), host.calls.toString());
    }

    private static I2cTransfer oneWrite(int length) {
        I2cTransfer one = new I2cTransfer();
        one.add(0x50, false, length);
        return one;
    }

    @Test
    void smbusBlockWriteCarriesTheCountTheGuestPutAfterTheCommand() {
        HostAdapter adapter = smbus(I2C_FUNC_SMBUS_WRITE_BLOCK_DATA);
        write(0x50, 0x40, 3, 0xa, 0xb, 0xc);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertEquals(List.of("smbus write cmd=0x40 size=5 data=030a0b0c"), host.calls);
        t.clear();
        write(0x50, 0x40, 7, 0xa, 0xb, 0xc); // the count does not match: no SMBus block write
        assertEquals(Errno.EOPNOTSUPP, adapter.transfer(t));
        assertEquals(1, host.calls.size());
    }

    @Test
    void smbusBlockReadIsA33ByteReadAndReturnsCountThenDataThenZeros() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x40);
        read(0x50, 33);
        t.data().asSlice(t.offset(1), 33).fill((byte) 0x5a);
        host.reads.add(bytes(2, 0x11, 0x22));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        byte[] expected = new byte[33];
        expected[0] = 2;
        expected[1] = 0x11;
        expected[2] = 0x22;
        assertArrayEquals(expected, message(1));
        assertEquals(List.of("smbus read cmd=0x40 size=5"), host.calls);
    }

    @Test
    void aBlockCountOver32FromTheAdapterFails() {
        HostAdapter adapter = smbus(SUPPORTED_SMBUS_FUNCS);
        write(0x50, 0x40);
        read(0x50, 33);
        host.reads.add(bytes(33));
        assertEquals(dev.vhostdevice.virtqueue.memory.Errno.EPROTO, adapter.transfer(t));
    }

    @Test
    void byteAndWordDataFallBackToI2cBlockWhereTheAdapterLacksThem() {
        long blockOnly = I2C_FUNC_SMBUS_READ_I2C_BLOCK | I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;
        HostAdapter adapter = smbus(blockOnly);
        write(0x50, 0x10, 0xab);
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        t.clear();
        write(0x50, 0x10);
        read(0x50, 2);
        host.reads.add(bytes(2, 1, 2));
        assertEquals(I2cAdapter.OK, adapter.transfer(t));
        assertArrayEquals(bytes(1, 2), message(1));
        assertEquals(List.of("smbus write cmd=0x10 size=8 data=01ab", "smbus read cmd=0x10 size=8 want=2"),
                host.calls);
    }

    @Test
    void shapesWithoutAnSmbusEquivalentFailWithoutAnIoctl() {
        long all = SUPPORTED_SMBUS_FUNCS;
        I2cTransfer x = new I2cTransfer();
        x.add(0x50, true, 2); // a 2-byte read with no command
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 1);
        x.add(0x51, true, 1); // two addresses
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 2);
        x.add(0x50, true, 1); // command of two bytes
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 1);
        x.add(0x50, false, 1); // write then write
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 1);
        x.add(0x50, true, 34); // longer than a block
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 1);
        x.add(0x50, true, 0);
        assertNull(SmbusTransfer.of(x, all));
        x.clear();
        x.add(0x50, false, 1);
        x.add(0x50, false, 1);
        x.add(0x50, true, 1); // three messages
        assertNull(SmbusTransfer.of(x, all));
        x.close();

        HostAdapter adapter = smbus(all);
        read(0x50, 4);
        assertEquals(Errno.EOPNOTSUPP, adapter.transfer(t));
        assertEquals(List.of(), host.calls);
    }

    @Test
    void aShapeTheAdapterHasNoFuncForFails() {
        HostAdapter adapter = smbus(I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_READ_BLOCK_DATA);
        write(0x50, 0x10, 0xab);
        assertEquals(Errno.EOPNOTSUPP, adapter.transfer(t));
        t.clear();
        write(0x50, 0x10);
        read(0x50, 5);
        assertEquals(Errno.EOPNOTSUPP, adapter.transfer(t), "no I2C block read");
        assertEquals(List.of(), host.calls);
    }

    @Test
    void i2cSlaveIsSetOnlyWhenTheClientChanges() {
        host.funcs = SUPPORTED_SMBUS_FUNCS;
        HostAdapter adapter = host.adapter(0x50, 0x51); // 0x51 was selected last while opening
        write(0x51, 1);
        adapter.transfer(t);
        t.clear();
        write(0x50, 1);
        adapter.transfer(t);
        adapter.transfer(t);
        assertEquals(List.of("smbus write cmd=0x01 size=1", "slave 0x50", "smbus write cmd=0x01 size=1",
                "smbus write cmd=0x01 size=1"), host.calls);
    }

    @Test
    void smbusAndI2cSlaveFailuresGiveTheirErrno() {
        host.funcs = SUPPORTED_SMBUS_FUNCS;
        HostAdapter adapter = host.adapter(0x50, 0x51);
        write(0x50, 1);
        host.slaveErrno[0x50] = Errno.EBUSY;
        assertEquals(Errno.EBUSY, adapter.transfer(t));
        host.slaveErrno[0x50] = 0;
        host.results.add(-Errno.ETIMEDOUT);
        assertEquals(Errno.ETIMEDOUT, adapter.transfer(t));
        assertEquals(List.of("slave 0x50", "slave 0x50", "smbus write cmd=0x01 size=1"), host.calls);
    }
}
