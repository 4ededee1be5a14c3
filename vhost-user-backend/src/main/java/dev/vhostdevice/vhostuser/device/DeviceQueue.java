package dev.vhostdevice.vhostuser.device;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtQueue;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A device's view of one virtqueue: pop chains, complete them, and let the runner notify the driver once per
 * batch. Wraps a {@link VirtQueue}, split or packed (reachable through {@link #queue()} for anything else), and
 * adds the bookkeeping every runner needs: inflight tracking for reconnects, completing what a failing device left
 * behind, and the drain loop ({@link #service}). Allocates nothing per request.
 *
 * <p>Used on one thread at a time (the worker that owns the queue).
 */
public final class DeviceQueue {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceQueue.class);

    private final int index;
    /** Replaced only while the ring is stopped, when the front-end picks the other layout (SET_FEATURES). */
    private VirtQueue queue;
    private final QueueNotifier notifier;
    private InflightTracker inflight;
    /** Heads popped during the current {@link #service} call and not completed yet (in no particular order). */
    private final int[] poppedThisCall;
    private int poppedCount;
    /** Where each head stands in {@link #poppedThisCall}, so a completion removes it in O(1); stale if not there. */
    private final int[] slotOfHead;
    private int popsThisRound;
    private boolean inService;
    /** While polling: the device left available chains in the ring (a rate limit); not polled again until endPoll. */
    private boolean pollHeld;
    private boolean reportedBroken;

    public DeviceQueue(int index, VirtQueue queue, QueueNotifier notifier) {
        this.index = index;
        this.queue = queue;
        this.notifier = notifier;
        this.poppedThisCall = new int[queue.maxSize()];
        this.slotOfHead = new int[queue.maxSize()];
    }

    public int index() {
        return index;
    }

    /** The underlying queue, split or packed, for what this wrapper does not cover (state, sizes). */
    public VirtQueue queue() {
        return queue;
    }

    /**
     * The underlying queue. Kept for devices written before packed rings: its methods are the layout-neutral
     * {@link VirtQueue}'s, so {@code splitQueue().size()} and the like work on either layout.
     *
     * @deprecated use {@link #queue()}
     */
    @Deprecated
    public VirtQueue splitQueue() {
        return queue;
    }

    /**
     * Engine-facing: serves {@code next} from now on (the other layout, of the same max size), while the ring is
     * stopped. Devices keep this object and notice nothing.
     */
    public void useQueue(VirtQueue next) {
        if (next.maxSize() != queue.maxSize()) {
            throw new IllegalArgumentException("queue " + index + ": max size " + next.maxSize() + ", was "
                    + queue.maxSize());
        }
        if (queue.isReady()) {
            throw new IllegalStateException("queue " + index + ": cannot change the layout while the ring runs");
        }
        queue = next;
    }

    /** Engine-facing: tracks in-flight heads in a shared inflight region (null for none). */
    public void setInflightTracker(InflightTracker tracker) {
        this.inflight = tracker;
    }

    public boolean isReady() {
        return queue.isReady();
    }

    /**
     * Pops the next chain (first any a previous back-end left in flight, then new ones). False when there is
     * none, the queue is stopped, or it broke. A chain with a fault must be completed too (0 bytes).
     */
    public boolean pop(Chain chain) {
        boolean got = false;
        if (inflight != null) {
            got = inflight.popResubmit(queue, chain);
            int head;
            while (!got && (head = inflight.nextResubmit()) >= 0) {
                got = resubmit(head, chain);
            }
        }
        if (!got && !queue.pop(chain)) {
            return false;
        }
        if (inflight != null) {
            inflight.popped(chain.head());
        }
        if (inService && poppedCount < poppedThisCall.length) {
            slotOfHead[chain.head()] = poppedCount;
            poppedThisCall[poppedCount++] = chain.head();
        }
        popsThisRound++;
        return true;
    }

    /** A split request a previous back-end left in flight, re-walked from the ring (packed ones come from copies). */
    private boolean resubmit(int head, Chain chain) {
        return queue instanceof SplitQueue split && split.popHead(head, chain);
    }

    /** Completes {@code chain} with the bytes its writer wrote (0 for a refused chain). */
    public void complete(Chain chain) {
        if (inflight != null) {
            inflight.completing(chain.head());
        }
        queue.addUsed(chain);
        publishIfTracked();
        afterComplete(chain.head());
    }

    /** Completes {@code head} with {@code bytesWritten}. */
    public void complete(int head, int bytesWritten) {
        if (inflight != null) {
            inflight.completing(head);
        }
        queue.addUsed(head, bytesWritten);
        publishIfTracked();
        afterComplete(head);
    }

    /** A packed tracker commits a completion only once the driver can see it: no batching of the used flags. */
    private void publishIfTracked() {
        if (inflight != null && inflight.publishesEachCompletion() && queue instanceof PackedQueue packed) {
            packed.flushUsed();
        }
    }

    private void afterComplete(int head) {
        if (inflight != null) {
            inflight.completed(head, queue.nextUsed());
        }
        if (head < 0 || head >= slotOfHead.length) {
            return;
        }
        int slot = slotOfHead[head];
        if (slot < poppedCount && poppedThisCall[slot] == head) {
            int last = poppedThisCall[--poppedCount];
            poppedThisCall[slot] = last;
            slotOfHead[last] = slot;
        }
    }

    /**
     * Notifies the driver if it asked for it since the last decision. Runners call this after each device
     * callback; a device completing chains from a host-fd callback gets it for free.
     */
    public void notifyIfNeeded() {
        if (queue.isReady() && queue.needsNotification()) {
            notifier.notifyUsed(index);
        }
    }

    /**
     * Runs the device over the available chains: disable notifications, drain, re-enable and re-check (the
     * lost-wakeup race) while the device makes progress; then one notification for the batch. A device
     * exception completes the chains it popped in this call with 0 bytes and is logged.
     */
    public void service(VirtioDevice device) {
        if (!queue.isReady()) {
            return;
        }
        inService = true;
        poppedCount = 0;
        try {
            boolean again;
            do {
                popsThisRound = 0;
                queue.disableNotification();
                device.handleQueue(this);
                again = queue.isReady() && queue.enableNotification() && popsThisRound > 0;
            } while (again);
        } catch (RuntimeException e) {
            abandon(e);
        } finally {
            inService = false;
            poppedCount = 0;
        }
        afterCallback();
    }

    /**
     * Polling (the runner spins on the available ring for a while after a batch instead of sleeping): runs the
     * device over what is available and notifies the driver for it, but leaves driver notifications off, so a
     * driver that publishes while the runner polls does not kick. Returns whether the device popped a chain
     * (false too when nothing was available, the queue is not ready, or the device is holding back, as a
     * rate limit does). A runner that polls must end with {@link #endPoll} before it sleeps.
     */
    public boolean poll(VirtioDevice device) {
        if (pollHeld || !queue.isReady() || !queue.hasAvailable()) {
            return false;
        }
        inService = true;
        poppedCount = 0;
        popsThisRound = 0;
        try {
            queue.disableNotification();
            device.handleQueue(this);
        } catch (RuntimeException e) {
            abandon(e);
        } finally {
            inService = false;
            poppedCount = 0;
        }
        afterCallback();
        pollHeld = popsThisRound == 0;
        return !pollHeld;
    }

    /**
     * Ends polling before the runner sleeps: notifications on again, and whatever the driver published
     * meanwhile (without kicking) served as {@link #service} does.
     */
    public void endPoll(VirtioDevice device) {
        pollHeld = false;
        if (queue.isReady() && queue.enableNotification()) {
            service(device);
        }
    }

    private void abandon(RuntimeException e) {
        LOG.error("queue {}: device failed, completing {} popped chain(s) with 0 bytes: {}", index, poppedCount,
                e.toString(), e);
        completeAbandoned();
        if (queue.isReady()) {
            queue.enableNotification();
        }
    }

    /** After any device callback: one notification if wanted, and a broken queue reported once. */
    public void afterCallback() {
        notifyIfNeeded();
        if (queue.isBroken() && !reportedBroken) {
            reportedBroken = true;
            notifier.queueBroken(index, queue.fault());
        }
    }

    /** After a queue reset: a new break is reported again. */
    public void clearBrokenReport() {
        reportedBroken = false;
    }

    private void completeAbandoned() {
        while (poppedCount > 0) {
            int head = poppedThisCall[poppedCount - 1];
            try {
                complete(head, 0);
            } catch (RuntimeException e) {
                poppedCount--; // already completed or queue stopped: nothing more to do for it
                LOG.warn("queue {}: could not complete abandoned head {}: {}", index, head, e.toString());
            }
        }
    }

    @Override
    public String toString() {
        return "DeviceQueue[" + index + ", " + queue + "]";
    }
}
