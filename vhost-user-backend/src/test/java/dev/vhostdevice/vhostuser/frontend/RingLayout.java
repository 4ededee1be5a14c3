package dev.vhostdevice.vhostuser.frontend;

import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.virtqueue.PackedRing;

/** The two virtqueue layouts a test front-end can drive, with what differs between them on the wire. */
public enum RingLayout {
    SPLIT,
    PACKED;

    /** VIRTIO_F_RING_PACKED. */
    public static final long F_RING_PACKED = 1L << VirtioFeatures.VIRTIO_F_RING_PACKED;

    public boolean packed() {
        return this == PACKED;
    }

    /** The feature bit this layout adds to SET_FEATURES. */
    public long feature() {
        return packed() ? F_RING_PACKED : 0;
    }

    /** SET_VRING_BASE for a fresh ring: index 0, or slot 0 with both wrap counters 1 (0x80008000). */
    public int freshBase() {
        return packed() ? PackedRing.FRESH_POSITION | PackedRing.FRESH_POSITION << 16 : 0;
    }

    /**
     * GET_VRING_BASE after {@code chains} chains of {@code descriptors} each on a ring of {@code size}, all
     * completed: the index (split), or both positions, each (slot, wrap) after that many slots (packed).
     */
    public int baseAfter(int chains, int descriptors, int size) {
        if (!packed()) {
            return chains & 0xFFFF;
        }
        int slots = chains * descriptors;
        int position = PackedRing.position(slots % size, ((slots / size) & 1) == 0);
        return position | position << 16;
    }
}
