package dev.vhostdevice.virtqueue;

import dev.vhostdevice.virtqueue.memory.OnDemandMemory;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One descriptor chain popped from a queue, as the walker saw it: each descriptor was read from guest memory
 * once and turned into pieces (segment, offset, length) of guest memory, readable pieces first. A guest that
 * rewrites its descriptors afterwards cannot change what the device sees.
 *
 * <p>A chain object is reusable: {@link VirtQueue#pop(Chain)} refills it, growing its arrays only when a
 * longer chain than ever before arrives, so steady-state popping allocates nothing. A device that completes
 * requests one at a time needs one chain; a device that holds requests (an event queue) keeps one per request.
 *
 * <p>A chain with a {@link #fault()} has no pieces: the device completes its {@link #head()} with an error.
 */
public final class Chain {
    private static final int INITIAL_PIECES = 8;

    private int head = -1;
    private int bufferId = -1;
    private int ringSlots;
    private ChainFault fault;
    private int descriptors;
    private int pieces;
    private int firstWritable;
    private long readableBytes;
    private long writableBytes;
    private MemorySegment[] segments = new MemorySegment[INITIAL_PIECES];
    private long[] offsets = new long[INITIAL_PIECES];
    private long[] lengths = new long[INITIAL_PIECES];
    private long[] addresses = new long[INITIAL_PIECES];
    /** Buffers mapped for this chain in memory mapped per access (Xen grants); none in the usual case. */
    private OnDemandMemory.Mapping[] mapped;
    private int mappedCount;
    private final ChainReader reader = new ChainReader(this);
    private final ChainWriter writer = new ChainWriter(this);

    /** The head descriptor index: what the used ring entry names. */
    public int head() {
        return head;
    }

    /**
     * The id the driver gave this buffer: for a split ring the head index, for a packed ring the id of the
     * chain's last descriptor (any 16-bit value; echoed back, never used to index anything).
     */
    public int bufferId() {
        return bufferId;
    }

    /** Ring slots the chain took: 1 for a split ring, the descriptors it occupied in a packed ring. */
    public int ringSlots() {
        return ringSlots;
    }

    /** Why the walker refused this chain, or null for a valid chain. */
    public ChainFault fault() {
        return fault;
    }

    public boolean isValid() {
        return fault == null;
    }

    /** Descriptors visited, including any INDIRECT descriptor. */
    public int descriptorCount() {
        return descriptors;
    }

    public long readableBytes() {
        return readableBytes;
    }

    public long writableBytes() {
        return writableBytes;
    }

    /** Pieces of guest memory: one per non-empty descriptor, more where a buffer spans adjacent regions. */
    public int pieceCount() {
        return pieces;
    }

    /** Index of the first writable piece; equals {@link #pieceCount()} when nothing is writable. */
    public int firstWritablePiece() {
        return firstWritable;
    }

    public MemorySegment pieceSegment(int piece) {
        return segments[piece];
    }

    public long pieceOffset(int piece) {
        return offsets[piece];
    }

    public long pieceLength(int piece) {
        return lengths[piece];
    }

    /** Guest-physical address of a piece. */
    public long pieceAddress(int piece) {
        return addresses[piece];
    }

    public boolean isPieceWritable(int piece) {
        return piece >= firstWritable;
    }

    /** The cursor over the readable bytes, at the start after each pop. */
    public ChainReader reader() {
        return reader;
    }

    /** The cursor over the writable bytes, at the start after each pop. */
    public ChainWriter writer() {
        return writer;
    }

    /** Bytes the device wrote: the used length this chain completes with. */
    public int bytesWritten() {
        return (int) writer.bytesWritten();
    }

    void reset(int newHead) {
        if (mappedCount > 0) {
            unmapAll(); // reused before its previous request completed: that request's mappings go now
        }
        head = newHead;
        bufferId = newHead;
        ringSlots = 1;
        fault = null;
        descriptors = 0;
        pieces = 0;
        firstWritable = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    /** The walk is over: both cursors go to the start of their pieces. */
    void finish() {
        reader.rewind();
        writer.rewind();
    }

    /** A packed ring's buffer: its driver-chosen id and the ring slots it took. */
    void setPackedBuffer(int id, int slots) {
        bufferId = id;
        ringSlots = slots;
    }

    void countDescriptor() {
        descriptors++;
    }

    void fail(ChainFault why) {
        fault = why;
        if (mappedCount > 0) {
            unmapAll();
        }
        // Drop the pieces: a refused chain gives the device nothing to read or write.
        Arrays.fill(segments, 0, pieces, null);
        pieces = 0;
        firstWritable = 0;
        readableBytes = 0;
        writableBytes = 0;
    }

    void addPiece(MemorySegment segment, long offset, long length, long address, boolean writable) {
        if (pieces == segments.length) {
            grow();
        }
        // A reused chain usually holds this region's segment in the slot already; skipping the store saves the
        // reference-array store check, about a fifth of a 3-descriptor chain (BENCHMARKS.md).
        if (segments[pieces] != segment) {
            segments[pieces] = segment;
        }
        offsets[pieces] = offset;
        lengths[pieces] = length;
        addresses[pieces] = address;
        pieces++;
        if (writable) {
            writableBytes += length;
        } else {
            firstWritable = pieces;
            readableBytes += length;
        }
    }

    /** Keeps a per-access mapping until the chain completes. */
    void hold(OnDemandMemory.Mapping mapping) {
        if (mapped == null) {
            mapped = new OnDemandMemory.Mapping[INITIAL_PIECES];
        } else if (mappedCount == mapped.length) {
            mapped = Arrays.copyOf(mapped, mappedCount * 2);
        }
        mapped[mappedCount++] = mapping;
    }

    /** Per-access mappings this chain holds. */
    int mappedCount() {
        return mappedCount;
    }

    /** Undoes every per-access mapping: before the used entry is published, or when the chain is refused. */
    void unmapAll() {
        for (int i = 0; i < mappedCount; i++) {
            mapped[i].unmap();
            mapped[i] = null;
        }
        mappedCount = 0;
    }

    private void grow() {
        int capacity = segments.length * 2;
        segments = Arrays.copyOf(segments, capacity);
        offsets = Arrays.copyOf(offsets, capacity);
        lengths = Arrays.copyOf(lengths, capacity);
        addresses = Arrays.copyOf(addresses, capacity);
    }

    @Override
    public String toString() {
        return fault != null
                ? "Chain[head=" + head + ", fault=" + fault + "]"
                : "Chain[head=" + head + ", readable=" + readableBytes + ", writable=" + writableBytes + "]";
    }

    /** Marks the bytes the device wrote dirty in {@code log}, piece by piece (both ring layouts share this). */
    void logWritten(DirtyLog log) {
        // Unsigned: a used length of 2 GiB or more is a negative int.
        long left = Integer.toUnsignedLong(bytesWritten());
        for (int p = firstWritablePiece(); p < pieceCount() && left > 0; p++) {
            long step = Math.min(left, pieceLength(p));
            log.markDirty(pieceAddress(p), step);
            left -= step;
        }
    }
}
