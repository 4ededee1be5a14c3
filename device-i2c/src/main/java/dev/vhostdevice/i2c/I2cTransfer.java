package dev.vhostdevice.i2c;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The messages of one request group: what one bus transaction (one I2C_RDWR, repeated START between messages,
 * one STOP) carries. Storage is preallocated and bounded: at most {@link #MAX_MESSAGES} messages of at most
 * {@link #MAX_MESSAGE_LENGTH} bytes, {@link #MAX_BYTES} in all. Message data lives in native memory so the
 * kernel can be handed pointers into it. Used by one device worker at a time.
 */
public final class I2cTransfer implements AutoCloseable {
    /** I2C_RDWR_IOCTL_MAX_MSGS (linux/i2c-dev.h): the kernel refuses longer I2C_RDWR calls. */
    public static final int MAX_MESSAGES = 42;
    /** i2c-dev refuses longer messages in I2C_RDWR (8192, drivers/i2c/i2c-dev.c). */
    public static final int MAX_MESSAGE_LENGTH = 8192;
    /** Data of one group in all: far above any real I2C transaction, small enough to preallocate per guest. */
    public static final int MAX_BYTES = 64 * 1024;
    /** sizeof(union i2c_smbus_data): I2C_SMBUS_BLOCK_MAX + 2. */
    public static final int SMBUS_DATA_SIZE = 34;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment data = arena.allocate(MAX_BYTES, 8);
    private final MemorySegment smbusData = arena.allocate(SMBUS_DATA_SIZE, 8);
    private final int[] address = new int[MAX_MESSAGES];
    private final boolean[] read = new boolean[MAX_MESSAGES];
    private final int[] length = new int[MAX_MESSAGES];
    private final int[] offset = new int[MAX_MESSAGES];
    private int count;
    private int bytes;

    /** Forgets the messages (the storage stays). */
    public void clear() {
        count = 0;
        bytes = 0;
    }

    /** Adds a message the caller has checked with {@link #fits} (one place for the limits); returns its index. */
    public int add(int clientAddress, boolean isRead, int messageLength) {
        int index = count++;
        address[index] = clientAddress;
        read[index] = isRead;
        length[index] = messageLength;
        offset[index] = bytes;
        bytes += messageLength;
        return index;
    }

    /** Whether a message of {@code messageLength} bytes still fits. */
    public boolean fits(int messageLength) {
        return count < MAX_MESSAGES && messageLength <= MAX_MESSAGE_LENGTH && messageLength <= MAX_BYTES - bytes;
    }

    public int count() {
        return count;
    }

    public int address(int message) {
        return address[message];
    }

    public boolean isRead(int message) {
        return read[message];
    }

    public int length(int message) {
        return length[message];
    }

    /** Offset of the message's bytes in {@link #data()}. */
    public int offset(int message) {
        return offset[message];
    }

    /** All messages' bytes, back to back (native memory). */
    public MemorySegment data() {
        return data;
    }

    /** Byte {@code index} of message {@code message}, unsigned. */
    public int byteAt(int message, int index) {
        return data.get(ValueLayout.JAVA_BYTE, offset[message] + index) & 0xFF;
    }

    public void setByte(int message, int index, int value) {
        data.set(ValueLayout.JAVA_BYTE, offset[message] + index, (byte) value);
    }

    /** Scratch for I2C_SMBUS: a {@code union i2c_smbus_data} in native memory. */
    public MemorySegment smbusData() {
        return smbusData;
    }

    @Override
    public void close() {
        arena.close();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder("I2cTransfer[");
        for (int i = 0; i < count; i++) {
            s.append(i == 0 ? "" : ", ").append(read[i] ? "r" : "w").append(length[i]).append('@')
                    .append(String.format("0x%02x", address[i]));
        }
        return s.append(']').toString();
    }
}
