package dev.vhostdevice.virtqueue;

import java.lang.foreign.MemorySegment;

/**
 * A position in one direction of a chain (its readable or its writable pieces), as a byte offset and the piece
 * that holds it. Shared by {@link ChainReader} and {@link ChainWriter}.
 */
abstract sealed class ChainCursor permits ChainReader, ChainWriter {
    final Chain chain;
    /** Current piece, and the offset inside it; {@code piece == end} means the cursor is at the end. */
    int piece;
    long inPiece;
    long position;

    ChainCursor(Chain chain) {
        this.chain = chain;
    }

    abstract int firstPiece();

    abstract int endPiece();

    /** Bytes in this direction of the chain. */
    public abstract long size();

    /** Back to the start; called once the walker has filled the chain. */
    void rewind() {
        piece = firstPiece();
        inPiece = 0;
        position = 0;
        moved(0);
    }

    /** Bytes from here to the end. */
    public long remaining() {
        return size() - position;
    }

    /** Bytes from the start to here. */
    public long position() {
        return position;
    }

    /** Moves to {@code newPosition} bytes from the start of this direction (0 to {@link #size()}). */
    public void seek(long newPosition) {
        if (newPosition < 0 || newPosition > size()) {
            throw new ChainAccessException("seek to " + newPosition + " of " + size() + " bytes");
        }
        int p = firstPiece();
        int end = endPiece();
        long left = newPosition;
        while (p < end && left >= chain.pieceLength(p)) {
            left -= chain.pieceLength(p);
            p++;
        }
        piece = p;
        inPiece = left;
        position = newPosition;
        moved(newPosition);
    }

    /** Hook for the writer's high-water mark. */
    void moved(long newPosition) {
    }

    /** Advances by {@code count} bytes without touching them. */
    public void skip(long count) {
        require(count);
        advance(count);
    }

    final void require(long count) {
        if (count < 0 || count > remaining()) {
            throw new ChainAccessException(
                    "need " + count + " bytes at " + position + " of " + size() + " (" + direction() + ")");
        }
    }

    abstract String direction();

    /** Bytes left in the current piece. */
    final long pieceLeft() {
        return chain.pieceLength(piece) - inPiece;
    }

    final MemorySegment segment() {
        return chain.pieceSegment(piece);
    }

    final long segmentOffset() {
        return chain.pieceOffset(piece) + inPiece;
    }

    /** Moves forward {@code count} bytes, which the caller checked are there. */
    final void advance(long count) {
        long left = count;
        while (left > 0) {
            long step = Math.min(left, pieceLeft());
            inPiece += step;
            left -= step;
            if (inPiece == chain.pieceLength(piece)) {
                piece++;
                inPiece = 0;
            }
        }
        position += count;
        moved(position);
    }
}
