package dev.vhostdevice.virtqueue.testing;

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

import dev.vhostdevice.virtqueue.QueueConfigException;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;

/**
 * The driver side of a split virtqueue, for tests and for VMMs that embed devices: lays out the three rings in
 * guest memory, adds buffers the way Linux's virtio_ring does (single, chained, indirect), publishes them, reads
 * used entries back, and answers whether the device wants a kick or the driver an interrupt. Every ring word
 * can also be written directly, to corrupt the ring on purpose.
 *
 * <p>Not thread-safe; one driver per queue.
 */
public final class DriverQueue {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle U16_ORDERED = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();

    /** One buffer of a chain: where it is, how long, and whether the device may write it. */
    public record Buffer(long address, int length, boolean writable) {
        public static Buffer readable(long address, int length) {
            return new Buffer(address, length, false);
        }

        public static Buffer writable(long address, int length) {
            return new Buffer(address, length, true);
        }
    }

    /** A used ring entry: the head the device completed and the bytes it says it wrote. */
    public record Used(int head, int length) {
    }

    private final GuestMemory memory;
    private final int size;
    private final long descAddress;
    private final long availAddress;
    private final long usedAddress;
    /** The three rings as segments, resolved once so publishing and polling allocate nothing. */
    private final MemorySegment descTable;
    private final MemorySegment availRing;
    private final MemorySegment usedRing;
    private final Deque<Integer> free = new ArrayDeque<>();
    /** Descriptors each in-flight head holds, to free them when it is used. */
    private final int[][] heldBy;
    private int availIdx;
    private int lastSeenUsed;
    private int availAtLastKick;
    private boolean eventIdx;

    /** Rings at the given guest-physical addresses (which the caller chose and must be in {@code memory}). */
    public DriverQueue(GuestMemory memory, int size, long descAddress, long availAddress, long usedAddress) {
        if (!VirtioRing.isValidSize(size)) {
            throw new IllegalArgumentException("bad queue size " + size);
        }
        this.memory = memory;
        this.size = size;
        this.descAddress = descAddress;
        this.availAddress = availAddress;
        this.usedAddress = usedAddress;
        this.heldBy = new int[size][];
        for (int i = 0; i < size; i++) {
            free.addLast(i);
        }
        descTable = segment(descAddress, VirtioRing.descTableBytes(size));
        availRing = segment(availAddress, VirtioRing.availRingBytes(size));
        usedRing = segment(usedAddress, VirtioRing.usedRingBytes(size));
        descTable.fill((byte) 0);
        availRing.fill((byte) 0);
        usedRing.fill((byte) 0);
    }

    /** Rings laid out from {@code base} (16-aligned) as Linux does: table, then avail, then used (4-aligned). */
    public static DriverQueue layout(GuestMemory memory, int size, long base) {
        long avail = base + VirtioRing.descTableBytes(size);
        long used = (avail + VirtioRing.availRingBytes(size) + 3) & ~3L;
        return new DriverQueue(memory, size, base, avail, used);
    }

    /** Bytes {@link #layout} needs from its base. */
    public static long layoutBytes(int size) {
        long avail = VirtioRing.descTableBytes(size);
        long used = (avail + VirtioRing.availRingBytes(size) + 3) & ~3L;
        return used + VirtioRing.usedRingBytes(size);
    }

    /** Programs {@code queue} with this ring's size and addresses, as a transport would. */
    public void configure(SplitQueue queue) throws QueueConfigException {
        queue.setSize(size);
        queue.setAddresses(descAddress, availAddress, usedAddress);
    }

    /** Whether the driver acts as if VIRTIO_F_EVENT_IDX was negotiated (for kicks and interrupts). */
    public void setEventIdx(boolean enabled) {
        eventIdx = enabled;
    }

