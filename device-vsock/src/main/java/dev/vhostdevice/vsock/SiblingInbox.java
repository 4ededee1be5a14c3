package dev.vhostdevice.vsock;

import dev.vhostdevice.virtqueue.ChainReader;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Packets other guests of this guest's groups sent it, waiting for its RX ring: copied verbatim (header and
 * payload) into a bounded pool of reused native slots, because the sender's chain must be completed by the
 * sender's worker. When the pool is full the sender holds its chain and is woken once a slot frees up, so
 * sibling traffic is back-pressured, never dropped. Written by any worker, read by the owner's; locked.
 */
final class SiblingInbox {
    static final int SLOTS = 64;
    static final int SLOT_SIZE = VsockPacket.HEADER_SIZE + VsockPacket.MAX_PAYLOAD;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment[] slots = new MemorySegment[SLOTS];
    private final int[] lengths = new int[SLOTS];
    private int head;
    private int count;
    /** Payload bytes of the head packet already delivered (a packet larger than an RX buffer goes in pieces). */
    private int headDelivered;
    private final List<Runnable> waiting = new ArrayList<>();
    private final Runnable wakeOwner;

    SiblingInbox(Runnable wakeOwner) {
        this.wakeOwner = wakeOwner;
    }

    /**
     * Copies {@code bytes} (header first) from {@code reader}; false when full, and then {@code wakeSender} runs
     * once a slot frees.
     */
    boolean offer(ChainReader reader, int bytes, Runnable wakeSender) {
        synchronized (this) {
            if (count == SLOTS) {
                if (!waiting.contains(wakeSender)) {
                    waiting.add(wakeSender);
                }
                return false;
            }
            int slot = (head + count) % SLOTS;
            if (slots[slot] == null) {
                slots[slot] = arena.allocate(SLOT_SIZE, 8);
            }
            reader.seek(0);
            reader.read(slots[slot], 0, bytes);
            lengths[slot] = bytes;
            count++;
        }
        wakeOwner.run();
        return true;
    }

    synchronized boolean isEmpty() {
        return count == 0;
    }

    /** The head packet and how much of its payload is delivered; the caller then calls {@link #delivered}. */
    synchronized MemorySegment peek() {
        return count == 0 ? null : slots[head];
    }

    synchronized int headLength() {
        return lengths[head];
    }

    synchronized int headDelivered() {
        return headDelivered;
    }

    /** {@code payload} more bytes of the head packet went to the guest; the packet is done when all did. */
    void delivered(int payload) {
        List<Runnable> wake = null;
        synchronized (this) {
            headDelivered += payload;
            if (headDelivered < lengths[head] - VsockPacket.HEADER_SIZE) {
                return;
            }
            headDelivered = 0;
            head = (head + 1) % SLOTS;
            count--;
            if (!waiting.isEmpty()) {
                wake = List.copyOf(waiting);
                waiting.clear();
            }
        }
        if (wake != null) {
            wake.forEach(Runnable::run);
        }
    }

    /** Drops everything queued (the guest reconnected: its old connections are gone). */
    void clear() {
        List<Runnable> wake;
        synchronized (this) {
            head = 0;
            count = 0;
            headDelivered = 0;
            wake = List.copyOf(waiting);
            waiting.clear();
        }
        wake.forEach(Runnable::run);
    }

    /** Forgets a sender that goes away. */
    synchronized void forget(Runnable wakeSender) {
        waiting.remove(wakeSender);
    }

    void forEachWaiting(Consumer<Runnable> action) {
        List<Runnable> copy;
        synchronized (this) {
            copy = List.copyOf(waiting);
        }
        copy.forEach(action);
    }
}
