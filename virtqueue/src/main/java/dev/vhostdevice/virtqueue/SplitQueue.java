package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.VirtioRing.AVAIL_FLAGS;
import static dev.vhostdevice.virtqueue.VirtioRing.AVAIL_IDX;
import static dev.vhostdevice.virtqueue.VirtioRing.AVAIL_RING;
import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_FLAGS;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_IDX;
import static dev.vhostdevice.virtqueue.VirtioRing.USED_RING;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_AVAIL_F_NO_INTERRUPT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_USED_F_NO_NOTIFY;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import dev.vhostdevice.virtqueue.memory.OnDemandMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device side of one split virtqueue (virtio 1.2 §2.7) over guest memory.
 *
 * <p>Everything in the rings is untrusted. Two kinds of bad input are told apart:
 * <ul>
 *   <li>a bad <em>chain</em> ({@link ChainFault}): {@link #pop} still returns it, with a fault and no pieces;
 *       the device completes its head with an error and goes on;</li>
 *   <li>a bad <em>ring</em> ({@link QueueFault}): the available index running away, a head out of range or
 *       already in flight. The queue is then broken: it pops nothing until {@link #reset()}.</li>
 * </ul>
 * The walk is bounded (queue size for the direct part, the table's entries, at most {@link #indirectCap()},
 * inside an indirect table), reads each descriptor once, and touches no memory outside the rings and the
 * chain's buffers. INDIRECT together with NEXT on one descriptor follows the table and ignores NEXT (the spec
 * forbids the pair; QEMU and rust-vmm treat it so); the table ends the chain.
 *
 * <p>Memory ordering: the available index is read with acquire (once per batch), the used index published with
 * release after its element, and a full fence separates a store from the load that decides a notification or a
 * re-check (the lost-wakeup race).
 *
 * <p>Not thread-safe: one worker owns a queue; configuration happens while it is stopped.
 */
public final class SplitQueue implements VirtQueue {
    private static final Logger LOG = LoggerFactory.getLogger(SplitQueue.class);
    /** Chain faults logged in full per queue before the log is thinned to one line in 1024. */
    private static final int FAULTS_LOGGED_IN_FULL = 16;

    /** Ring words: 2-aligned by the spec, accessed with acquire/release. */
    private static final VarHandle U16 =
            ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final ValueLayout.OfShort U16_PLAIN = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32_PLAIN = ValueLayout.JAVA_INT.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Descriptors: unaligned, since indirect tables may start anywhere. */
    private static final ValueLayout.OfLong U64_ANY =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String name;
    private final int maxSize;

    // Configuration, written by the front-end or VMM while the queue is stopped.
    private int size;
    private long descAddress;
    private long availAddress;
    private long usedAddress;
    /** Whether the rings were programmed since the last reset: a reset queue must walk nothing stale. */
    private boolean ringsProgrammed;
    private boolean eventIdx;
    private boolean indirectAllowed;
    private int indirectCap;
    private DirtyLog dirtyLog;

    // Resolved by activate(): the rings as segments of guest memory.
    private GuestMemory memory;
    private MemorySegment desc;
    private MemorySegment avail;
    private MemorySegment used;
    private boolean ready;
    /** Started, but its rings are outside the current guest memory: waits in {@link #remap} for them. */
    private boolean parked;
    /** Per head, the chain holding per-access mappings for it; null until memory mapped per access is used. */
    private Chain[] mappedHolders;

    // Run state.
    private int nextAvail;
    private int nextUsed;
    /** The available index as last read; chains up to it can be popped without reading it again. */
    private int shadowAvail;
    /** Used entries published since the last notification decision. */
    private int addedSinceDecision;
    private long[] inFlight;
    private int inFlightCount;
    private QueueFault fault;
    private long chainFaults;

    /**
     * A queue of at most {@code maxSize} entries (a valid ring size). The size starts at {@code maxSize}; the
     * indirect-table cap defaults to max(size, 1024) entries.
     */
    public SplitQueue(String name, int maxSize) {
        if (!VirtioRing.isValidSize(maxSize)) {
            throw new IllegalArgumentException("max queue size must be a power of two up to 32768: " + maxSize);
        }
        this.name = name;
        this.maxSize = maxSize;
        this.inFlight = new long[(maxSize + 63) / 64];
        reset();
    }

    public String name() {
        return name;
    }

    public int maxSize() {
        return maxSize;
    }

    public int size() {
        return size;
    }

    @Override
    public boolean isPacked() {
        return false;
    }

    // ---------------------------------------------------------------------------------------- configuration

    /** Sets the ring size: a power of two from 1 to {@link #maxSize()}. */
    public void setSize(int newSize) throws QueueConfigException {
        requireStopped("set the size");
        if (!VirtioRing.isValidSize(newSize) || newSize > maxSize) {
            throw new QueueConfigException(name + ": queue size " + newSize
                    + " is not a power of two from 1 to " + maxSize);
        }
        size = newSize;
        // A new size is a new ring: heads tracked for the old one mean nothing (and may be out of range).
        Arrays.fill(inFlight, 0);
        inFlightCount = 0;
    }

    /** Sets the guest-physical addresses of the descriptor table, available ring and used ring. */
    public void setAddresses(long descTable, long availRing, long usedRing) throws QueueConfigException {
        requireStopped("set ring addresses");
        if ((descTable & (VirtioRing.DESC_TABLE_ALIGN - 1)) != 0
                || (availRing & (VirtioRing.AVAIL_RING_ALIGN - 1)) != 0
                || (usedRing & (VirtioRing.USED_RING_ALIGN - 1)) != 0) {
            throw new QueueConfigException(name + ": misaligned rings: desc 0x%x (16), avail 0x%x (2), used 0x%x (4)"
                    .formatted(descTable, availRing, usedRing));
        }
        descAddress = descTable;
        availAddress = availRing;
        usedAddress = usedRing;
        ringsProgrammed = true;
    }

    public long descAddress() {
        return descAddress;
    }

    public long availAddress() {
        return availAddress;
    }

    public long usedAddress() {
        return usedAddress;
    }

    @Override
    public long availAreaBytes() {
        return VirtioRing.availRingBytes(size);
    }

    @Override
    public long usedAreaBytes() {
        return VirtioRing.usedRingBytes(size);
    }

    /** Whether VIRTIO_F_EVENT_IDX was negotiated. */
    public void setEventIdx(boolean enabled) {
        eventIdx = enabled;
    }

    public boolean eventIdx() {
        return eventIdx;
    }

    /** Whether VIRTIO_F_INDIRECT_DESC was negotiated; without it an INDIRECT descriptor is a chain fault. */
    public void setIndirectAllowed(boolean allowed) {
        indirectAllowed = allowed;
    }

    public boolean indirectAllowed() {
        return indirectAllowed;
    }

    /** The most entries an indirect table may have (1 to 65535). */
    public void setIndirectCap(int entries) {
        if (entries < 1 || entries > 65535) {
            throw new IllegalArgumentException("indirect cap must be 1..65535: " + entries);
        }
        indirectCap = entries;
    }

    public int indirectCap() {
        return indirectCap;
    }

    /** Where writes to guest memory are reported while the front-end logs dirty pages; null for none. */
    public void setDirtyLog(DirtyLog log) {
        dirtyLog = log;
    }

    /**
     * Checks the rings against {@code guestMemory} and makes the queue ready: all three rings must lie wholly
     * inside one region each. On failure nothing changes.
     */
    public void activate(GuestMemory guestMemory) throws QueueConfigException {
        if (!ringsProgrammed) {
            // Without this, a reset queue would take guest address 0 for its rings (rust-vmm d951283).
            throw new QueueConfigException(name + ": ring addresses not set since the last reset");
        }
        MemorySegment d = guestMemory.slice(descAddress, VirtioRing.descTableBytes(size));
        MemorySegment a = guestMemory.slice(availAddress, VirtioRing.availRingBytes(size));
        MemorySegment u = guestMemory.slice(usedAddress, VirtioRing.usedRingBytes(size));
        if (d == null || a == null || u == null) {
            throw new QueueConfigException(name + ": rings outside guest memory: desc 0x%x, avail 0x%x, used 0x%x (size %d)"
                    .formatted(descAddress, availAddress, usedAddress, size));
        }
        if (a.maxByteAlignment() < VirtioRing.AVAIL_RING_ALIGN || u.maxByteAlignment() < VirtioRing.USED_RING_ALIGN) {
            // Acquire/release need the host address aligned too: a region whose host address is not aligned
            // like its guest address (or a byte[] heap segment) cannot hold rings.
            throw new QueueConfigException(name + ": rings misaligned in host memory");
        }
        memory = guestMemory;
        desc = d;
        avail = a;
        used = u;
        ready = true;
        parked = false;
        shadowAvail = nextAvail;
    }

    /**
     * Moves a started queue (ready or parked) to a new memory table; the old one is about to go away. If the
     * rings are not in the new table the queue parks: it drops the old table, keeps its position and in-flight
     * heads, pops nothing and writes nothing, and becomes ready again at the first remap whose table holds the
     * rings (a front-end replacing a region: REM_MEM_REG then ADD_MEM_REG). Returns whether it is ready.
     */
    @Override
    public boolean remap(GuestMemory guestMemory) {
        if (!ready && !parked) {
            return false;
        }
        unmapAllInFlight(); // per-access mappings belong to the old table, as at stop()
        try {
            activate(guestMemory);
            return true;
        } catch (QueueConfigException e) {
            park();
            return false;
        }
    }

    private void park() {
        stop();
        parked = true;
    }

    @Override
    public boolean isParked() {
        return parked;
    }

    /** Stops the queue (ready or parked) without forgetting where it is (its state can still be read). */
    public void stop() {
        unmapAllInFlight();
        ready = false;
        parked = false;
        memory = null;
        desc = avail = used = null;
    }

    public boolean isReady() {
        return ready;
    }

    /** Back to the state after construction: stopped, size = max, no addresses, indices 0, not broken. */
    public void reset() {
        stop();
        size = maxSize;
        descAddress = availAddress = usedAddress = 0;
        ringsProgrammed = false;
        eventIdx = false;
        indirectAllowed = false;
        indirectCap = Math.max(maxSize, 1024);
        nextAvail = nextUsed = shadowAvail = 0;
        addedSinceDecision = 0;
        Arrays.fill(inFlight, 0);
        inFlightCount = 0;
        fault = null;
        chainFaults = 0;
    }

    private void requireStopped(String what) throws QueueConfigException {
        if (ready || parked) {
            throw new QueueConfigException(name + ": cannot " + what + " while the queue "
                    + (ready ? "runs" : "is parked"));
        }
    }

    // ---------------------------------------------------------------------------------------------- state

    /** Where the device is: the next available entry it will pop, the next used entry it will write. */
    public QueueState state() {
        return new QueueState(nextAvail, nextUsed, eventIdx);
    }

    /**
     * Restores a saved position. Nothing is in flight afterwards (the front-end resubmits what was, see
     * {@link #popHead}); a restored position inconsistent with the ring is caught at the next pop.
     */
    public void restore(QueueState state) throws QueueConfigException {
        requireStopped("restore state");
        nextAvail = state.nextAvail();
        shadowAvail = nextAvail;
        nextUsed = state.nextUsed();
        eventIdx = state.eventIdx();
        Arrays.fill(inFlight, 0);
        inFlightCount = 0;
        addedSinceDecision = 0;
    }

    /** The next available index the device will pop: the answer to GET_VRING_BASE. */
    public int nextAvail() {
        return nextAvail;
    }

    public int nextUsed() {
        return nextUsed;
    }

    /** The used index currently in the ring (what the driver sees). */
    public int usedIndexInRing() {
        requireReady();
        return Short.toUnsignedInt((short) U16.getAcquire(used, (long) USED_IDX));
    }

    /** Heads popped and not yet completed. */
    public int inFlightCount() {
        return inFlightCount;
    }

    public boolean isBroken() {
        return fault != null;
    }

    /** Why the queue is broken, or null. */
    public QueueFault fault() {
        return fault;
    }

    // ------------------------------------------------------------------------------------------- the walk

    /**
     * Whether the driver has published chains the device has not popped (reads the available index). False
     * when the queue is stopped or broken.
     */
    public boolean hasAvailable() {
        if (!ready || fault != null) {
            return false;
        }
        int availIdx = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_IDX));
        return availIdx != nextAvail;
    }

    /**
     * Pops the next available chain into {@code chain}. Returns false when there is none, the queue is stopped,
     * or it is (or just became) broken. A returned chain may carry a {@link ChainFault}; it is in flight either
     * way and must be completed with {@link #addUsed}.
     */
    public boolean pop(Chain chain) {
        if (!ready || fault != null) {
            return false;
        }
        if (nextAvail == shadowAvail) {
            int availIdx = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_IDX));
            int outstanding = (availIdx - nextAvail) & 0xFFFF;
            if (outstanding > size) {
                breakQueue(QueueFault.AVAIL_INDEX_RUNAWAY,
                        "avail idx " + availIdx + ", device at " + nextAvail + ", size " + size);
                return false;
            }
            if (outstanding == 0) {
                return false;
            }
            shadowAvail = availIdx;
        }
        // Ordered after the acquire of the index above: a plain read of the slot is enough.
        int head = Short.toUnsignedInt(avail.get(U16_PLAIN, AVAIL_RING + 2L * (nextAvail & (size - 1))));
        if (head >= size) {
            breakQueue(QueueFault.HEAD_OUT_OF_RANGE, "head " + head + " at avail " + nextAvail + ", size " + size);
            return false;
        }
        if (isInFlight(head)) {
            breakQueue(QueueFault.HEAD_IN_FLIGHT, "head " + head + " at avail " + nextAvail);
            return false;
        }
        nextAvail = (nextAvail + 1) & 0xFFFF;
        markInFlight(head);
        walk(head, chain);
        return true;
    }

    /**
     * Walks the chain at {@code head} without consuming an available entry: for requests a previous back-end
     * had in flight (the inflight region), which the driver will not publish again. False if the head is out
     * of range or already in flight.
     */
    public boolean popHead(int head, Chain chain) {
        if (!ready || fault != null || head < 0 || head >= size || isInFlight(head)) {
            return false;
        }
        markInFlight(head);
        walk(head, chain);
        return true;
    }

    private void walk(int head, Chain chain) {
        if (chain.mappedCount() > 0 && mappedHolders != null && mappedHolders[chain.head()] == chain) {
            mappedHolders[chain.head()] = null; // reset below unmaps what the chain held for its old head
        }
        chain.reset(head);
        ChainFault why = walkInto(head, chain);
        if (chain.mappedCount() > 0) {
            trackMapped(head, chain);
        }
        if (why != null) {
            chain.fail(why);
            chainFaults++;
            if (chainFaults <= FAULTS_LOGGED_IN_FULL || (chainFaults & 1023) == 0) {
                LOG.warn("{}: chain at head {} refused: {} ({} refused so far)", name, head, why.description(),
                        chainFaults);
            }
        }
        chain.finish();
    }

    private ChainFault walkInto(int head, Chain chain) {
        MemorySegment table = desc;
        long tableBase = 0;
        int tableEntries = size;
        boolean indirect = false;
        int index = head;
        int visited = 0;
        long total = 0;
        boolean writableSeen = false;
        while (true) {
            if (++visited > tableEntries) {
                return ChainFault.CHAIN_TOO_LONG;
            }
            chain.countDescriptor();
            // Each descriptor is read once, as two 8-byte loads, into locals.
            long at = tableBase + (long) DESCRIPTOR_SIZE * index;
            long address = table.get(U64_ANY, at);
            long word = table.get(U64_ANY, at + 8);
            long length = word & 0xFFFF_FFFFL;
            int flags = (int) (word >>> 32) & 0xFFFF;
            int next = (int) (word >>> 48);

            if ((flags & VIRTQ_DESC_F_INDIRECT) != 0) {
                if (indirect) {
                    return ChainFault.NESTED_INDIRECT;
                }
                if (!indirectAllowed) {
                    return ChainFault.INDIRECT_NOT_NEGOTIATED;
                }
                if (length == 0) {
                    return ChainFault.INDIRECT_TABLE_EMPTY;
                }
                if (length % DESCRIPTOR_SIZE != 0) {
                    return ChainFault.INDIRECT_TABLE_BAD_LENGTH;
                }
                if (length / DESCRIPTOR_SIZE > indirectCap) {
                    return ChainFault.INDIRECT_TABLE_TOO_LONG;
                }
                int regionIndex = memory.regionIndex(address);
                if (regionIndex < 0) {
                    return ChainFault.INDIRECT_TABLE_OUT_OF_RANGE;
                }
                GuestRegion region = memory.region(regionIndex);
                long offset = address - region.guestAddress();
                if (length > region.size() - offset) {
                    return ChainFault.INDIRECT_TABLE_OUT_OF_RANGE;
                }
                // The table replaces the rest of the chain; this descriptor's WRITE and NEXT are ignored.
                table = region.segment();
                if (table == null) {
                    table = mapForChain(chain, region, offset, length, false);
                    if (table == null) {
                        return ChainFault.BUFFER_NOT_MAPPABLE;
                    }
                    offset = 0;
                }
                tableBase = offset;
                tableEntries = (int) (length / DESCRIPTOR_SIZE);
                indirect = true;
                index = 0;
                visited = 0;
                continue;
            }

            boolean writable = (flags & VIRTQ_DESC_F_WRITE) != 0;
            if (!writable && writableSeen) {
                return ChainFault.READABLE_AFTER_WRITABLE;
            }
            writableSeen |= writable;
            total += length;
            if (total > 0xFFFF_FFFFL) {
                return ChainFault.TOTAL_LENGTH_OVERFLOW;
            }
            if (length > 0) {
                ChainFault bad = addPieces(chain, address, length, writable);
                if (bad != null) {
                    return bad;
                }
            }
            if ((flags & VIRTQ_DESC_F_NEXT) == 0) {
                return null;
            }
            if (next >= tableEntries) {
                return ChainFault.NEXT_OUT_OF_RANGE;
            }
            index = next;
        }
    }

    /** Adds the buffer's pieces, one per region it covers; the fault if a byte is outside memory or unmappable. */
    private ChainFault addPieces(Chain chain, long address, long length, boolean writable) {
        long at = address;
        long remaining = length;
        while (remaining > 0) {
            int regionIndex = memory.regionIndex(at);
            if (regionIndex < 0) {
                return ChainFault.BUFFER_OUT_OF_RANGE;
            }
            GuestRegion region = memory.region(regionIndex);
            long offset = at - region.guestAddress();
            long step = Math.min(remaining, region.size() - offset);
            MemorySegment segment = region.segment();
            if (segment == null) {
                // Memory mapped per access: this piece gets its own mapping, held until the chain completes.
                segment = mapForChain(chain, region, offset, step, writable);
                if (segment == null) {
                    return ChainFault.BUFFER_NOT_MAPPABLE;
                }
                offset = 0;
            }
            chain.addPiece(segment, offset, step, at, writable);
            remaining -= step;
            at += step;
            if (at == 0 && remaining > 0) {
                return ChainFault.BUFFER_OUT_OF_RANGE; // wrapped past 2^64
            }
        }
        return null;
    }

    /**
     * Maps {@code length} bytes at {@code offset} of an on-demand region for {@code chain}, which holds the
     * mapping until it completes; null if the host refused (logged).
     */
    private MemorySegment mapForChain(Chain chain, GuestRegion region, long offset, long length, boolean writable) {
        try {
            OnDemandMemory.Mapping mapping = region.onDemand().map(offset, length, writable);
            chain.hold(mapping);
            return mapping.segment();
        } catch (ErrnoException | RuntimeException e) {
            if (chainFaults < FAULTS_LOGGED_IN_FULL) { // the refused chain is counted and logged by walk()
                LOG.warn("{}: cannot map 0x{} bytes at 0x{} ({}): {}", name, Long.toHexString(length),
                        Long.toHexString(region.guestAddress() + offset), writable ? "writable" : "read-only",
                        e.getMessage());
            }
            return null;
        }
    }

    /** Remembers which chain holds per-access mappings for {@code head}, so completion by head unmaps them. */
    private void trackMapped(int head, Chain chain) {
        if (mappedHolders == null) {
            mappedHolders = new Chain[maxSize];
        }
        mappedHolders[head] = chain;
    }

    /** Undoes the per-access mappings of {@code head}'s chain, if it holds any. */
    private void unmapFor(int head) {
        Chain holder = mappedHolders[head];
        if (holder != null) {
            mappedHolders[head] = null;
            if (holder.head() == head) {
                holder.unmapAll();
            }
        }
    }

    /** Undoes the per-access mappings of every chain in flight (the queue stops or resets). */
    private void unmapAllInFlight() {
        if (mappedHolders != null) {
            for (int head = 0; head < mappedHolders.length; head++) {
                unmapFor(head);
            }
        }
    }

    // ----------------------------------------------------------------------------------------- completion

    /** Completes {@code chain} with the bytes its writer wrote (0 for a refused chain). */
    public void addUsed(Chain chain) {
        if (dirtyLog != null && chain.isValid()) {
            chain.logWritten(dirtyLog); // before the used index announces the buffers (see addUsed(int, int))
        }
        addUsed(chain.head(), chain.isValid() ? chain.bytesWritten() : 0);
    }

    /**
     * Publishes a used element for {@code head} with {@code length} bytes written. The head must be in flight:
     * completing anything else is a device bug, and throws before the ring is touched.
     */
    public void addUsed(int head, int length) {
        requireReady();
        if (head < 0 || head >= size || !isInFlight(head)) {
            throw new IllegalStateException(name + ": head " + head + " is not in flight");
        }
        if (mappedHolders != null) {
            unmapFor(head); // per-access mappings go before the guest gets the buffers back
        }
        long element = USED_RING + (long) VirtioRing.USED_ELEMENT_SIZE * (nextUsed & (size - 1));
        used.set(U32_PLAIN, element, head);
        used.set(U32_PLAIN, element + 4, length);
        nextUsed = (nextUsed + 1) & 0xFFFF;
        if (dirtyLog != null) {
            // Logged before the index is published: a front-end that sees the used entry finds its log bits set.
            dirtyLog.markDirty(usedAddress + element, VirtioRing.USED_ELEMENT_SIZE);
            dirtyLog.markDirty(usedAddress + USED_IDX, 2);
        }
        // Release: the element, the buffer contents and the log bits are visible before the index announcing them.
        U16.setRelease(used, (long) USED_IDX, (short) nextUsed);
        clearInFlight(head);
        addedSinceDecision++;
    }


    /**
     * Decides, once per batch of {@link #addUsed} calls, whether the driver wants an interrupt now: with
     * EVENT_IDX when the batch passed {@code used_event}; without it unless the driver set NO_INTERRUPT.
     * False when nothing was added since the last decision.
     */
    public boolean needsNotification() {
        requireReady();
        int added = addedSinceDecision;
        addedSinceDecision = 0;
        if (added == 0) {
            return false;
        }
        // Store (used idx) then load (used_event or flags): only a full fence orders them.
        VarHandle.fullFence();
        if (eventIdx) {
            if (added >= 0x10000) {
                return true;
            }
            int usedEvent = Short.toUnsignedInt((short) U16.getAcquire(avail, VirtioRing.usedEventOffset(size)));
            int old = (nextUsed - added) & 0xFFFF;
            return VirtioRing.needEvent(usedEvent, nextUsed, old);
        }
        int flags = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_FLAGS));
        return (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
    }

    /**
     * Asks the driver not to kick (without EVENT_IDX: used.flags NO_NOTIFY; with it nothing is needed, as kicks
     * stop once the driver passes the last published avail_event).
     */
    public void disableNotification() {
        requireReady();
        if (!eventIdx) {
            U16.setRelease(used, (long) USED_FLAGS, (short) VIRTQ_USED_F_NO_NOTIFY);
            logDirty(USED_FLAGS, 2);
        }
    }

    /**
     * Asks the driver to kick for the next chain, then re-checks the ring. Returns true if chains arrived
     * meanwhile: the driver may not kick for them, so the caller must drain again before sleeping.
     */
    public boolean enableNotification() {
        requireReady();
        if (fault != null) {
            return false;
        }
        if (eventIdx) {
            long availEvent = VirtioRing.availEventOffset(size);
            U16.setRelease(used, availEvent, (short) nextAvail);
            logDirty(availEvent, 2);
        } else {
            U16.setRelease(used, (long) USED_FLAGS, (short) 0);
            logDirty(USED_FLAGS, 2);
        }
        // Store (avail_event or flags) then load (avail idx): the lost-wakeup race needs a full fence here.
        VarHandle.fullFence();
        int availIdx = Short.toUnsignedInt((short) U16.getAcquire(avail, (long) AVAIL_IDX));
        return availIdx != nextAvail;
    }

    private void logDirty(long usedOffset, long length) {
        if (dirtyLog != null) {
            dirtyLog.markDirty(usedAddress + usedOffset, length);
        }
    }

    // ----------------------------------------------------------------------------------------- internals

    private void requireReady() {
        if (!ready) {
            throw new IllegalStateException(name + ": queue is not ready");
        }
    }

    private boolean isInFlight(int head) {
        return (inFlight[head >>> 6] & (1L << head)) != 0;
    }

    private void markInFlight(int head) {
        inFlight[head >>> 6] |= 1L << head;
        inFlightCount++;
    }

    private void clearInFlight(int head) {
        inFlight[head >>> 6] &= ~(1L << head);
        inFlightCount--;
    }

    private void breakQueue(QueueFault why, String detail) {
        fault = why;
        LOG.error("{}: queue broken until reset: {} ({})", name, why.description(), detail);
    }

    @Override
    public String toString() {
        return "SplitQueue[" + name + ", size=" + size + ", ready=" + ready + (parked ? ", parked" : "")
                + ", nextAvail=" + nextAvail + ", nextUsed=" + nextUsed + (fault != null ? ", broken=" + fault : "") + "]";
    }
}
