package dev.vhostdevice.virtqueue;

/**
 * Sees each ring descriptor a packed pop reads, as it reads it (the engine copies them into the inflight region so
 * a restarted back-end can resubmit a buffer whose ring slots the device has since overwritten with used
 * descriptors). A pop that fails part-way has called it for some descriptors: index 0 starts a new buffer.
 */
@FunctionalInterface
public interface DescriptorRecorder {

    /** Descriptor {@code index} of the buffer being popped (0 = its first), as read from the ring. */
    void descriptor(int index, long address, int length, int id, int flags);
}
