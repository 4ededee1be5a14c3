package dev.vhostdevice.virtqueue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Reads the device-readable bytes of a chain in order, across descriptor boundaries. Multi-byte fields are
 * little-endian, as virtio 1.x requires. Reading past the end throws {@link ChainAccessException}: the guest
 * offered fewer bytes than the request needs.
 */
public final class ChainReader extends ChainCursor {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    ChainReader(Chain chain) {
        super(chain);
    }

    @Override
    int firstPiece() {
        return 0;
    }

    @Override
    int endPiece() {
        return chain.firstWritablePiece();
    }

    @Override
    public long size() {
        return chain.readableBytes();
    }

    @Override
    String direction() {
        return "readable";
    }

    public byte readByte() {
        require(1);
        byte value = segment().get(ValueLayout.JAVA_BYTE, segmentOffset());
        advance(1);
        return value;
    }

    public int readUnsignedByte() {
        return readByte() & 0xFF;
    }

    public short readShort() {
        require(2);
        short value = pieceLeft() >= 2 ? segment().get(SHORT_LE, segmentOffset()) : (short) assemble(2);
        advance(2);
        return value;
    }

    public int readUnsignedShort() {
        return readShort() & 0xFFFF;
    }

    public int readInt() {
        require(4);
        int value = pieceLeft() >= 4 ? segment().get(INT_LE, segmentOffset()) : (int) assemble(4);
        advance(4);
        return value;
    }

    public long readLong() {
        require(8);
        long value = pieceLeft() >= 8 ? segment().get(LONG_LE, segmentOffset()) : assemble(8);
        advance(8);
        return value;
    }

    /** A field split across pieces, gathered byte by byte (rare: only hostile or very unusual layouts). */
    private long assemble(int bytes) {
        int p = piece;
        long at = inPiece;
        long value = 0;
        for (int i = 0; i < bytes; i++) {
            while (at == chain.pieceLength(p)) {
                p++;
                at = 0;
            }
            long b = chain.pieceSegment(p).get(ValueLayout.JAVA_BYTE, chain.pieceOffset(p) + at) & 0xFFL;
            value |= b << (8 * i);
            at++;
        }
        return value;
    }

    /** Reads {@code length} bytes into {@code destination} from {@code offset}. */
    public void read(byte[] destination, int offset, int length) {
        require(length);
        int done = 0;
        while (done < length) {
            int step = (int) Math.min(length - done, pieceLeft());
            MemorySegment.copy(segment(), ValueLayout.JAVA_BYTE, segmentOffset(), destination, offset + done, step);
            advance(step);
            done += step;
        }
    }

    /** Reads {@code length} bytes into {@code destination} at {@code offset}. */
    public void read(MemorySegment destination, long offset, long length) {
        require(length);
        long done = 0;
        while (done < length) {
            long step = Math.min(length - done, pieceLeft());
            MemorySegment.copy(segment(), segmentOffset(), destination, offset + done, step);
            advance(step);
            done += step;
        }
    }
}
