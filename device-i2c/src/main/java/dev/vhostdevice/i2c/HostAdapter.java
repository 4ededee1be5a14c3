package dev.vhostdevice.i2c;

import static dev.vhostdevice.i2c.SmbusTransfer.I2C_FUNC_I2C;
import static dev.vhostdevice.i2c.SmbusTransfer.I2C_SMBUS_BLOCK_MAX;
import static dev.vhostdevice.i2c.SmbusTransfer.SUPPORTED_SMBUS_FUNCS;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A host adapter, {@code /dev/i2c-N}. I2C_FUNCS decides the mode: with I2C_FUNC_I2C a group is one I2C_RDWR
 * (repeated START, one STOP); otherwise each group must map to one SMBus transaction ({@link SmbusTransfer}).
 * Calls are serialized per adapter: the guests of all sockets share it, and in SMBus mode I2C_SLAVE and
 * I2C_SMBUS must not interleave. Each distinct errno is logged once per adapter (a bus scan fails on every
 * absent address; the log must not grow with it).
 */
public final class HostAdapter implements I2cAdapter {
    private static final Logger LOG = LoggerFactory.getLogger(HostAdapter.class);
    private static final ValueLayout.OfShort WORD = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Errnos below this are remembered as logged; above (never seen in practice) each is logged. */
    private static final int ERRNOS_TRACKED = 192;

    /** How groups reach the bus. */
    public enum Mode { I2C, SMBUS }

    private final I2cHost host;
    private final int number;
    private final String name;
    private final int fd;
    private final long funcs;
    private final Mode mode;
    private final long[] loggedErrnos = new long[ERRNOS_TRACKED / 64];
    private boolean loggedUnsupportedShape;
    /** The client I2C_SLAVE last selected (SMBus mode), -1 for none. */
    private int selected = -1;
    private boolean closed;

    private HostAdapter(I2cHost host, int number, String name, int fd, long funcs, Mode mode) {
        this.host = host;
        this.number = number;
        this.name = name;
        this.fd = fd;
        this.funcs = funcs;
        this.mode = mode;
    }

    /**
     * Opens {@code /dev/i2c-<number>}, decides the mode, and checks that no kernel driver owns any of
     * {@code addresses} (I2C_SLAVE refuses those with EBUSY; I2C_RDWR would not, and would go around the driver).
     * Throws IllegalArgumentException with a one-line reason.
     */
    public static HostAdapter open(I2cHost host, int number, String name, int[] addresses) {
        String path = "/dev/i2c-" + number;
        int fd;
        try {
            fd = host.open(path);
        } catch (ErrnoException e) {
            throw new IllegalArgumentException("cannot open " + path + ": " + Errno.name(e.errno()));
        }
        try {
            long funcs = host.functionality(fd);
            Mode mode;
            if ((funcs & I2C_FUNC_I2C) != 0) {
                mode = Mode.I2C;
            } else if ((funcs & SUPPORTED_SMBUS_FUNCS) != 0) {
                mode = Mode.SMBUS;
            } else {
                throw new IllegalArgumentException(path + " supports neither I2C nor any SMBus transfer (funcs 0x"
                        + Long.toHexString(funcs) + ")");
            }
            for (int address : addresses) {
                int rc = host.setAddress(fd, address);
                if (rc < 0) {
                    throw new IllegalArgumentException(String.format("%s: client 0x%02x (%d) cannot be used: %s%s",
                            path, address, address, Errno.name(-rc),
                            -rc == Errno.EBUSY ? " (a kernel driver owns it)" : ""));
                }
            }
            HostAdapter adapter = new HostAdapter(host, number, name, fd, funcs, mode);
            adapter.selected = addresses.length > 0 ? addresses[addresses.length - 1] : -1;
            return adapter;
        } catch (ErrnoException e) {
            host.close(fd);
            throw new IllegalArgumentException(path + ": I2C_FUNCS failed: " + Errno.name(e.errno()));
        } catch (RuntimeException e) {
            host.close(fd);
            throw e;
        }
    }

    public Mode mode() {
        return mode;
    }

    @Override
    public synchronized int transfer(I2cTransfer transfer) {
        if (closed) {
            return Errno.EBADF;
        }
        return mode == Mode.I2C ? readWrite(transfer) : smbus(transfer);
    }

    private int readWrite(I2cTransfer transfer) {
        int rc = host.readWrite(fd, transfer);
        if (rc < 0) {
            return failed("I2C_RDWR", null, -rc, transfer);
        }
        return rc == transfer.count() ? OK : failed("I2C_RDWR (short)", null, Errno.EIO, transfer);
    }

