package dev.vhostdevice.virtqueue;

/**
 * Why one descriptor chain was refused. The chain's head is still consumed: the device completes it (with an
 * error status or a zero-length used entry) and carries on with the next chain.
 */
public enum ChainFault {
    /** More descriptors than the queue size (direct part) or the indirect table's entries: a loop or overlong. */
    CHAIN_TOO_LONG("more descriptors than the table holds (a loop or an overlong chain)"),
    /** A NEXT index at or beyond the size of the table it indexes. */
    NEXT_OUT_OF_RANGE("next index out of range"),
    /** An INDIRECT descriptor inside an indirect table. */
    NESTED_INDIRECT("indirect descriptor inside an indirect table"),
    /** INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated. */
    INDIRECT_NOT_NEGOTIATED("indirect descriptor without VIRTIO_F_INDIRECT_DESC"),
    /** An indirect table of length 0. */
    INDIRECT_TABLE_EMPTY("indirect table of length 0"),
    /** An indirect table whose length is not a multiple of 16. */
    INDIRECT_TABLE_BAD_LENGTH("indirect table length not a multiple of 16"),
    /** An indirect table with more entries than the walker's cap. */
    INDIRECT_TABLE_TOO_LONG("indirect table longer than the cap"),
    /** An indirect table not wholly inside one guest memory region. */
    INDIRECT_TABLE_OUT_OF_RANGE("indirect table outside guest memory"),
    /** A device-readable descriptor after a device-writable one. */
    READABLE_AFTER_WRITABLE("device-readable descriptor after a device-writable one"),
    /** A buffer not wholly inside guest memory, or wrapping past 2^64. */
    BUFFER_OUT_OF_RANGE("buffer outside guest memory"),
    /** The lengths of the chain's buffers add up to more than 2^32-1 bytes. */
    TOTAL_LENGTH_OVERFLOW("total length over 2^32-1 bytes"),
    /** A buffer or table in memory mapped per access (a Xen grant) that the host could not map. */
    BUFFER_NOT_MAPPABLE("buffer or indirect table could not be mapped (Xen grant refused)");

    private final String description;

    ChainFault(String description) {
        this.description = description;
    }

    public String description() {
        return description;
    }
}
