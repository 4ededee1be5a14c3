package dev.vhostdevice.vhostuser.device;

/**
 * Records which heads are in flight in shared memory so a restarted back-end can resubmit them (vhost-user
 * INFLIGHT_SHMFD). Engine-facing: devices never see it; {@link DeviceQueue} calls it around pop and complete.
 */
public interface InflightTracker {

    /** The next head to resubmit before new chains, or -1 when none is left. */
    int nextResubmit();

    void popped(int head);

    /** Before the used element for {@code head} is published. */
    void completing(int head);

    /** After it was published; {@code usedIndex} is the new used index. */
    void completed(int head, int usedIndex);
}
