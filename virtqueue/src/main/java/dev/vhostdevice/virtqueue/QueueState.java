package dev.vhostdevice.virtqueue;

/**
 * The run state of a split queue that survives a stop and a restart (GET_VRING_BASE / SET_VRING_BASE,
 * reconnects, device state): where the device is in the available and used rings, and whether EVENT_IDX is on.
 * Indices are free-running 16-bit counters.
 */
public record QueueState(int nextAvail, int nextUsed, boolean eventIdx) {
    public QueueState {
        if ((nextAvail & ~0xFFFF) != 0 || (nextUsed & ~0xFFFF) != 0) {
            throw new IllegalArgumentException("ring indices are 16-bit: " + nextAvail + ", " + nextUsed);
        }
    }
}
