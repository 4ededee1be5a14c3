package dev.vhostdevice.virtqueue.memory;

/**
 * A region whose bytes are mapped per access instead of once (a Xen grant region the front-end marked
 * NO_ADVANCE_MAP). The walker maps each buffer it resolves here for as long as its chain is in flight, readable
 * pieces read-only and writable ones write-only, and unmaps them before the chain's used entry is published.
 */
public interface OnDemandMemory {

    /** One mapping: the bytes asked for, valid until {@link #unmap()}. */
    interface Mapping {
        /** Exactly the bytes asked for; closed (any access throws) once unmapped. */
        java.lang.foreign.MemorySegment segment();

        /** Undoes the mapping; idempotent. */
        void unmap();
    }

    /** Maps {@code length} bytes at {@code offset} into the region, for the device to write or only to read. */
    Mapping map(long offset, long length, boolean writable) throws ErrnoException;

    /** The region leaves the memory table: its resources go once the last live mapping is unmapped. */
    void release();
}
