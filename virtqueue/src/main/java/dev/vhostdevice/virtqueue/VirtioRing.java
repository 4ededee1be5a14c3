package dev.vhostdevice.virtqueue;

/** Split-ring layout constants and ring feature bits, named as in virtio 1.2 §2.7 and §6. */
public final class VirtioRing {
    /** Largest queue size the split ring allows. */
    public static final int MAX_QUEUE_SIZE = 32768;

    public static final int VIRTQ_DESC_F_NEXT = 1;
    public static final int VIRTQ_DESC_F_WRITE = 2;
    public static final int VIRTQ_DESC_F_INDIRECT = 4;
    public static final int VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
    public static final int VIRTQ_USED_F_NO_NOTIFY = 1;

    public static final int VIRTIO_F_INDIRECT_DESC = 28;
    public static final int VIRTIO_F_EVENT_IDX = 29;
    public static final int VIRTIO_F_VERSION_1 = 32;
    public static final int VIRTIO_F_ACCESS_PLATFORM = 33;
    public static final int VIRTIO_F_RING_PACKED = 34;
    public static final int VIRTIO_F_IN_ORDER = 35;
    public static final int VIRTIO_F_RING_RESET = 40;

    public static final int DESCRIPTOR_SIZE = 16;
    public static final int DESC_TABLE_ALIGN = 16;
    public static final int AVAIL_RING_ALIGN = 2;
    public static final int USED_RING_ALIGN = 4;
    public static final int USED_ELEMENT_SIZE = 8;

    /** Offsets inside the available ring. */
    public static final int AVAIL_FLAGS = 0;
    public static final int AVAIL_IDX = 2;
    public static final int AVAIL_RING = 4;
    /** Offsets inside the used ring. */
    public static final int USED_FLAGS = 0;
    public static final int USED_IDX = 2;
    public static final int USED_RING = 4;

    private VirtioRing() {
    }

    public static long descTableBytes(int size) {
        return (long) DESCRIPTOR_SIZE * size;
    }

    /** flags, idx, ring[size], used_event. */
    public static long availRingBytes(int size) {
        return 6L + 2L * size;
    }

    /** flags, idx, ring[size], avail_event. */
    public static long usedRingBytes(int size) {
        return 6L + (long) USED_ELEMENT_SIZE * size;
    }

    /** Offset of used_event (the driver's interrupt threshold) in the available ring. */
    public static long usedEventOffset(int size) {
        return AVAIL_RING + 2L * size;
    }

    /** Offset of avail_event (the device's kick threshold) in the used ring. */
    public static long availEventOffset(int size) {
        return USED_RING + (long) USED_ELEMENT_SIZE * size;
    }

    /** Whether {@code size} is a valid split-ring size: a power of two from 1 to 32768. */
    public static boolean isValidSize(int size) {
        return size > 0 && size <= MAX_QUEUE_SIZE && Integer.bitCount(size) == 1;
    }

    /**
     * The EVENT_IDX rule (virtio 1.2 §2.7.10): notify when the used index moving from {@code oldIdx} to
     * {@code newIdx} passed {@code event}, all in 16-bit wrapping arithmetic.
     */
    public static boolean needEvent(int event, int newIdx, int oldIdx) {
        return ((newIdx - event - 1) & 0xFFFF) < ((newIdx - oldIdx) & 0xFFFF);
    }
}
