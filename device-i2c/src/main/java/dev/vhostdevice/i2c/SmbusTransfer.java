package dev.vhostdevice.i2c;

import static dev.vhostdevice.i2c.I2cHost.I2C_SMBUS_READ;
import static dev.vhostdevice.i2c.I2cHost.I2C_SMBUS_WRITE;

/**
 * The SMBus transactions an adapter without I2C_FUNC_I2C can run, and which guest message shapes map to them:
 * the inverse of the kernel's SMBus emulation ({@code i2c_smbus_xfer_emulated}), which is how the guest turned
 * its SMBus calls into messages in the first place.
 *
 * <pre>
 * 1 message:  write 0 / read 0          QUICK (the R/W bit is the transaction)
 *             write [b] / read 1        BYTE (send / receive byte)
 *             write [cmd, b]            BYTE_DATA write
 *             write [cmd, lo, hi]       WORD_DATA write
 *             write [cmd, d1..dN]       I2C_BLOCK write, N ≤ 32; or BLOCK write if the adapter only has that
 *                                       and d1 is the count N-1 (the same bytes on the wire)
 * 2 messages: write [cmd], read 1       BYTE_DATA read
 *  (one        write [cmd], read 2       WORD_DATA read (little endian, as the wire order)
 *   address)   write [cmd], read 3..32   I2C_BLOCK read
 *             write [cmd], read 33      BLOCK read: [count, data…], the rest zero (33 = I2C_SMBUS_BLOCK_MAX + 1
 *                                       is the buffer the kernel uses for it; no I2C block read is that long)
 * </pre>
 * Where the adapter lacks the natural transaction for a 1- or 2-byte data transfer, the I2C block one (same wire
 * bytes) is used. Anything else has no SMBus equivalent and fails.
 */
