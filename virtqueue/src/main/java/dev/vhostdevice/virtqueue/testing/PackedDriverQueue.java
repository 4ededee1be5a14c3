package dev.vhostdevice.virtqueue.testing;

import static dev.vhostdevice.virtqueue.PackedRing.DESC_ADDR;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_FLAGS;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_ID;
import static dev.vhostdevice.virtqueue.PackedRing.DESC_LEN;
import static dev.vhostdevice.virtqueue.PackedRing.EVENT_FLAGS;
import static dev.vhostdevice.virtqueue.PackedRing.EVENT_OFF_WRAP;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DESC;
import static dev.vhostdevice.virtqueue.PackedRing.RING_EVENT_FLAGS_DISABLE;
import static dev.vhostdevice.virtqueue.VirtioRing.DESCRIPTOR_SIZE;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_INDIRECT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_NEXT;
import static dev.vhostdevice.virtqueue.VirtioRing.VIRTQ_DESC_F_WRITE;

import dev.vhostdevice.virtqueue.PackedRing;
import dev.vhostdevice.virtqueue.QueueConfigException;
import dev.vhostdevice.virtqueue.VirtQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * The driver side of a packed virtqueue, for tests and for VMMs that embed devices, modelled on Linux's
 * virtqueue_add_packed and virtqueue_get_buf_ctx_packed: a free-id list with a slot count per id, avail and
 * used wrap counters starting at 1, chains written into the next ring slots (crossing the end, with each
 * descriptor's AVAIL/USED bits for its lap), the head's flags written last with release, packed indirect
 * tables, and used descriptors validated and skipped by the id's slot count. Event suppression in both
 * directions. Every ring word can also be written directly, to corrupt the ring on purpose.
 *
 * <p>Not thread-safe; one driver per queue.
 */
public final class PackedDriverQueue {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_ORDERED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    private final GuestMemory memory;
    private final int size;
    private final long descAddress;
    private final long driverAreaAddress;
    private final long deviceAreaAddress;
    private final MemorySegment ring;
    private final MemorySegment driverArea;
    private final MemorySegment deviceArea;
    private final Deque<Integer> freeIds = new ArrayDeque<>();
    /** Ring slots each in-flight id holds (0: not in flight). */
    private final int[] slotsOfId;
    private int freeSlots;
    private int nextAvail;
    private boolean availWrap = true;
    private int lastUsed;
    private boolean usedWrap = true;
    private int availAtLastKick = PackedRing.FRESH_POSITION;
    private boolean eventIdx;
    private boolean idInEveryDescriptor = true;

    /** A ring at the given guest-physical addresses (which the caller chose and must be in {@code memory}). */
    public PackedDriverQueue(GuestMemory memory, int size, long descAddress, long driverArea, long deviceArea) {
        if (!PackedRing.isValidSize(size)) {
            throw new IllegalArgumentException("bad packed queue size " + size);
        }
        this.memory = memory;
        this.size = size;
        this.descAddress = descAddress;
        this.driverAreaAddress = driverArea;
        this.deviceAreaAddress = deviceArea;
        this.slotsOfId = new int[size];
        this.freeSlots = size;
        for (int i = 0; i < size; i++) {
            freeIds.addLast(i);
        }
        ring = segment(descAddress, VirtioRing.descTableBytes(size));
        this.driverArea = segment(driverArea, PackedRing.EVENT_AREA_BYTES);
        this.deviceArea = segment(deviceArea, PackedRing.EVENT_AREA_BYTES);
        ring.fill((byte) 0);
        this.driverArea.fill((byte) 0);
        this.deviceArea.fill((byte) 0);
    }

    /** The ring laid out from {@code base} (16-aligned): descriptors, then the driver area, then the device area. */
    public static PackedDriverQueue layout(GuestMemory memory, int size, long base) {
        long driver = base + VirtioRing.descTableBytes(size);
        return new PackedDriverQueue(memory, size, base, driver, driver + PackedRing.EVENT_AREA_BYTES);
    }

    /** Bytes {@link #layout} needs from its base. */
    public static long layoutBytes(int size) {
        return VirtioRing.descTableBytes(size) + 2L * PackedRing.EVENT_AREA_BYTES;
    }

    /** Programs {@code queue} with this ring's size and addresses, as a transport would. */
    public void configure(VirtQueue queue) throws QueueConfigException {
        queue.setSize(size);
        queue.setAddresses(descAddress, driverAreaAddress, deviceAreaAddress);
    }

    /** Whether the driver acts as if VIRTIO_F_EVENT_IDX was negotiated (for kicks). */
    public void setEventIdx(boolean enabled) {
        eventIdx = enabled;
    }

    /** Linux writes the id into every descriptor of a chain; the spec needs it only in the last. */
    public void setIdInEveryDescriptor(boolean every) {
        idInEveryDescriptor = every;
    }

    public int size() {
        return size;
    }

    public long descAddress() {
        return descAddress;
    }

    public long driverAreaAddress() {
        return driverAreaAddress;
    }

    public long deviceAreaAddress() {
        return deviceAreaAddress;
    }

    public GuestMemory memory() {
        return memory;
    }

    public int freeSlots() {
        return freeSlots;
    }

    /** The driver's avail cursor as a position (slot | wrap &lt;&lt; 15). */
    public int availPosition() {
        return PackedRing.position(nextAvail, availWrap);
    }

    /** The driver's used cursor as a position (slot | wrap &lt;&lt; 15). */
    public int usedPosition() {
        return PackedRing.position(lastUsed, usedWrap);
    }

    // ----------------------------------------------------------------------------------------- adding

    /** Adds a chain of direct descriptors in the next ring slots and makes it available; returns its id. */
    public int add(Buffer... buffers) {
        return addWithId(takeId(), buffers);
    }

    /**
     * Adds a chain under {@code id}, whatever it is (in flight, beyond the size): for lies about ids. The id is
     * tracked only when it is below the size and free.
     */
    public int addWithId(int id, Buffer... buffers) {
        if (buffers.length == 0 || buffers.length > freeSlots) {
            throw new IllegalStateException("no room for " + buffers.length + " slots (" + freeSlots + " free)");
        }
        int headSlot = nextAvail;
        int headFlags = 0;
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            boolean last = i == buffers.length - 1;
            int flags = PackedRing.availFlags(availWrap) | (b.writable() ? VIRTQ_DESC_F_WRITE : 0)
                    | (last ? 0 : VIRTQ_DESC_F_NEXT);
            int descId = last || idInEveryDescriptor ? id : 0;
            if (i == 0) {
                writeSlot(nextAvail, b.address(), b.length(), descId, 0); // flags last, below
                headFlags = flags;
            } else {
                writeSlot(nextAvail, b.address(), b.length(), descId, flags);
            }
            advanceAvail();
        }
        track(id, buffers.length);
        U16_ORDERED.setRelease(ring, (long) DESCRIPTOR_SIZE * headSlot + DESC_FLAGS, (short) headFlags);
        return id;
    }

    /**
     * Adds one INDIRECT descriptor whose packed table (written at {@code tableAddress}) holds {@code buffers},
     * and makes it available; returns its id.
     */
    public int addIndirect(long tableAddress, Buffer... buffers) {
        writeIndirectTable(tableAddress, buffers);
        return addRaw(takeId(), tableAddress, buffers.length * DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT);
    }

    /** Writes a packed indirect table: entries in order, WRITE the only flag. */
    public void writeIndirectTable(long tableAddress, Buffer... buffers) {
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            writeDescriptorAt(tableAddress + (long) i * DESCRIPTOR_SIZE, b.address(), b.length(), 0,
                    b.writable() ? VIRTQ_DESC_F_WRITE : 0);
        }
    }

    /**
     * Makes one ring descriptor available with exactly {@code extraFlags} beside AVAIL/USED (NEXT, INDIRECT,
     * WRITE, any combination): for lies. Returns {@code id}.
     */
    public int addRaw(int id, long address, int length, int extraFlags) {
        if (freeSlots == 0) {
            throw new IllegalStateException("no free slot");
        }
        int slot = nextAvail;
        int flags = PackedRing.availFlags(availWrap) | (extraFlags & ~(PackedRing.VIRTQ_DESC_F_AVAIL
                | PackedRing.VIRTQ_DESC_F_USED));
        writeSlot(slot, address, length, id, 0);
        advanceAvail();
        track(id, 1);
        U16_ORDERED.setRelease(ring, (long) DESCRIPTOR_SIZE * slot + DESC_FLAGS, (short) flags);
        return id;
    }

    /** The id the next {@link #add} will use, or -1 when every id is in flight. */
    public int peekFreeId() {
        Integer id = freeIds.peekFirst();
        return id == null ? -1 : id;
    }

    private int takeId() {
        Integer id = freeIds.pollFirst();
        if (id == null) {
            throw new IllegalStateException("no free buffer id");
        }
        return id;
    }

    private void track(int id, int slots) {
        freeSlots -= slots;
        if (id < size) {
            freeIds.remove(id);
            slotsOfId[id] += slots;
        }
    }

    private void advanceAvail() {
        if (++nextAvail == size) {
            nextAvail = 0;
            availWrap = !availWrap;
        }
    }

    /**
     * Whether the device wants a kick for what was made available since the last call (Linux's
     * virtqueue_kick_prepare_packed): reads the Device Event Suppression structure after a full fence.
     */
    public boolean kickPrepare() {
        VarHandle.fullFence();
        int flags = Short.toUnsignedInt((short) U16_ORDERED.getAcquire(deviceArea, (long) EVENT_FLAGS)) & 3;
        int now = availPosition();
        int old = availAtLastKick;
        availAtLastKick = now;
        if (flags == RING_EVENT_FLAGS_DISABLE) {
            return false;
        }
        if (flags == RING_EVENT_FLAGS_DESC && eventIdx) {
            int offWrap = Short.toUnsignedInt(deviceArea.get(U16, (long) EVENT_OFF_WRAP));
            return PackedRing.needEvent(offWrap, now, old, size);
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------- used

    /**
     * The next used descriptor the driver has not seen, freeing its id and skipping its slots; null if none.
     * A used id that is beyond the size or not in flight is a device bug: it throws.
     */
    public Used pollUsed() {
        long at = (long) DESCRIPTOR_SIZE * lastUsed;
        int flags = Short.toUnsignedInt((short) U16_ORDERED.getAcquire(ring, at + DESC_FLAGS));
        boolean avail = (flags & PackedRing.VIRTQ_DESC_F_AVAIL) != 0;
        boolean used = (flags & PackedRing.VIRTQ_DESC_F_USED) != 0;
        if (avail != used || used != usedWrap) {
            return null;
        }
        int id = Short.toUnsignedInt(ring.get(U16, at + DESC_ID));
        int length = ring.get(U32, at + DESC_LEN);
        if (id >= size || slotsOfId[id] == 0) {
            throw new IllegalStateException("device used id " + id + " at slot " + lastUsed + ", not in flight");
        }
        int slots = slotsOfId[id];
        slotsOfId[id] = 0;
        freeIds.addLast(id);
        freeSlots += slots;
        lastUsed += slots;
        if (lastUsed >= size) {
            lastUsed -= size;
            usedWrap = !usedWrap;
        }
        return new Used(id, length);
    }

    /**
     * How many used descriptors the device has published beyond what {@link #pollUsed} consumed, without
     * consuming them (the packed counterpart of reading a split ring's used index).
     */
    public int usedAhead() {
        int slot = lastUsed;
        boolean wrap = usedWrap;
        int count = 0;
        int walked = 0;
        while (walked < size) {
            long at = (long) DESCRIPTOR_SIZE * slot;
            int flags = Short.toUnsignedInt((short) U16_ORDERED.getAcquire(ring, at + DESC_FLAGS));
            boolean avail = (flags & PackedRing.VIRTQ_DESC_F_AVAIL) != 0;
            boolean used = (flags & PackedRing.VIRTQ_DESC_F_USED) != 0;
            if (avail != used || used != wrap) {
                break;
            }
            int id = Short.toUnsignedInt(ring.get(U16, at + DESC_ID));
            int slots = id < size ? slotsOfId[id] : 0;
            if (slots == 0) {
                break;
            }
            count++;
            walked += slots;
            slot += slots;
            if (slot >= size) {
                slot -= size;
                wrap = !wrap;
            }
        }
        return count;
    }

    /** The device's flags word of used slot-to-be {@code slot} (for batch-ordering checks). */
    public int flagsAt(int slot) {
        return Short.toUnsignedInt(ring.get(U16, (long) DESCRIPTOR_SIZE * slot + DESC_FLAGS));
    }

    // -------------------------------------------------------------------------------- event suppression

    /** Writes the Driver Event Suppression structure: ENABLE, DISABLE or DESC with {@code offWrap}. */
    public void setDriverEvent(int flags, int offWrap) {
        driverArea.set(U16, (long) EVENT_OFF_WRAP, (short) offWrap);
        U16_ORDERED.setRelease(driverArea, (long) EVENT_FLAGS, (short) flags);
    }

    /** The Device Event Suppression flags the device wrote. */
    public int deviceEventFlags() {
        return Short.toUnsignedInt(deviceArea.get(U16, (long) EVENT_FLAGS));
    }

    /** The Device Event Suppression off_wrap the device wrote. */
    public int deviceEventOffWrap() {
        return Short.toUnsignedInt(deviceArea.get(U16, (long) EVENT_OFF_WRAP));
    }

    // ------------------------------------------------------------------------------------ raw access

    /** Writes ring slot {@code slot} whole: address, length, id and flags (flags last, with release). */
    public void writeSlot(int slot, long address, int length, int id, int flags) {
        long at = (long) DESCRIPTOR_SIZE * slot;
        ring.set(U64, at + DESC_ADDR, address);
        ring.set(U32, at + DESC_LEN, length);
        ring.set(U16, at + DESC_ID, (short) id);
        U16_ORDERED.setRelease(ring, at + DESC_FLAGS, (short) flags);
    }

    /** Flips {@code bits} in the flags of ring slot {@code slot}. */
    public void corruptFlags(int slot, int bits) {
        long at = (long) DESCRIPTOR_SIZE * slot + DESC_FLAGS;
        ring.set(U16, at, (short) (ring.get(U16, at) ^ bits));
    }

    /** The flags the driver writes to make a slot available in the current lap. */
    public int availFlagsNow() {
        return PackedRing.availFlags(availWrap);
    }

    /**
     * Puts the ring where it would be after a history of buffers all made available and used up to
     * {@code position} (slot | wrap &lt;&lt; 15): both cursors there, the slots before it used in this lap and the
     * others in the previous one. A device restored to the same position then agrees with the driver.
     */
    public void startAt(int position) {
        setAvailPosition(position);
        setUsedPosition(position);
        int slot = PackedRing.slotOf(position);
        boolean wrap = PackedRing.wrapOf(position);
        for (int s = 0; s < size; s++) {
            ring.set(U16, (long) DESCRIPTOR_SIZE * s + DESC_FLAGS, (short) PackedRing.usedFlags(s < slot ? wrap : !wrap));
        }
        availAtLastKick = position;
    }

    /** Moves the driver's avail cursor (and the next slot it fills) to a position, e.g. to start near the end. */
    public void setAvailPosition(int position) {
        nextAvail = PackedRing.slotOf(position);
        availWrap = PackedRing.wrapOf(position);
    }

    /** Moves the driver's used cursor, for a ring that resumes at a saved position. */
    public void setUsedPosition(int position) {
        lastUsed = PackedRing.slotOf(position);
        usedWrap = PackedRing.wrapOf(position);
    }

    /** Writes a packed descriptor at any guest address (an indirect table entry). */
    public void writeDescriptorAt(long gpa, long address, int length, int id, int flags) {
        MemorySegment d = segment(gpa, DESCRIPTOR_SIZE);
        d.set(U64, DESC_ADDR, address);
        d.set(U32, DESC_LEN, length);
        d.set(U16, DESC_ID, (short) id);
        d.set(U16, DESC_FLAGS, (short) flags);
    }

    /** Copies {@code bytes} into guest memory at {@code gpa} (within one region). */
    public void write(long gpa, byte[] bytes) {
        MemorySegment.copy(bytes, 0, segment(gpa, bytes.length), ValueLayout.JAVA_BYTE, 0, bytes.length);
    }

    /** Copies {@code length} bytes of guest memory at {@code gpa} (within one region). */
    public byte[] read(long gpa, int length) {
        byte[] out = new byte[length];
        MemorySegment.copy(segment(gpa, length), ValueLayout.JAVA_BYTE, 0, out, 0, length);
        return out;
    }

    private MemorySegment segment(long gpa, long length) {
        MemorySegment s = memory.slice(gpa, length);
        if (s == null) {
            throw new IllegalArgumentException("0x%x+%d is not in one guest memory region".formatted(gpa, length));
        }
        return s;
    }

    @Override
    public String toString() {
        return "PackedDriverQueue[size=" + size + ", avail=" + nextAvail + (availWrap ? "/1" : "/0") + ", used="
                + lastUsed + (usedWrap ? "/1" : "/0") + ", freeSlots=" + freeSlots + "]";
    }
}