    public int size() {
        return size;
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

    public GuestMemory memory() {
        return memory;
    }

    public int freeDescriptors() {
        return free.size();
    }

    // ----------------------------------------------------------------------------------------- adding

    /** Adds a chain of direct descriptors and publishes it; returns its head. */
    public int add(Buffer... buffers) {
        int head = prepare(buffers);
        publish(head);
        return head;
    }

    /**
     * Writes a direct chain into free descriptors without publishing it. Returns its head.
     */
    public int prepare(Buffer... buffers) {
        if (buffers.length == 0 || buffers.length > free.size()) {
            throw new IllegalStateException("no room for " + buffers.length + " descriptors (" + free.size() + " free)");
        }
        int[] indices = new int[buffers.length];
        for (int i = 0; i < buffers.length; i++) {
            indices[i] = free.removeFirst();
        }
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            boolean last = i == buffers.length - 1;
            int flags = (b.writable() ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
            writeDescriptor(indices[i], b.address(), b.length(), flags, last ? 0 : indices[i + 1]);
        }
        heldBy[indices[0]] = indices;
        return indices[0];
    }

    /**
     * Adds one INDIRECT descriptor whose table (written at {@code tableAddress}, any alignment) holds
     * {@code buffers}, and publishes it; returns its head.
     */
    public int addIndirect(long tableAddress, Buffer... buffers) {
        writeIndirectTable(tableAddress, buffers);
        int head = free.removeFirst();
        writeDescriptor(head, tableAddress, buffers.length * DESCRIPTOR_SIZE, VIRTQ_DESC_F_INDIRECT, 0);
        heldBy[head] = new int[] {head};
        publish(head);
        return head;
    }

    /** Writes an indirect table of {@code buffers}, linked 0 → 1 → … with NEXT. */
    public void writeIndirectTable(long tableAddress, Buffer... buffers) {
        for (int i = 0; i < buffers.length; i++) {
            Buffer b = buffers[i];
            boolean last = i == buffers.length - 1;
            int flags = (b.writable() ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT);
            writeDescriptorAt(tableAddress + (long) i * DESCRIPTOR_SIZE, b.address(), b.length(), flags,
                    last ? 0 : i + 1);
        }
    }

    /** Puts {@code head} in the next available slot and moves the available index past it (release). */
    public void publish(int head) {
        availRing.set(U16, AVAIL_RING + 2L * (availIdx & (size - 1)), (short) head);
        availIdx = (availIdx + 1) & 0xFFFF;
        U16_ORDERED.setRelease(availRing, (long) AVAIL_IDX, (short) availIdx);
    }

    /**
     * Whether the device wants a kick for what was published since the last call (Linux's
     * virtqueue_kick_prepare): with EVENT_IDX when the index passed avail_event, else unless NO_NOTIFY is set.
     */
    public boolean kickPrepare() {
        VarHandle.fullFence();
        boolean kick;
        if (eventIdx) {
            int availEvent = Short.toUnsignedInt(usedRing.get(U16, VirtioRing.availEventOffset(size)));
            kick = VirtioRing.needEvent(availEvent, availIdx, availAtLastKick);
        } else {
            kick = (usedFlags() & VIRTQ_USED_F_NO_NOTIFY) == 0;
        }
        availAtLastKick = availIdx;
        return kick;
    }

    // ------------------------------------------------------------------------------------------- used

    /** The next used entry the driver has not seen, freeing its descriptors; null if none. */
    public Used pollUsed() {
        int usedIdx = usedIdx();
        if (usedIdx == lastSeenUsed) {
            return null;
        }
        long element = USED_RING + 8L * (lastSeenUsed & (size - 1));
        Used used = new Used(usedRing.get(U32, element), usedRing.get(U32, element + 4));
        lastSeenUsed = (lastSeenUsed + 1) & 0xFFFF;
        if (used.head() >= 0 && used.head() < size && heldBy[used.head()] != null) {
            for (int index : heldBy[used.head()]) {
                free.addLast(index);
            }
            heldBy[used.head()] = null;
        }
        return used;
    }

    /**
     * Whether the driver, as configured now, wants an interrupt for the used index moving from {@code oldUsedIdx}
     * to the current one: with EVENT_IDX when it passed used_event, else unless NO_INTERRUPT is set. Tests
     * compare it with the interrupts the device actually sent.
     */
    public boolean interruptWanted(int oldUsedIdx) {
        int newUsedIdx = usedIdx();
        if (newUsedIdx == oldUsedIdx) {
            return false;
        }
        if (eventIdx) {
            int usedEvent = Short.toUnsignedInt(availRing.get(U16, VirtioRing.usedEventOffset(size)));
            return VirtioRing.needEvent(usedEvent, newUsedIdx, oldUsedIdx);
        }
        int flags = Short.toUnsignedInt(availRing.get(U16, (long) AVAIL_FLAGS));
        return (flags & VIRTQ_AVAIL_F_NO_INTERRUPT) == 0;
    }

    /** The used index the device published (acquire). */
    public int usedIdx() {
        return Short.toUnsignedInt((short) U16_ORDERED.getAcquire(usedRing, (long) USED_IDX));
    }

    public int usedFlags() {
        return Short.toUnsignedInt(usedRing.get(U16, (long) USED_FLAGS));
    }

    /** avail_event, the device's kick threshold under EVENT_IDX. */
    public int availEvent() {
        return Short.toUnsignedInt(usedRing.get(U16, VirtioRing.availEventOffset(size)));
    }

    /** The driver's interrupt threshold under EVENT_IDX. */
    public void setUsedEvent(int usedEvent) {
        availRing.set(U16, VirtioRing.usedEventOffset(size), (short) usedEvent);
    }

    /** Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT. */
    public void setNoInterrupt(boolean suppress) {
        availRing.set(U16, (long) AVAIL_FLAGS, (short) (suppress ? VIRTQ_AVAIL_F_NO_INTERRUPT : 0));
    }

    // ------------------------------------------------------------------------------------ raw access

    /**
     * Makes these (idle) rings look as a resumed guest's do at {@code index}: available and used index both at
     * it, the driver's next expected used entry and used_event there too (e.g. after a migration at that index).
     */
    public void resumeAt(int index) {
        int at = index & 0xFFFF;
        availIdx = at;
        lastSeenUsed = at;
        availAtLastKick = at;
        U16_ORDERED.setRelease(availRing, (long) AVAIL_IDX, (short) at);
        U16_ORDERED.setRelease(usedRing, (long) USED_IDX, (short) at);
        setUsedEvent(at);
    }

    /** The available index the driver has published. */
    public int availIdx() {
        return availIdx;
    }

    /** Overwrites the available index (and the driver's own idea of it). */
    public void setAvailIdx(int index) {
        availIdx = index & 0xFFFF;
        U16_ORDERED.setRelease(availRing, (long) AVAIL_IDX, (short) availIdx);
    }

    /** Overwrites available ring slot {@code slot} (0 .. size-1) with {@code head}, whatever it is. */
    public void setAvailSlot(int slot, int head) {
        availRing.set(U16, AVAIL_RING + 2L * slot, (short) head);
    }

    /** Writes descriptor {@code index} of the main table. */
    public void writeDescriptor(int index, long address, int length, int flags, int next) {
        long at = (long) DESCRIPTOR_SIZE * index;
        descTable.set(U64, at, address);
        descTable.set(U32, at + 8, length);
        descTable.set(U16, at + 12, (short) flags);
        descTable.set(U16, at + 14, (short) next);
    }

    /** Writes a descriptor at any guest address (an indirect table entry). */
    public void writeDescriptorAt(long gpa, long address, int length, int flags, int next) {
        MemorySegment d = segment(gpa, DESCRIPTOR_SIZE);
        d.set(U64, 0, address);
        d.set(U32, 8, length);
        d.set(U16, 12, (short) flags);
        d.set(U16, 14, (short) next);
    }

    /** Copies {@code bytes} into guest memory at {@code gpa}, across adjacent regions if need be. */
    public void write(long gpa, byte[] bytes) {
        int done = 0;
        while (done < bytes.length) {
            MemorySegment piece = pieceAt(gpa + done, bytes.length - done);
            int step = (int) piece.byteSize();
            MemorySegment.copy(bytes, done, piece, ValueLayout.JAVA_BYTE, 0, step);
            done += step;
        }
    }

    /** Copies {@code length} bytes of guest memory at {@code gpa}, across adjacent regions if need be. */
    public byte[] read(long gpa, int length) {
        byte[] out = new byte[length];
        int done = 0;
        while (done < length) {
            MemorySegment piece = pieceAt(gpa + done, length - done);
            int step = (int) piece.byteSize();
            MemorySegment.copy(piece, ValueLayout.JAVA_BYTE, 0, out, done, step);
            done += step;
        }
        return out;
    }

    /** The longest segment of at most {@code length} bytes at {@code gpa} within one region. */
    private MemorySegment pieceAt(long gpa, long length) {
        int index = memory.regionIndex(gpa);
        if (index < 0) {
            throw new IllegalArgumentException("0x%x is not guest memory".formatted(gpa));
        }
        var region = memory.region(index);
        long offset = gpa - region.guestAddress();
        return region.segment().asSlice(offset, Math.min(length, region.size() - offset));
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
        return "DriverQueue[size=" + size + ", availIdx=" + availIdx + ", usedSeen=" + lastSeenUsed + ", free="
                + free.size() + "]" + Arrays.toString(new long[] {descAddress, availAddress, usedAddress});
    }
}
