package dev.vhostdevice.i2c;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.MemorySegment;

/**
 * The native seam of this device: the i2c-dev character device ioctls (linux/i2c-dev.h). {@link #system()} is
 * the real one (java.lang.foreign); tests script their own adapter behind it. Data-path calls return a negative
 * errno instead of throwing, so a failing adapter costs no allocation per request.
 */
public interface I2cHost {
    /** I2C_SMBUS read_write values (linux/i2c.h). */
    int I2C_SMBUS_WRITE = 0;
    int I2C_SMBUS_READ = 1;

    /** {@code open(path, O_RDWR | O_CLOEXEC)}. */
    int open(String path) throws ErrnoException;

    /** I2C_FUNCS: the adapter's I2C_FUNC_* bits. */
    long functionality(int fd) throws ErrnoException;

    /** I2C_SLAVE (not _FORCE): the client address later I2C_SMBUS calls talk to. 0 or -errno. */
    int setAddress(int fd, int address);

    /** I2C_RDWR with every message of {@code transfer}: the messages transferred, or -errno. */
    int readWrite(int fd, I2cTransfer transfer);

    /**
     * I2C_SMBUS: one SMBus transaction of {@code size} (I2C_SMBUS_QUICK …) with {@code data}, a native
     * {@code union i2c_smbus_data} read and written in place. 0 or -errno.
     */
    int smbus(int fd, int readWrite, int command, int size, MemorySegment data);

    void close(int fd);

    static I2cHost system() {
        return FfmI2cHost.INSTANCE;
    }
}
