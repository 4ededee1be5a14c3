package dev.vhostdevice.virtqueue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Writes the device-writable bytes of a chain, across descriptor boundaries, little-endian. The used length of
 * the chain is {@link #bytesWritten()}: the furthest position written, so seeking back to fill in a header
 * after the payload does not shrink it. Writing past the end throws {@link ChainAccessException}.
 */
public final class ChainWriter extends ChainCursor {
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG_LE =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Fills guest memory from a data source, one contiguous piece at a time. */
    @FunctionalInterface
    public interface Source {
        /**
         * Writes up to {@code length} bytes into {@code segment} at {@code offset}; returns how many it wrote,
         * or -1 at end of data. {@code segment} is the whole guest memory region (a slice per piece would
         * allocate): the source must write only within [{@code offset}, {@code offset + length}).
         */
        long fill(MemorySegment segment, long offset, long length) throws IOException;
    }

    private static final MemorySegment ZEROS = Arena.global().allocate(4096);

    private long highWater;

    ChainWriter(Chain chain) {
        super(chain);
    }

    @Override
    int firstPiece() {
        return chain.firstWritablePiece();
    }

    @Override
    int endPiece() {
        return chain.pieceCount();
    }

    @Override
    public long size() {
        return chain.writableBytes();
    }

    @Override
    String direction() {
        return "writable";
    }

    @Override
    void rewind() {
        highWater = 0;
        super.rewind();
    }

    @Override
    void moved(long newPosition) {
        if (newPosition > highWater) {
            highWater = newPosition;
        }
    }

    /** The furthest position written (or skipped over): the chain's used length. */
    public long bytesWritten() {
        return highWater;
    }

    public void writeByte(int value) {
        require(1);
        segment().set(ValueLayout.JAVA_BYTE, segmentOffset(), (byte) value);
        advance(1);
    }

    public void writeShort(int value) {
        require(2);
        if (pieceLeft() >= 2) {
            segment().set(SHORT_LE, segmentOffset(), (short) value);
            advance(2);
        } else {
            scatter(value, 2);
        }
    }

    public void writeInt(int value) {
        require(4);
        if (pieceLeft() >= 4) {
            segment().set(INT_LE, segmentOffset(), value);
            advance(4);
        } else {
            scatter(value, 4);
        }
    }

    public void writeLong(long value) {
        require(8);
        if (pieceLeft() >= 8) {
            segment().set(LONG_LE, segmentOffset(), value);
            advance(8);
        } else {
            scatter(value, 8);
        }
    }

    private void scatter(long value, int bytes) {
        for (int i = 0; i < bytes; i++) {
            segment().set(ValueLayout.JAVA_BYTE, segmentOffset(), (byte) (value >>> (8 * i)));
            advance(1);
        }
    }

    public void write(byte[] source, int offset, int length) {
        require(length);
        int done = 0;
        while (done < length) {
            int step = (int) Math.min(length - done, pieceLeft());
            MemorySegment.copy(source, offset + done, segment(), ValueLayout.JAVA_BYTE, segmentOffset(), step);
            advance(step);
            done += step;
        }
    }

    public void write(MemorySegment source, long offset, long length) {
        require(length);
        long done = 0;
        while (done < length) {
            long step = Math.min(length - done, pieceLeft());
            MemorySegment.copy(source, offset + done, segment(), segmentOffset(), step);
            advance(step);
            done += step;
        }
    }

    /** Writes {@code length} copies of {@code value}. */
    public void fill(byte value, long length) {
        require(length);
        long done = 0;
        while (done < length) {
            long step = Math.min(Math.min(length - done, pieceLeft()), ZEROS.byteSize());
            if (value == 0) {
                // Zeroing (error completions) copies from a shared zero page: no slice allocated per piece.
                MemorySegment.copy(ZEROS, 0, segment(), segmentOffset(), step);
            } else {
                MemorySegment target = segment();
                long at = segmentOffset();
                for (long i = 0; i < step; i++) {
                    target.set(ValueLayout.JAVA_BYTE, at + i, value);
                }
            }
            advance(step);
            done += step;
        }
    }

    /**
     * Fills up to {@code maxBytes} from {@code source}, piece by piece, straight into guest memory. Stops early
     * when the source writes less than asked or reaches end of data. Returns the bytes written, or -1 if the
     * source was at end of data before writing anything.
     */
    public long writeFrom(Source source, long maxBytes) throws IOException {
        long limit = Math.min(maxBytes, remaining());
        long done = 0;
        while (done < limit) {
            long want = Math.min(limit - done, pieceLeft());
            long got = source.fill(segment(), segmentOffset(), want);
            if (got < 0) {
                return done == 0 ? -1 : done;
            }
            if (got > want) {
                throw new IllegalStateException("source wrote " + got + " bytes of " + want);
            }
            advance(got);
            done += got;
            if (got < want) {
                break;
            }
        }
        return done;
    }
}
