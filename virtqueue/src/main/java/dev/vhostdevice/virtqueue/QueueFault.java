package dev.vhostdevice.virtqueue;

/**
 * Why a queue is broken: the driver broke the ring itself, so no later chain can be trusted. The queue serves
 * nothing until it is reset (virtio's DEVICE_NEEDS_RESET).
 */
public enum QueueFault {
    /** The available index ran more than the queue size ahead of the device (or moved backwards). */
    AVAIL_INDEX_RUNAWAY("available index more than the queue size ahead"),
    /** An available ring entry names a head at or beyond the queue size. */
    HEAD_OUT_OF_RANGE("head index out of range"),
    /** An available ring entry names a head the device is still processing. */
    HEAD_IN_FLIGHT("head already in flight"),
    /** Packed ring: a chain runs into ring slots the device has not returned yet (more in flight than the ring). */
    RING_OVERRUN("more ring slots in flight than the ring holds"),
    /** Packed ring: a descriptor after the head of a chain is not marked available for the expected wrap. */
    CHAIN_FLAGS_MISMATCH("chain descriptor not marked available for the ring's wrap counter"),
    /** Packed ring: a buffer id the device is still processing made available again. */
    BUFFER_ID_IN_FLIGHT("buffer id already in flight"),
    /** The rings do not lie in guest memory (after a memory table change). */
    RINGS_OUT_OF_RANGE("rings outside guest memory");

    private final String description;

    QueueFault(String description) {
        this.description = description;
    }

    public String description() {
        return description;
    }
}
