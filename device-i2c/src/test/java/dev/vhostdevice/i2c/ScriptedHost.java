package dev.vhostdevice.i2c;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HexFormat;
import java.util.List;

/**
 * A scripted adapter behind the native seam: records every ioctl as text, answers with queued results, and
 * fills read messages and SMBus reads with queued bytes.
 */
final class ScriptedHost implements I2cHost {
    static final int FD = 7;

    long funcs = SmbusTransfer.I2C_FUNC_I2C;
    /** Error for open; 0 opens. */
    int openErrno;
    /** Error for I2C_FUNCS; 0 answers {@link #funcs}. */
    int funcsErrno;
    /** Per address: errno I2C_SLAVE gives (0: accepted). */
    final int[] slaveErrno = new int[128];
    /** Results for the next calls of I2C_RDWR / I2C_SMBUS (absent: success). */
    final Deque<Integer> results = new ArrayDeque<>();
    /** Bytes the next read returns (I2C_RDWR read messages in order, or the SMBus data union). */
    final Deque<byte[]> reads = new ArrayDeque<>();
    /** Every call, e.g. "rdwr w2@0x50[10ab] r1@0x50", "slave 0x50", "smbus read cmd=0x10 size=2 data=..". */
    final List<String> calls = new ArrayList<>();
    final List<Integer> closed = new ArrayList<>();
    /** Run by the next I2C_RDWR once recorded, then forgotten: a fault to inject (it may throw). */
    Runnable onNextReadWrite;

    @Override
    public int open(String path) throws ErrnoException {
        calls.add("open " + path);
        if (openErrno != 0) {
            throw new ErrnoException("open " + path, openErrno);
        }
        return FD;
    }

    @Override
    public long functionality(int fd) throws ErrnoException {
        calls.add("funcs");
        if (funcsErrno != 0) {
            throw new ErrnoException("ioctl I2C_FUNCS", funcsErrno);
        }
        return funcs;
    }

    @Override
    public int setAddress(int fd, int address) {
        calls.add(String.format("slave 0x%02x", address));
        return -slaveErrno[address];
    }

    @Override
    public int readWrite(int fd, I2cTransfer t) {
        StringBuilder s = new StringBuilder("rdwr");
        for (int m = 0; m < t.count(); m++) {
            s.append(' ').append(t.isRead(m) ? 'r' : 'w').append(t.length(m))
                    .append(String.format("@0x%02x", t.address(m)));
            if (!t.isRead(m) && t.length(m) > 0) {
                s.append('[').append(hex(t.data().asSlice(t.offset(m), t.length(m)))).append(']');
            }
        }
        calls.add(s.toString());
        Runnable fault = onNextReadWrite;
        onNextReadWrite = null;
        if (fault != null) {
            fault.run();
        }
        Integer result = results.poll();
        if (result != null && result < 0) {
            return result;
        }
        for (int m = 0; m < t.count(); m++) {
            if (t.isRead(m)) {
                byte[] bytes = reads.poll();
                for (int i = 0; i < t.length(m); i++) {
                    t.setByte(m, i, bytes != null && i < bytes.length ? bytes[i] : 0);
                }
            }
        }
        return result != null ? result : t.count();
    }

    @Override
    public int smbus(int fd, int readWrite, int command, int size, MemorySegment data) {
        int dataBytes = switch (size) {
            case SmbusTransfer.I2C_SMBUS_BYTE_DATA -> 1;
            case SmbusTransfer.I2C_SMBUS_WORD_DATA -> 2;
            case SmbusTransfer.I2C_SMBUS_BLOCK_DATA, SmbusTransfer.I2C_SMBUS_I2C_BLOCK_DATA -> 1 + (data.get(ValueLayout.JAVA_BYTE, 0) & 0xFF);
            default -> 0;
        };
        StringBuilder s = new StringBuilder("smbus ").append(readWrite == I2C_SMBUS_READ ? "read" : "write")
                .append(String.format(" cmd=0x%02x size=%d", command, size));
        if (readWrite == I2C_SMBUS_WRITE && dataBytes > 0) {
            s.append(" data=").append(hex(data.asSlice(0, Math.min(dataBytes, I2cTransfer.SMBUS_DATA_SIZE))));
        } else if (size == SmbusTransfer.I2C_SMBUS_I2C_BLOCK_DATA) {
            s.append(" want=").append(data.get(ValueLayout.JAVA_BYTE, 0));
        }
        calls.add(s.toString());
        Integer result = results.poll();
        if (result != null && result < 0) {
            return result;
        }
        if (readWrite == I2C_SMBUS_READ) {
            byte[] bytes = reads.poll();
            if (bytes != null) {
                MemorySegment.copy(bytes, 0, data, ValueLayout.JAVA_BYTE, 0, bytes.length);
            }
        }
        return 0;
    }

    @Override
    public void close(int fd) {
        closed.add(fd);
    }

    static String hex(MemorySegment bytes) {
        return HexFormat.of().formatHex(bytes.toArray(ValueLayout.JAVA_BYTE));
    }

    static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }

    /** A host adapter i2c-3 with clients {@code addresses}, opened through this script. */
    HostAdapter adapter(int... addresses) {
        HostAdapter adapter = HostAdapter.open(this, 3, null, addresses);
        calls.clear();
        return adapter;
    }

    static int enxio() {
        return -Errno.ENXIO;
    }

    @Override
    public String toString() {
        return "ScriptedHost" + Arrays.toString(calls.toArray());
    }

    static int ebusy() {
        return Errno.EBUSY;
    }
}