    private int smbus(I2cTransfer t) {
        SmbusTransfer op = SmbusTransfer.of(t, funcs);
        if (op == null) {
            if (!loggedUnsupportedShape) {
                loggedUnsupportedShape = true;
                LOG.warn("i2c: {}: {} has no SMBus equivalent this adapter supports (funcs 0x{}); such transfers"
                        + " fail (logged once)", describe(), t, Long.toHexString(funcs));
            }
            return Errno.EOPNOTSUPP;
        }
        int address = t.address(0);
        if (address != selected) {
            int rc = host.setAddress(fd, address);
            if (rc < 0) {
                selected = -1;
                return failed("I2C_SLAVE", null, -rc, t);
            }
            selected = address;
        }
        MemorySegment data = t.smbusData();
        int command = 0;
        switch (op) {
            case QUICK_WRITE, QUICK_READ, BYTE_READ -> { }
            case BYTE_WRITE -> command = t.byteAt(0, 0);
            case BYTE_DATA_WRITE -> {
                command = t.byteAt(0, 0);
                data.set(ValueLayout.JAVA_BYTE, 0, (byte) t.byteAt(0, 1));
            }
            case WORD_DATA_WRITE -> {
                command = t.byteAt(0, 0);
                data.set(WORD, 0, (short) (t.byteAt(0, 1) | t.byteAt(0, 2) << 8));
            }
            case I2C_BLOCK_WRITE -> {
                command = t.byteAt(0, 0);
                int n = t.length(0) - 1;
                data.set(ValueLayout.JAVA_BYTE, 0, (byte) n);
                MemorySegment.copy(t.data(), t.offset(0) + 1L, data, 1, n);
            }
            case BLOCK_WRITE -> {
                command = t.byteAt(0, 0);
                int n = t.length(0) - 2;
                data.set(ValueLayout.JAVA_BYTE, 0, (byte) n);
                MemorySegment.copy(t.data(), t.offset(0) + 2L, data, 1, n);
            }
            case BYTE_DATA_READ, WORD_DATA_READ, BLOCK_READ -> command = t.byteAt(0, 0);
            case I2C_BLOCK_READ -> {
                command = t.byteAt(0, 0);
                data.set(ValueLayout.JAVA_BYTE, 0, (byte) t.length(1)); // the length wanted
            }
        }
        int rc = host.smbus(fd, op.readWrite(), command, op.size(), data);
        if (rc < 0) {
            return failed("I2C_SMBUS", op, -rc, t);
        }
        switch (op) {
            case BYTE_READ -> t.setByte(0, 0, data.get(ValueLayout.JAVA_BYTE, 0));
            case BYTE_DATA_READ -> t.setByte(1, 0, data.get(ValueLayout.JAVA_BYTE, 0));
            case WORD_DATA_READ -> {
                int word = data.get(WORD, 0);
                t.setByte(1, 0, word);
                t.setByte(1, 1, word >> 8);
            }
            case I2C_BLOCK_READ -> MemorySegment.copy(data, 1, t.data(), t.offset(1), t.length(1));
            case BLOCK_READ -> {
                int count = data.get(ValueLayout.JAVA_BYTE, 0) & 0xFF;
                if (count > I2C_SMBUS_BLOCK_MAX) {
                    return failed("I2C_SMBUS block count over 32", op, Errno.EPROTO, t);
                }
                t.setByte(1, 0, count);
                MemorySegment.copy(data, 1, t.data(), t.offset(1) + 1L, count);
                t.data().asSlice(t.offset(1) + 1L + count, I2C_SMBUS_BLOCK_MAX - count).fill((byte) 0);
            }
            default -> { }
        }
        return OK;
    }

    private int failed(String call, SmbusTransfer op, int errno, I2cTransfer t) {
        boolean first = true;
        if (errno >= 0 && errno < ERRNOS_TRACKED) {
            long bit = 1L << (errno & 63);
            first = (loggedErrnos[errno >> 6] & bit) == 0;
            loggedErrnos[errno >> 6] |= bit;
        }
        if (first) {
            LOG.warn("i2c: {}: {}{} failed with {} for {}; the guest gets an error status (each errno is logged"
                    + " once per adapter)", describe(), call, op != null ? " " + op : "", Errno.name(errno), t);
        }
        return errno;
    }

    @Override
    public String describe() {
        return name != null ? "/dev/i2c-" + number + " (\"" + name + "\")" : "/dev/i2c-" + number;
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            host.close(fd);
        }
    }

    @Override
    public String toString() {
        return "HostAdapter[" + describe() + ", " + mode + ", funcs 0x" + Long.toHexString(funcs) + "]";
    }
}
