package dev.vhostdevice.virtqueue;

import dev.vhostdevice.virtqueue.memory.GuestMemory;

/**
 * The device side of one virtqueue, whichever layout the driver chose: the split ring ({@link SplitQueue},
 * virtio 1.2 §2.7) or the packed ring ({@link PackedQueue}, §2.8, VIRTIO_F_RING_PACKED). Devices pop
 * {@link Chain}s, read and write them through {@link ChainReader} and {@link ChainWriter}, and complete them;
 * nothing in that path depends on the layout.
 *
 * <p>The three guest addresses keep the split names: for a packed ring the "available" address is the Driver
 * Event Suppression area and the "used" address the Device Event Suppression area (the vhost-user
 * SET_VRING_ADDR fields they arrive in).
 *
 * <p>{@link Chain#head()} is always below {@link #size()}: for a split ring it is the head descriptor index,
 * for a packed ring a device-side slot for the buffer, whose driver-chosen id is {@link Chain#bufferId()}. So
 * anything a device or runner keys by head works on both layouts.
 *
 * <p>Not thread-safe: one worker owns a queue; configuration happens while it is stopped.
 */
public interface VirtQueue {

    String name();

    int maxSize();

    int size();

    /** Whether this is a packed ring. */
    boolean isPacked();

    /** Sets the ring size: a power of two (split) or any value (packed) from 1 to {@link #maxSize()}. */
    void setSize(int newSize) throws QueueConfigException;

    /** Sets the guest-physical addresses of the descriptor area, the driver area and the device area. */
    void setAddresses(long descriptors, long driverArea, long deviceArea) throws QueueConfigException;

    long descAddress();

    long availAddress();

    long usedAddress();

    /** Bytes of the descriptor area at the current size (16 per entry for both layouts). */
    default long descAreaBytes() {
        return VirtioRing.descTableBytes(size());
    }

    /** Bytes of the driver area (the split available ring, the packed Driver Event Suppression structure). */
    long availAreaBytes();

    /** Bytes of the device area (the split used ring, the packed Device Event Suppression structure). */
    long usedAreaBytes();

    /** Whether VIRTIO_F_EVENT_IDX was negotiated. */
    void setEventIdx(boolean enabled);

    boolean eventIdx();

    /** Whether VIRTIO_F_INDIRECT_DESC was negotiated; without it an INDIRECT descriptor is a chain fault. */
    void setIndirectAllowed(boolean allowed);

    boolean indirectAllowed();

    /** The most entries an indirect table may have (1 to 65535). */
    void setIndirectCap(int entries);

    int indirectCap();

    /** Where writes to guest memory are reported while the front-end logs dirty pages; null for none. */
    void setDirtyLog(DirtyLog log);

    /** Checks the rings against {@code guestMemory} and makes the queue ready; on failure it stays stopped. */
    void activate(GuestMemory guestMemory) throws QueueConfigException;

    /** Moves a ready queue to a new memory table; rings no longer in it break the queue. */
    void remap(GuestMemory guestMemory);

    /** Stops the queue without forgetting where it is (its state can still be read). */
    void stop();

    boolean isReady();

    /** Back to the state after construction: stopped, size = max, no addresses, positions at the start. */
    void reset();

    /**
     * Where the device is. For a packed ring each index carries its ring slot in bits 0-14 and its wrap
     * counter in bit 15, the vhost-user encoding (a fresh ring is 0x8000 on both sides).
     */
    QueueState state();

    /** Restores a saved position; nothing is in flight afterwards. Packed: slots must be below the size. */
    void restore(QueueState state) throws QueueConfigException;

    /** The next available position the device will pop (packed: slot | wrap << 15). */
    int nextAvail();

    /** The next used position the device will write (packed: slot | wrap << 15). */
    int nextUsed();

    /** Chains popped and not yet completed. */
    int inFlightCount();

    boolean isBroken();

    /** Why the queue is broken, or null. */
    QueueFault fault();

    /** Whether the driver made buffers available the device has not popped. */
    boolean hasAvailable();

    /**
     * Pops the next available chain into {@code chain}. False when there is none, the queue is stopped, or it
     * is (or just became) broken. A returned chain may carry a {@link ChainFault}; it is in flight either way
     * and must be completed.
     */
    boolean pop(Chain chain);

    /** Completes {@code chain} with the bytes its writer wrote (0 for a refused chain). */
    void addUsed(Chain chain);

    /** Completes the in-flight chain popped as {@code head} with {@code length} bytes written. */
    void addUsed(int head, int length);

    /** Decides, once per batch of completions, whether the driver wants an interrupt now. */
    boolean needsNotification();

    /** Asks the driver not to kick. */
    void disableNotification();

    /**
     * Asks the driver to kick for the next buffer, then re-checks the ring. True if buffers arrived meanwhile:
     * the driver may not kick for them, so the caller must drain again before sleeping.
     */
    boolean enableNotification();
}
