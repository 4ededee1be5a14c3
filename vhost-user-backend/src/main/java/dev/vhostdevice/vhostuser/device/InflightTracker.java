package dev.vhostdevice.vhostuser.device;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.VirtQueue;

/**
 * Records which heads are in flight in shared memory so a restarted back-end can resubmit them (vhost-user
 * INFLIGHT_SHMFD). Engine-facing: devices never see it; {@link DeviceQueue} calls it around pop and complete.
 */
public interface InflightTracker {

    /** The next head to resubmit before new chains, or -1 when none is left. */
    int nextResubmit();

    /**
     * Pops the next request left in flight into {@code chain} when this tracker rebuilds them itself (a packed
     * ring's, from descriptors copied in the region); false when none is left or the tracker does not (a split
     * ring's come from {@link #nextResubmit} and are re-walked in the ring).
     */
    default boolean popResubmit(VirtQueue queue, Chain chain) {
        return false;
    }

    /** Whether each completion must reach the driver before {@link #completed} (no batching of used flags). */
    default boolean publishesEachCompletion() {
        return false;
    }

    void popped(int head);

    /** Before the used element for {@code head} is published. */
    void completing(int head);

    /** After it was published; {@code usedIndex} is the new used index. */
    void completed(int head, int usedIndex);
}
