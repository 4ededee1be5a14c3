package dev.vhostdevice.virtqueue;

import static dev.vhostdevice.virtqueue.PackedRing.DESC_FLAGS;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_ID;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_LEN;
import static dev.vhostdevice.virtqueue.PackedRing.EVENT_FLAGS;
import static dev.vhostdevice.virtqueue.PackedRing.EVENT_OFF_WRAP;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DESC;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DISABLE;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_ENABLE;
import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;

import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The device side of one packed virtqueue (virtio 1.2 §2.8, VIRTIO_F_RING_PACKED) over guest memory.
 *
 * <p>The device keeps two cursors, each a (slot, wrap counter) pair starting at (0, 1): next-avail, where it
 * looks for the next buffer, and next-used, where it writes the next used descriptor. A slot holds a new
 * buffer when its AVAIL bit equals the avail wrap counter and its USED bit the inverse; a chain is the next
 * ring slots linked by NEXT, crossing the ring's end; the buffer id is the last descriptor's. Used descriptors
 * go in completion order at next-used, each advancing it by the chain's slot count, and the first flags of a
 * batch are published last, with release, so the driver never sees half a batch.
 *
 * <p>Everything in the ring is untrusted; bad input is told apart as for {@link SplitQueue}:
 * <ul>
 *   <li>a bad <em>chain</em> ({@link ChainFault}: longer than the ring, a bad or nested indirect table,
 *       INDIRECT with NEXT or inside a NEXT chain, a buffer outside guest memory, a total over 2^32-1):
 *       {@link #pop} still returns it, with its id and slot count and no pieces, and the device completes it;</li>
 *   <li>a bad <em>ring</em> ({@link QueueFault}: a chain running into slots still in flight, a chain
 *       descriptor not marked available, an id reused while in flight): the queue is broken until
 *       {@link #reset()}.</li>
 * </ul>
 * Each descriptor is read once (the head's flags with acquire, then its other fields; the rest plainly) into
 * locals and the chain's pieces: the device later overwrites ring slots with used descriptors, so nothing is
 * ever re-read from the ring. The walk is bounded by the free ring slots and the indirect table's entries.
 *
 * <p>Buffer ids are 16-bit values the driver chooses; they are echoed, and only a 64 Ki-bit set (one bit per
 * possible id) is kept to refuse an id already in flight. What the device calls the chain's head is a slot of
 * this queue's own (below the size), mapped to the id and slot count at completion.
 *
 * <p>Not thread-safe: one worker owns a queue; configuration happens while it is stopped.
 */
public final class PackedQueue implements VirtQueue {
    private static final Logger LOG = LoggerFactory.getLogger(PackedQueue.class);
    /** Chain faults logged in full per queue before the log is thinned to one line in 1024. */
    private static final int FAULTS_LOGGED_IN_FULL = 16;

    /** Flags and event words: 2-aligned (the ring is 16-aligned, the areas 4-aligned), acquire/release. */
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
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
    private long driverAreaAddress;
    private long deviceAreaAddress;
    private boolean ringsProgrammed;
    private boolean eventIdx;
    private boolean indirectAllowed;
    private int indirectCap;
    private DirtyLog dirtyLog;

    // Resolved by activate().
    private GuestMemory memory;
    private MemorySegment desc;
    private MemorySegment driverArea;
    private MemorySegment deviceArea;
    private boolean ready;
    /** Started, but its rings are outside the current guest memory: waits in {@link #remap} for them. */
    private boolean parked;

    // Run state.
    private int nextAvail;
    private boolean availWrap;
    private int nextUsed;
    private boolean usedWrap;
    /** Ring slots popped and not yet returned: never more than the size. */
    private int inFlightSlots;
    /** Per device-side head: the buffer's id and its ring slots (0 = free). */
    private final int[] idOfHead;
    private final int[] slotsOfHead;
    private final int[] freeHeads;
    private int freeCount;
    /** One bit per possible buffer id: set while that id is in flight. */
    private final long[] idInFlight = new long[65536 / 64];
    private QueueFault fault;
    private long chainFaults;

    // A batch of used descriptors whose first flags are not written yet (-1: none pending).
    private long pendingFirstAt = -1;
    private short pendingFirstFlags;

    // Notification state: the used position at the last decision, and what was used since.
    private int usedAtDecision;
    private boolean decidedSinceStart;
    private int addedSinceDecision;
    private int slotsSinceDecision;

    /** Sees each ring descriptor a pop reads (the engine's inflight region copies them), or null. */
    private DescriptorRecorder recorder;

    // Walk state, kept in fields so the walk allocates nothing.
    private long walkTotal;
    private boolean walkWritableSeen;

    /** A queue of at most {@code maxSize} slots (1 to 32768, no power of two needed). */
    public PackedQueue(String name, int maxSize) {
        if (!PackedRing.isValidSize(maxSize)) {
            throw new IllegalArgumentException("max queue size must be 1 to 32768: " + maxSize);
        }
        this.name = name;
        this.maxSize = maxSize;
        this.idOfHead = new int[maxSize];
        this.slotsOfHead = new int[maxSize];
        this.freeHeads = new int[maxSize];
        reset();
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public int maxSize() {
        return maxSize;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public boolean isPacked() {
        return true;
    }

    // ---------------------------------------------------------------------------------------- configuration

    /** Sets the ring size: 1 to {@link #maxSize()}, any value (H17: 0 and more than 32768 are refused). */
    @Override
    public void setSize(int newSize) throws QueueConfigException {
        requireStopped("set the size");
        if (!PackedRing.isValidSize(newSize) || newSize > maxSize) {
            throw new QueueConfigException(name + ": packed queue size " + newSize + " is not from 1 to " + maxSize);
        }
        size = newSize;
        forgetInFlight();
    }

    /**
     * Sets the guest-physical addresses of the descriptor ring (16-aligned), the Driver Event Suppression area
     * and the Device Event Suppression area (4-aligned each).
     */
    @Override
    public void setAddresses(long descriptors, long driverArea, long deviceArea) throws QueueConfigException {
        requireStopped("set ring addresses");
        if ((descriptors & (VirtioRing.DESC_TABLE_ALIGN - 1)) != 0
                || (driverArea & (PackedRing.EVENT_AREA_ALIGN - 1)) != 0
                || (deviceArea & (PackedRing.EVENT_AREA_ALIGN - 1)) != 0) {
            throw new QueueConfigException(name + ": misaligned packed ring: descriptors 0x%x (16), driver area 0x%x (4),"
                    .formatted(descriptors, driverArea) + " device area 0x%x (4)".formatted(deviceArea));
        }
        descAddress = descriptors;
        driverAreaAddress = driverArea;
        deviceAreaAddress = deviceArea;
        ringsProgrammed = true;
    }

    @Override
    public long descAddress() {
        return descAddress;
    }

    /** The Driver Event Suppression area. */
    @Override
    public long availAddress() {
        return driverAreaAddress;
    }

    /** The Device Event Suppression area. */
    @Override
    public long usedAddress() {
        return deviceAreaAddress;
    }

    @Override
    public long availAreaBytes() {
        return PackedRing.EVENT_AREA_BYTES;
    }

    @Override
    public long usedAreaBytes() {
        return PackedRing.EVENT_AREA_BYTES;
    }

    @Override
    public void setEventIdx(boolean enabled) {
        eventIdx = enabled;
    }

    @Override
    public boolean eventIdx() {
        return eventIdx;
    }

    @Override
    public void setIndirectAllowed(boolean allowed) {
        indirectAllowed = allowed;
    }

    @Override
    public boolean indirectAllowed() {
        return indirectAllowed;
    }

    @Override
    public void setIndirectCap(int entries) {
        if (entries < 1 || entries > 65535) {
            throw new IllegalArgumentException("indirect cap must be 1..65535: " + entries);
        }
        indirectCap = entries;
    }

    @Override
    public int indirectCap() {
        return indirectCap;
    }

    @Override
    public void setDirtyLog(DirtyLog log) {
        dirtyLog = log;
    }

    /** Checks the three areas against {@code guestMemory} (each wholly inside one region, H16). */
    @Override
    public void activate(GuestMemory guestMemory) throws QueueConfigException {
        if (!ringsProgrammed) {
            throw new QueueConfigException(name + ": ring addresses not set since the last reset");
        }
        MemorySegment d = guestMemory.slice(descAddress, VirtioRing.descTableBytes(size));
        MemorySegment drv = guestMemory.slice(driverAreaAddress, PackedRing.EVENT_AREA_BYTES);
        MemorySegment dev = guestMemory.slice(deviceAreaAddress, PackedRing.EVENT_AREA_BYTES);
        if (d == null || drv == null || dev == null) {
            throw new QueueConfigException(name + ": packed ring outside guest memory: descriptors 0x%x, driver area 0x%x,"
                    .formatted(descAddress, driverAreaAddress) + " device area 0x%x (size %d)"
                    .formatted(deviceAreaAddress, size));
        }
        if (d.maxByteAlignment() < 2 || drv.maxByteAlignment() < 2 || dev.maxByteAlignment() < 2) {
            throw new QueueConfigException(name + ": packed ring misaligned in host memory");
        }
        memory = guestMemory;
        desc = d;
        driverArea = drv;
        deviceArea = dev;
        ready = true;
        parked = false;
    }

    /** As {@link SplitQueue#remap}: rings outside the new table park the queue at its position. */
    @Override
    public boolean remap(GuestMemory guestMemory) {
        if (!ready && !parked) {
            return false;
        }
        if (ready) {
            flushUsed();
        }
        ready = false;
        try {
            activate(guestMemory);
            return true;
        } catch (QueueConfigException e) {
            stop();
            parked = true;
            return false;
        }
    }

    @Override
    public boolean isParked() {
        return parked;
    }

    /** Stops the queue (ready or parked), publishing any used batch first, without forgetting where it is. */
    @Override
    public void stop() {
        if (ready) {
            flushUsed();
        }
        ready = false;
        parked = false;
        memory = null;
        desc = driverArea = deviceArea = null;
    }

    @Override
    public boolean isReady() {
        return ready;
    }

    @Override
    public void reset() {
        stop();
        size = maxSize;
        descAddress = driverAreaAddress = deviceAreaAddress = 0;
        ringsProgrammed = false;
        eventIdx = false;
        indirectAllowed = false;
        indirectCap = Math.max(maxSize, 1024);
        nextAvail = nextUsed = 0;
        availWrap = usedWrap = true;
        forgetInFlight();
        fault = null;
        chainFaults = 0;
    }

    private void forgetInFlight() {
        inFlightSlots = 0;
        Arrays.fill(slotsOfHead, 0);
        Arrays.fill(idInFlight, 0);
        // Heads handed out lowest first.
        freeCount = size;
        for (int i = 0; i < size; i++) {
            freeHeads[i] = size - 1 - i;
        }
        pendingFirstAt = -1;
        decidedSinceStart = false;
        addedSinceDecision = 0;
        slotsSinceDecision = 0;
    }

    private void requireStopped(String what) throws QueueConfigException {
        if (ready || parked) {
            throw new QueueConfigException(name + ": cannot " + what + " while the queue "
                    + (ready ? "runs" : "is parked"));
        }
    }

    // ---------------------------------------------------------------------------------------------- state

    @Override
    public QueueState state() {
        if (ready) {
            flushUsed();
        }
        return new QueueState(nextAvail(), nextUsed(), eventIdx);
    }

    /**
     * Restores both cursors from positions in the vhost-user encoding (slot | wrap &lt;&lt; 15). A slot at or
     * beyond the size is refused (H1). Nothing is in flight afterwards.
     */
    @Override
    public void restore(QueueState state) throws QueueConfigException {
        requireStopped("restore state");
        int availSlot = PackedRing.slotOf(state.nextAvail());
        int usedSlot = PackedRing.slotOf(state.nextUsed());
        if (availSlot >= size || usedSlot >= size) {
            throw new QueueConfigException(name + ": packed position avail slot %d, used slot %d beyond the size %d"
                    .formatted(availSlot, usedSlot, size));
        }
        nextAvail = availSlot;
        availWrap = PackedRing.wrapOf(state.nextAvail());
        nextUsed = usedSlot;
        usedWrap = PackedRing.wrapOf(state.nextUsed());
        eventIdx = state.eventIdx();
        forgetInFlight();
    }

    @Override
    public int nextAvail() {
        return PackedRing.position(nextAvail, availWrap);
    }

    @Override
    public int nextUsed() {
        return PackedRing.position(nextUsed, usedWrap);
    }

    @Override
    public int inFlightCount() {
        return size - freeCount;
    }

    /** Ring slots popped and not yet returned. */
    public int inFlightSlots() {
        return inFlightSlots;
    }

    @Override
    public boolean isBroken() {
        return fault != null;
    }

    @Override
    public QueueFault fault() {
        return fault;
    }

    // ------------------------------------------------------------------------------------------- the walk

    @Override
    public boolean hasAvailable() {
        if (!ready || fault != null) {
            return false;
        }
        return headAvailable();
    }

    private boolean headAvailable() {
        int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, (long) DESCRIPTOR_SIZE * nextAvail + DESC_FLAGS));
        return PackedRing.isAvailable(flags, availWrap);
    }

    @Override
    public boolean pop(Chain chain) {
        if (!ready || fault != null) {
            return false;
        }
        long headAt = (long) DESCRIPTOR_SIZE * nextAvail;
        // Acquire: the head is made available last, so everything of the chain is visible behind its flags.
        int flags = Short.toUnsignedInt((short) U16.getAcquire(desc, headAt + DESC_FLAGS));
        if (!PackedRing.isAvailable(flags, availWrap)) {
            return false; // H2: anything but "available for this lap" is an empty ring
        }
        int room = size - inFlightSlots;
        if (room == 0) {
            breakQueue(QueueFault.RING_OVERRUN, "slot " + nextAvail + " made available while all " + size
                    + " slots are in flight");
            return false;
        }
        int head = freeHeads[freeCount - 1];
        chain.reset(head);
        walkTotal = 0;
        walkWritableSeen = false;
        ChainFault why = null;
        int slot = nextAvail;
        boolean wrap = availWrap;
        int slots = 0;
        int id;
        while (true) {
            long at = (long) DESCRIPTOR_SIZE * slot;
            long address = desc.get(U64_ANY, at);
            long word = desc.get(U64_ANY, at + DESC_LEN);
            long length = word & 0xFFFF_FFFFL;
            id = (int) (word >>> 32) & 0xFFFF;
            if (slots > 0) {
                flags = (int) (word >>> 48) & 0xFFFF;
                if (!PackedRing.isAvailable(flags, wrap)) {
                    // H3: the driver writes every descriptor's bits; a chain whose tail is not available has no
                    // trustworthy end, so it cannot be completed either.
                    breakQueue(QueueFault.CHAIN_FLAGS_MISMATCH, "slot " + slot + " flags 0x"
                            + Integer.toHexString(flags) + " in a chain from slot " + nextAvail + ", wrap " + wrap);
                    chain.reset(-1); // what was walked is not a chain the device may see
                    return false;
                }
            }
            if (recorder != null) {
                recorder.descriptor(slots, address, (int) length, id, flags);
            }
            slots++;
            chain.countDescriptor();
            boolean next = (flags & VIRTQ_DESC_F_NEXT) != 0;
            if (why == null) {
                why = element(chain, address, length, flags, slots > 1, next);
            }
            if (++slot == size) {
                slot = 0;
                wrap = !wrap;
            }
            if (!next) {
                break;
            }
            if (slots == room) {
                if (inFlightSlots > 0) {
                    // H5: the chain goes on into slots the device still holds.
                    breakQueue(QueueFault.RING_OVERRUN, "chain from slot " + nextAvail + " runs past " + room
                            + " free slots into buffers in flight");
                    chain.reset(-1); // what was walked is not a chain the device may see
                    return false;
                }
                // H4: NEXT on every slot of the ring. The chain takes the whole ring and is refused.
                why = ChainFault.CHAIN_TOO_LONG;
                break;
            }
        }
        if (isIdInFlight(id)) {
            breakQueue(QueueFault.BUFFER_ID_IN_FLIGHT, "id " + id + " at slot " + nextAvail);
            chain.reset(-1); // what was walked is not a chain the device may see
            return false;
        }
        nextAvail = slot;
        availWrap = wrap;
        inFlightSlots += slots;
        freeCount--;
        idOfHead[head] = id;
        slotsOfHead[head] = slots;
        markId(id);
        chain.setPackedBuffer(id, slots);
        if (why != null) {
            chain.fail(why);
            chainFaults++;
            if (chainFaults <= FAULTS_LOGGED_IN_FULL || (chainFaults & 1023) == 0) {
                LOG.warn("{}: buffer id {} ({} slots) refused: {} ({} refused so far)", name, id, slots,
                        why.description(), chainFaults);
            }
        }
        chain.finish();
        return true;
    }

    /** Receives the ring descriptors of each pop, in order (index 0 = the first); null for none. */
    public void setDescriptorRecorder(DescriptorRecorder recorder) {
        this.recorder = recorder;
    }

    /**
     * Pops a buffer a previous back-end fetched and did not complete, from copies of its ring descriptors (its
     * ring slots may hold used descriptors by now): {@code count} descriptors with addresses, lengths and flags,
     * under buffer {@code id}. Validated as a ring walk is; next-avail does not move (the restored position is
     * already past it). False, with the reason logged, for one that cannot be in flight: a stopped or broken
     * queue, more slots than are free, an id already in flight, flags that do not chain to the end.
     */
    public boolean popRecorded(Chain chain, int id, long[] addresses, int[] lengths, int[] flags, int count) {
        if (!ready || fault != null) {
            return false;
        }
        if (count <= 0 || count > size - inFlightSlots || count > addresses.length || count > lengths.length
                || count > flags.length || id < 0 || id > 0xFFFF || isIdInFlight(id)) {
            LOG.warn("{}: recorded buffer id {} of {} descriptors refused ({} of {} slots in flight{})", name, id,
                    count, inFlightSlots, size, id >= 0 && id <= 0xFFFF && isIdInFlight(id) ? ", id in flight" : "");
            return false;
        }
        for (int i = 0; i < count; i++) {
            if (((flags[i] & VIRTQ_DESC_F_NEXT) != 0) != (i < count - 1)) {
                LOG.warn("{}: recorded buffer id {}: descriptor {} of {} has flags 0x{}", name, id, i, count,
                        Integer.toHexString(flags[i]));
                return false;
            }
        }
        int head = freeHeads[freeCount - 1];
        chain.reset(head);
        walkTotal = 0;
        walkWritableSeen = false;
        ChainFault why = null;
        for (int i = 0; i < count; i++) {
            chain.countDescriptor();
            if (why == null) {
                why = element(chain, addresses[i], Integer.toUnsignedLong(lengths[i]), flags[i], i > 0, i < count - 1);
            }
        }
        inFlightSlots += count;
        freeCount--;
        idOfHead[head] = id;
        slotsOfHead[head] = count;
        markId(id);
        chain.setPackedBuffer(id, count);
        if (why != null) {
            chain.fail(why);
            chainFaults++;
            LOG.warn("{}: recorded buffer id {} ({} slots) refused: {}", name, id, count, why.description());
        }
        chain.finish();
        return true;
    }

    /** One ring descriptor: a buffer, or an indirect table standing for the whole chain. */
    private ChainFault element(Chain chain, long address, long length, int flags, boolean linked, boolean next) {
        if ((flags & VIRTQ_DESC_F_INDIRECT) == 0) {
            return buffer(chain, address, length, (flags & VIRTQ_DESC_F_WRITE) != 0);
        }
        if (next) {
            return ChainFault.INDIRECT_WITH_NEXT; // H7
        }
        if (linked) {
            return ChainFault.INDIRECT_IN_CHAIN; // H7
        }
        if (!indirectAllowed) {
            return ChainFault.INDIRECT_NOT_NEGOTIATED; // H9
        }
        if (length == 0) {
            return ChainFault.INDIRECT_TABLE_EMPTY; // H6, QEMU #3984
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
        MemorySegment table = region.segment();
        if (table == null) {
            return ChainFault.BUFFER_NOT_MAPPABLE; // memory mapped per access (Xen grants): split rings only, so far
        }
        int entries = (int) (length / DESCRIPTOR_SIZE);
        // Entries are consumed in order 0..n-1; their NEXT is ignored (H8), the count comes from the length.
        for (int e = 0; e < entries; e++) {
            long at = offset + (long) DESCRIPTOR_SIZE * e;
            long entryAddress = table.get(U64_ANY, at);
            long word = table.get(U64_ANY, at + DESC_LEN);
            int entryFlags = (int) (word >>> 48) & 0xFFFF;
            chain.countDescriptor();
            if ((entryFlags & VIRTQ_DESC_F_INDIRECT) != 0) {
                return ChainFault.NESTED_INDIRECT;
            }
            ChainFault why = buffer(chain, entryAddress, word & 0xFFFF_FFFFL, (entryFlags & VIRTQ_DESC_F_WRITE) != 0);
            if (why != null) {
                return why;
            }
        }
        return null;
    }

    private ChainFault buffer(Chain chain, long address, long length, boolean writable) {
        if (!writable && walkWritableSeen) {
            return ChainFault.READABLE_AFTER_WRITABLE; // H12
        }
        walkWritableSeen |= writable;
        walkTotal += length;
        if (walkTotal > 0xFFFF_FFFFL) {
            return ChainFault.TOTAL_LENGTH_OVERFLOW; // H11
        }
        return length > 0 ? addPieces(chain, address, length, writable) : null;
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
            MemorySegment segment = region.segment();
            if (segment == null) {
                // Memory mapped per access (Xen grants): the packed walker does not map per access yet.
                return ChainFault.BUFFER_NOT_MAPPABLE;
            }
            long offset = at - region.guestAddress();
            long step = Math.min(remaining, region.size() - offset);
            chain.addPiece(segment, offset, step, at, writable);
            remaining -= step;
            at += step;
            if (at == 0 && remaining > 0) {
                return ChainFault.BUFFER_OUT_OF_RANGE; // wrapped past 2^64
            }
        }
        return null;
    }

    // ----------------------------------------------------------------------------------------- completion

    @Override
    public void addUsed(Chain chain) {
        addUsed(chain.head(), chain.isValid() ? chain.bytesWritten() : 0);
        if (dirtyLog != null && chain.isValid()) {
            chain.logWritten(dirtyLog);
        }
    }

    /**
     * Writes the used descriptor for the chain popped as {@code head} at next-used and advances next-used by
     * its slots. The first descriptor of a batch gets its flags only at {@link #flushUsed()} (called by
     * {@link #needsNotification()} and {@link #stop()}); the others get theirs now, invisible to a driver that
     * polls the first. Completing a head not in flight is a device bug and throws before the ring is touched.
     */
    @Override
    public void addUsed(int head, int length) {
        requireReady();
        if (head < 0 || head >= size || slotsOfHead[head] == 0) {
            throw new IllegalStateException(name + ": head " + head + " is not in flight");
        }
        int id = idOfHead[head];
        int slots = slotsOfHead[head];
        long at = (long) DESCRIPTOR_SIZE * nextUsed;
        desc.set(U32_PLAIN, at + DESC_LEN, length);
        desc.set(U16_PLAIN, at + DESC_ID, (short) id);
        short flags = (short) (PackedRing.usedFlags(usedWrap) | (length != 0 ? VIRTQ_DESC_F_WRITE : 0));
        if (pendingFirstAt < 0) {
            pendingFirstAt = at;
            pendingFirstFlags = flags;
        } else {
            U16.setRelease(desc, at + DESC_FLAGS, flags);
        }
        if (dirtyLog != null) {
            dirtyLog.markDirty(descAddress + at, DESCRIPTOR_SIZE);
        }
        nextUsed += slots;
        if (nextUsed >= size) {
            nextUsed -= size;
            usedWrap = !usedWrap;
        }
        inFlightSlots -= slots;
        slotsOfHead[head] = 0;
        freeHeads[freeCount++] = head;
        clearId(id);
        addedSinceDecision++;
        slotsSinceDecision += slots;
    }

    /**
     * Publishes the pending batch: the first used descriptor's flags, with release, after every other store
     * of the batch (and the buffers' contents).
     */
    public void flushUsed() {
        if (pendingFirstAt >= 0) {
            U16.setRelease(desc, pendingFirstAt + DESC_FLAGS, pendingFirstFlags);
            pendingFirstAt = -1;
        }
    }


    /**
     * Publishes the batch and decides whether the driver wants an interrupt: not when its event suppression
     * says DISABLE; with DESC (and EVENT_IDX) when the batch passed its off_wrap position, or on the first
     * decision since the ring started; otherwise (ENABLE, reserved values, DESC without EVENT_IDX: H14) yes.
     * False when nothing was completed since the last decision.
     */
    @Override
    public boolean needsNotification() {
        requireReady();
        flushUsed();
        int added = addedSinceDecision;
        int movedSlots = slotsSinceDecision;
        addedSinceDecision = 0;
        slotsSinceDecision = 0;
        if (added == 0) {
            return false;
        }
        int old = usedAtDecision;
        usedAtDecision = nextUsed();
        boolean first = !decidedSinceStart;
        decidedSinceStart = true;
        // Store (used flags) then load (driver's event suppression): only a full fence orders them.
        VarHandle.fullFence();
        int flags = Short.toUnsignedInt((short) U16.getAcquire(driverArea, (long) EVENT_FLAGS)) & 3;
        if (flags == RING_EVENT_FLAGS_DISABLE) {
            return false;
        }
        if (flags != RING_EVENT_FLAGS_DESC || !eventIdx || first || movedSlots >= size) {
            return true;
        }
        int offWrap = Short.toUnsignedInt(driverArea.get(U16_PLAIN, EVENT_OFF_WRAP));
        return PackedRing.needEvent(offWrap, usedAtDecision, old, size);
    }

    @Override
    public void disableNotification() {
        requireReady();
        U16.setRelease(deviceArea, (long) EVENT_FLAGS, (short) RING_EVENT_FLAGS_DISABLE);
        logDeviceArea(EVENT_FLAGS, 2);
    }

    /**
     * Asks for a kick (with EVENT_IDX: DESC at next-avail, else ENABLE), then, after a full fence, tests the
     * next-avail slot again: a buffer made available before the driver could see the request gets no kick.
     */
    @Override
    public boolean enableNotification() {
        requireReady();
        if (fault != null) {
            return false;
        }
        if (eventIdx) {
            deviceArea.set(U16_PLAIN, EVENT_OFF_WRAP, (short) nextAvail());
            U16.setRelease(deviceArea, (long) EVENT_FLAGS, (short) RING_EVENT_FLAGS_DESC);
            logDeviceArea(EVENT_OFF_WRAP, 4);
        } else {
            U16.setRelease(deviceArea, (long) EVENT_FLAGS, (short) RING_EVENT_FLAGS_ENABLE);
            logDeviceArea(EVENT_FLAGS, 2);
        }
        // Store (event suppression) then load (next-avail flags): the lost-wakeup race needs a full fence.
        VarHandle.fullFence();
        return headAvailable();
    }

    private void logDeviceArea(long offset, long length) {
        if (dirtyLog != null) {
            dirtyLog.markDirty(deviceAreaAddress + offset, length);
        }
    }

    // ----------------------------------------------------------------------------------------- internals

    private void requireReady() {
        if (!ready) {
            throw new IllegalStateException(name + ": queue is not ready");
        }
    }

    private boolean isIdInFlight(int id) {
        return (idInFlight[id >>> 6] & (1L << id)) != 0;
    }

    private void markId(int id) {
        idInFlight[id >>> 6] |= 1L << id;
    }

    private void clearId(int id) {
        idInFlight[id >>> 6] &= ~(1L << id);
    }

    private void breakQueue(QueueFault why, String detail) {
        fault = why;
        LOG.error("{}: queue broken until reset: {} ({})", name, why.description(), detail);
    }

    @Override
    public String toString() {
        return "PackedQueue[" + name + ", size=" + size + ", ready=" + ready + ", nextAvail=" + nextAvail
                + (availWrap ? "/1" : "/0") + ", nextUsed=" + nextUsed + (usedWrap ? "/1" : "/0")
                + (fault != null ? ", broken=" + fault : "") + "]";
    }
}
