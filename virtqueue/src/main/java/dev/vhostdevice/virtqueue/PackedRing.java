package dev.vhostdevice.virtqueue;

/** Packed-ring layout constants and rules, named as in virtio 1.2 §2.8. */
public final class PackedRing {
    /** Descriptor flags beyond the split ones (NEXT, WRITE, INDIRECT keep their values). */
    public static final int VIRTQ_DESC_F_AVAIL = 1 << 7;
    public static final int VIRTQ_DESC_F_USED = 1 << 15;

    /** Event suppression flags (bits 0-1 of the structure's flags word). */
    public static final int RING_EVENT_FLAGS_ENABLE = 0;
    public static final int RING_EVENT_FLAGS_DISABLE = 1;
    public static final int RING_EVENT_FLAGS_DESC = 2;

    /** The event suppression structure: le16 off_wrap, le16 flags. */
    public static final int EVENT_OFF_WRAP = 0;
    public static final int EVENT_FLAGS = 2;
    public static final int EVENT_AREA_BYTES = 4;
    public static final int EVENT_AREA_ALIGN = 4;

    /** Offsets inside a 16-byte packed descriptor. */
    public static final int DESC_ADDR = 0;
    public static final int DESC_LEN = 8;
    public static final int DESC_ID = 12;
    public static final int DESC_FLAGS = 14;

    /** Bit 15 of an off_wrap word or of a vhost-user packed position carries the wrap counter. */
    public static final int WRAP_BIT = 1 << 15;
    public static final int SLOT_MASK = 0x7FFF;

    /** Where both cursors of a fresh ring are: slot 0, wrap counter 1. */
    public static final int FRESH_POSITION = WRAP_BIT;

    private PackedRing() {
    }

    /** Whether {@code size} is a valid packed-ring size: 1 to 32768, no power of two needed. */
    public static boolean isValidSize(int size) {
        return size > 0 && size <= VirtioRing.MAX_QUEUE_SIZE;
    }

    /**
     * Whether a descriptor with {@code flags} is available to a device expecting wrap counter {@code wrap}:
     * AVAIL equals the counter and USED its inverse. Anything else (used, zeroed, a stale lap) is not.
     */
    public static boolean isAvailable(int flags, boolean wrap) {
        boolean availBit = (flags & VIRTQ_DESC_F_AVAIL) != 0;
        boolean usedBit = (flags & VIRTQ_DESC_F_USED) != 0;
        return availBit == wrap && usedBit != wrap;
    }

    /** The flags that mark a descriptor used for wrap counter {@code wrap}: AVAIL and USED both equal to it. */
    public static int usedFlags(boolean wrap) {
        return wrap ? VIRTQ_DESC_F_AVAIL | VIRTQ_DESC_F_USED : 0;
    }

    /** The flags that mark a descriptor available for wrap counter {@code wrap}. */
    public static int availFlags(boolean wrap) {
        return wrap ? VIRTQ_DESC_F_AVAIL : VIRTQ_DESC_F_USED;
    }

    /** A position (slot, wrap) as one word: the slot in bits 0-14, the wrap counter in bit 15. */
    public static int position(int slot, boolean wrap) {
        return slot | (wrap ? WRAP_BIT : 0);
    }

    public static int slotOf(int position) {
        return position & SLOT_MASK;
    }

    public static boolean wrapOf(int position) {
        return (position & WRAP_BIT) != 0;
    }

    /**
     * The packed EVENT_IDX rule: whether the used cursor moving from {@code oldPosition} to {@code newPosition}
     * (positions as {@link #position}) passed the driver's event position {@code offWrap}. Positions are put on
     * one line of two laps (wrap 1 first), so the test is exact for any ring size (an event slot beyond the
     * ring never matches). A move of a whole lap or more cannot be told from none: the caller notifies then.
     */
    public static boolean needEvent(int offWrap, int newPosition, int oldPosition, int size) {
        int lap = 2 * size;
        int event = linear(offWrap, size);
        int from = linear(oldPosition, size);
        int to = linear(newPosition, size);
        int moved = Math.floorMod(to - from, lap);
        if (moved == 0) {
            return false;
        }
        return Math.floorMod(event - from, lap) < moved;
    }

    private static int linear(int position, int size) {
        return slotOf(position) + (wrapOf(position) ? 0 : size);
    }
}
