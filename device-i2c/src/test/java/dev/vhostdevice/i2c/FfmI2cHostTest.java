package dev.vhostdevice.i2c;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The real downcalls, without hardware: a regular file answers every i2c-dev ioctl with ENOTTY, which proves
 * the calls are made and their errno comes back (the layouts are checked against linux/i2c-dev.h by review).
 */
class FfmI2cHostTest {
    private final I2cHost host = I2cHost.system();

    @TempDir
    Path dir;

    @Test
    void openingAMissingAdapterReportsEnoent() {
        ErrnoException e = assertThrows(ErrnoException.class, () -> host.open(dir.resolve("i2c-99").toString()));
        assertEquals(Errno.ENOENT, e.errno());
    }

    @Test
    void everyIoctlOnANonAdapterFailsWithEnotty() throws Exception {
        Path file = Files.createFile(dir.resolve("not-an-adapter"));
        int fd = host.open(file.toString());
        try (I2cTransfer t = new I2cTransfer()) {
            assertEquals(Errno.ENOTTY, assertThrows(ErrnoException.class, () -> host.functionality(fd)).errno());
            assertEquals(-Errno.ENOTTY, host.setAddress(fd, 0x50));
            t.add(0x50, false, 1);
            t.add(0x50, true, 4);
            assertEquals(-Errno.ENOTTY, host.readWrite(fd, t));
            assertEquals(-Errno.ENOTTY, host.smbus(fd, I2cHost.I2C_SMBUS_READ, 0x10,
                    SmbusTransfer.I2C_SMBUS_BYTE_DATA, t.smbusData()));
        } finally {
            host.close(fd);
        }
    }

    @Test
    void aHostAdapterOverARegularFileIsRefusedWithTheErrno() throws Exception {
        assertEquals(ENOTTY_MESSAGE, assertThrows(IllegalArgumentException.class,
                () -> HostAdapter.open(new RedirectedHost(Files.createFile(dir.resolve("fake"))), 4, null,
                        new int[] {0x50})).getMessage());
    }

    private static final String ENOTTY_MESSAGE = "/dev/i2c-4: I2C_FUNCS failed: ENOTTY";

    /** The real host with the device path redirected to a file. */
    private record RedirectedHost(Path file) implements I2cHost {
        @Override
        public int open(String path) throws ErrnoException {
            return I2cHost.system().open(file.toString());
        }

        @Override
        public long functionality(int fd) throws ErrnoException {
            return I2cHost.system().functionality(fd);
        }

        @Override
        public int setAddress(int fd, int address) {
            return I2cHost.system().setAddress(fd, address);
        }

        @Override
        public int readWrite(int fd, I2cTransfer transfer) {
            return I2cHost.system().readWrite(fd, transfer);
        }

        @Override
        public int smbus(int fd, int readWrite, int command, int size, java.lang.foreign.MemorySegment data) {
            return I2cHost.system().smbus(fd, readWrite, command, size, data);
        }

        @Override
        public void close(int fd) {
            I2cHost.system().close(fd);
        }
    }
}
