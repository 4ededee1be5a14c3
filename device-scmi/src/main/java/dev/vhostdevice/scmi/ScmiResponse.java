package dev.vhostdevice.scmi;

import java.nio.charset.StandardCharsets;

/**
 * A response, delayed response or notification being built: little-endian words into a reusable buffer, never
 * more than the {@linkplain #limit() limit} (the agent's buffer), so a handler that pages a list asks
 * {@link #room()} how many entries fit. Allocates nothing.
 */
public final class ScmiResponse {
    /** SCMI short names (DEN0056): 16 bytes, NUL-terminated and NUL-padded. */
    public static final int NAME_SIZE = 16;
    /** Largest message built: far more than a virtio-scmi agent offers (Linux: 128 bytes of payload). */
    public static final int CAPACITY = 4096;

    private final byte[] buffer = new byte[CAPACITY];
    private int length;
    private int limit = CAPACITY;

    /** Starts a message with {@code header}, at most {@code maxBytes} long in all (header included). */
    public ScmiResponse begin(int header, long maxBytes) {
        limit = (int) Math.min(CAPACITY, Math.max(0, maxBytes));
        length = 0;
        if (limit >= 4) {
            putInt(header);
        }
        return this;
    }

    /** The status word after the header. */
    public ScmiResponse status(ScmiStatus status) {
        return putInt(status.code);
    }

    public ScmiResponse putInt(int value) {
        if (length + 4 > limit) {
            throw Overflow.INSTANCE;
        }
        buffer[length] = (byte) value;
        buffer[length + 1] = (byte) (value >>> 8);
        buffer[length + 2] = (byte) (value >>> 16);
        buffer[length + 3] = (byte) (value >>> 24);
        length += 4;
        return this;
    }

    /** A 64-bit value as the spec lays them out: low word, then high word. */
    public ScmiResponse putLong(long value) {
        putInt((int) value);
        return putInt((int) (value >>> 32));
    }

    /** A 16-byte name prepared by {@link #name}. */
    public ScmiResponse putName(byte[] name) {
        if (length + NAME_SIZE > limit) {
            throw Overflow.INSTANCE;
        }
        System.arraycopy(name, 0, buffer, length, NAME_SIZE);
        length += NAME_SIZE;
        return this;
    }

    /** Packs bytes (protocol ids), padded with zeros to a whole word. */
    public ScmiResponse putPackedBytes(byte[] source, int offset, int count) {
        int padded = (count + 3) & ~3;
        if (length + padded > limit) {
            throw Overflow.INSTANCE;
        }
        System.arraycopy(source, offset, buffer, length, count);
        java.util.Arrays.fill(buffer, length + count, length + padded, (byte) 0);
        length += padded;
        return this;
    }

    /** Bytes still free under the limit. */
    public int room() {
        return limit - length;
    }

    public int length() {
        return length;
    }

    public int limit() {
        return limit;
    }

    byte[] buffer() {
        return buffer;
    }

    /** The 16-byte wire form of {@code name}: ASCII, cut to 15 bytes so a NUL always ends it. */
    public static byte[] name(String name) {
        byte[] bytes = new byte[NAME_SIZE];
        byte[] ascii = name.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(ascii, 0, bytes, 0, Math.min(ascii.length, NAME_SIZE - 1));
        return bytes;
    }

    /** The message does not fit the agent's buffer: thrown by a put, answered with COMMS_ERROR by the platform. */
    static final class Overflow extends RuntimeException {
        /** Stackless and shared: an oversized reply costs no allocation either. */
        static final Overflow INSTANCE = new Overflow();

        private Overflow() {
            super("response larger than the agent's buffer", null, false, false);
        }
    }
}
