package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.QueueNotifier;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtQueue;

/**
 * Engine state of one ring beyond its queue (a {@link SplitQueue}, or a {@link PackedQueue} once the front-end
 * acked VIRTIO_F_RING_PACKED): its fds, started and enabled (independent, spec
 * §4.1), and the used-ring log settings. Touched only on the worker thread (the control thread goes through
 * {@link Worker#call}), except the call fd, which notifications read.
 */
final class Vring {
    final int index;
    private final SplitQueue split;
    private final PackedQueue packed;
    /** The layout in use: split until SET_FEATURES acks VIRTIO_F_RING_PACKED. */
    VirtQueue queue;
    final DeviceQueue deviceQueue;
    int kickFd = -1;
    volatile int callFd = -1;
    int errFd = -1;
    boolean started;
    boolean enabled;
    boolean addressesSet;
    boolean logUsed;
    long logGuestAddr;
    InflightQueueRegion inflight;
    /** The packed ring's region in the inflight buffer while it runs tracked, or null. */
    PackedInflightRegion packedInflight;

    Vring(int index, int maxSize, QueueNotifier notifier) {
        this.index = index;
        this.split = new SplitQueue("vring " + index, maxSize);
        this.packed = new PackedQueue("vring " + index, maxSize);
        this.queue = split;
        this.deviceQueue = new DeviceQueue(index, queue, notifier);
    }

    /** Switches to the packed or split layout, reset; only while the ring is stopped. */
    void useLayout(boolean packedRing) {
        VirtQueue next = packedRing ? packed : split;
        if (next == queue) {
            return;
        }
        next.reset();
        deviceQueue.useQueue(next);
        queue = next;
    }

    /** Started and enabled: kicks are processed. */
    boolean isRunning() {
        return started && enabled && queue.isReady();
    }

    @Override
    public String toString() {
        return "vring " + index + (started ? " started" : " stopped") + (enabled ? " enabled" : " disabled");
    }
}
