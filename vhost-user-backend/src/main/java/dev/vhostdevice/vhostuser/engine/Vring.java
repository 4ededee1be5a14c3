package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.QueueNotifier;
import dev.vhostdevice.virtqueue.SplitQueue;

/**
 * Engine state of one ring beyond the {@link SplitQueue}: its fds, started and enabled (independent, spec
 * §4.1), and the used-ring log settings. Touched only on the worker thread (the control thread goes through
 * {@link Worker#call}), except the call fd, which notifications read.
 */
final class Vring {
    final int index;
    final SplitQueue queue;
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

    Vring(int index, int maxSize, QueueNotifier notifier) {
        this.index = index;
        this.queue = new SplitQueue("vring " + index, maxSize);
        this.deviceQueue = new DeviceQueue(index, queue, notifier);
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