public enum SmbusTransfer {
    QUICK_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_QUICK, SmbusTransfer.I2C_FUNC_SMBUS_QUICK),
    QUICK_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_QUICK, SmbusTransfer.I2C_FUNC_SMBUS_QUICK),
    BYTE_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_BYTE, SmbusTransfer.I2C_FUNC_SMBUS_WRITE_BYTE),
    BYTE_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_BYTE, SmbusTransfer.I2C_FUNC_SMBUS_READ_BYTE),
    BYTE_DATA_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_BYTE_DATA, SmbusTransfer.I2C_FUNC_SMBUS_WRITE_BYTE_DATA),
    BYTE_DATA_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_BYTE_DATA, SmbusTransfer.I2C_FUNC_SMBUS_READ_BYTE_DATA),
    WORD_DATA_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_WORD_DATA, SmbusTransfer.I2C_FUNC_SMBUS_WRITE_WORD_DATA),
    WORD_DATA_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_WORD_DATA, SmbusTransfer.I2C_FUNC_SMBUS_READ_WORD_DATA),
    BLOCK_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_BLOCK_DATA, SmbusTransfer.I2C_FUNC_SMBUS_WRITE_BLOCK_DATA),
    BLOCK_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_BLOCK_DATA, SmbusTransfer.I2C_FUNC_SMBUS_READ_BLOCK_DATA),
    I2C_BLOCK_WRITE(I2C_SMBUS_WRITE, SmbusTransfer.I2C_SMBUS_I2C_BLOCK_DATA, SmbusTransfer.I2C_FUNC_SMBUS_WRITE_I2C_BLOCK),
    I2C_BLOCK_READ(I2C_SMBUS_READ, SmbusTransfer.I2C_SMBUS_I2C_BLOCK_DATA, SmbusTransfer.I2C_FUNC_SMBUS_READ_I2C_BLOCK);

    // I2C_FUNC_* (linux/i2c.h)
    public static final long I2C_FUNC_I2C = 0x00000001L;
    public static final long I2C_FUNC_SMBUS_QUICK = 0x00010000L;
    public static final long I2C_FUNC_SMBUS_READ_BYTE = 0x00020000L;
    public static final long I2C_FUNC_SMBUS_WRITE_BYTE = 0x00040000L;
    public static final long I2C_FUNC_SMBUS_READ_BYTE_DATA = 0x00080000L;
    public static final long I2C_FUNC_SMBUS_WRITE_BYTE_DATA = 0x00100000L;
    public static final long I2C_FUNC_SMBUS_READ_WORD_DATA = 0x00200000L;
    public static final long I2C_FUNC_SMBUS_WRITE_WORD_DATA = 0x00400000L;
    public static final long I2C_FUNC_SMBUS_READ_BLOCK_DATA = 0x01000000L;
    public static final long I2C_FUNC_SMBUS_WRITE_BLOCK_DATA = 0x02000000L;
    public static final long I2C_FUNC_SMBUS_READ_I2C_BLOCK = 0x04000000L;
    public static final long I2C_FUNC_SMBUS_WRITE_I2C_BLOCK = 0x08000000L;
    /** Every SMBus transaction this back-end can map messages to: an adapter with none of them is unusable. */
    public static final long SUPPORTED_SMBUS_FUNCS = I2C_FUNC_SMBUS_QUICK | I2C_FUNC_SMBUS_READ_BYTE
            | I2C_FUNC_SMBUS_WRITE_BYTE | I2C_FUNC_SMBUS_READ_BYTE_DATA | I2C_FUNC_SMBUS_WRITE_BYTE_DATA
            | I2C_FUNC_SMBUS_READ_WORD_DATA | I2C_FUNC_SMBUS_WRITE_WORD_DATA | I2C_FUNC_SMBUS_READ_BLOCK_DATA
            | I2C_FUNC_SMBUS_WRITE_BLOCK_DATA | I2C_FUNC_SMBUS_READ_I2C_BLOCK | I2C_FUNC_SMBUS_WRITE_I2C_BLOCK;

    // I2C_SMBUS sizes (linux/i2c.h)
    public static final int I2C_SMBUS_QUICK = 0;
    public static final int I2C_SMBUS_BYTE = 1;
    public static final int I2C_SMBUS_BYTE_DATA = 2;
    public static final int I2C_SMBUS_WORD_DATA = 3;
    public static final int I2C_SMBUS_BLOCK_DATA = 5;
    public static final int I2C_SMBUS_I2C_BLOCK_DATA = 8;
    /** Longest SMBus block. */
    public static final int I2C_SMBUS_BLOCK_MAX = 32;

    private final int readWrite;
    private final int size;
    private final long func;

    SmbusTransfer(int readWrite, int size, long func) {
        this.readWrite = readWrite;
        this.size = size;
        this.func = func;
    }

    /** I2C_SMBUS_READ or I2C_SMBUS_WRITE. */
    public int readWrite() {
        return readWrite;
    }

    /** The I2C_SMBUS_* size argument. */
    public int size() {
        return size;
    }

    /** The I2C_FUNC_SMBUS_* bit the adapter needs. */
    public long func() {
        return func;
    }

    /** The transaction for the messages of {@code transfer} on an adapter with {@code funcs}, or null if none. */
    public static SmbusTransfer of(I2cTransfer transfer, long funcs) {
        SmbusTransfer chosen = switch (transfer.count()) {
            case 1 -> single(transfer, funcs);
            case 2 -> commandThenRead(transfer, funcs);
            default -> null;
        };
        return chosen != null && (funcs & chosen.func) != 0 ? chosen : null;
    }

    private static SmbusTransfer single(I2cTransfer t, long funcs) {
        int length = t.length(0);
        if (t.isRead(0)) {
            return switch (length) {
                case 0 -> QUICK_READ;
                case 1 -> BYTE_READ;
                default -> null;
            };
        }
        return switch (length) {
            case 0 -> QUICK_WRITE;
            case 1 -> BYTE_WRITE;
            case 2 -> orI2cBlock(BYTE_DATA_WRITE, I2C_BLOCK_WRITE, funcs);
            case 3 -> orI2cBlock(WORD_DATA_WRITE, I2C_BLOCK_WRITE, funcs);
            default -> blockWrite(t, length, funcs);
        };
    }

    private static SmbusTransfer blockWrite(I2cTransfer t, int length, long funcs) {
        if (length <= 1 + I2C_SMBUS_BLOCK_MAX && (funcs & I2C_FUNC_SMBUS_WRITE_I2C_BLOCK) != 0) {
            return I2C_BLOCK_WRITE;
        }
        // [cmd, count, data…]: what the kernel's emulation sends for an SMBus block write.
        int count = t.byteAt(0, 1);
        return length <= 2 + I2C_SMBUS_BLOCK_MAX && count == length - 2 ? BLOCK_WRITE : null;
    }

    private static SmbusTransfer commandThenRead(I2cTransfer t, long funcs) {
        if (t.isRead(0) || t.length(0) != 1 || !t.isRead(1) || t.address(0) != t.address(1)) {
            return null;
        }
        int length = t.length(1);
        if (length == 1) {
            return orI2cBlock(BYTE_DATA_READ, I2C_BLOCK_READ, funcs);
        }
        if (length == 2) {
            return orI2cBlock(WORD_DATA_READ, I2C_BLOCK_READ, funcs);
        }
        if (length >= 3 && length <= I2C_SMBUS_BLOCK_MAX) {
            return I2C_BLOCK_READ;
        }
        return length == I2C_SMBUS_BLOCK_MAX + 1 ? BLOCK_READ : null;
    }

    private static SmbusTransfer orI2cBlock(SmbusTransfer natural, SmbusTransfer block, long funcs) {
        return (funcs & natural.func) != 0 ? natural : block;
    }
}
