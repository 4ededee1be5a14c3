package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.device.InflightTracker;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.DescriptorRecorder;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.PackedRing;
import dev.vhostdevice.virtqueue.VirtQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Arrays;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One packed queue's part of the inflight buffer (packed-ring.md §5.4): a 32-byte QueueRegionPacked header then
 * one 32-byte DescStatePacked per descriptor. Each fetched buffer's ring descriptors are copied into entries taken
 * from the free list (the ring slots may carry used descriptors before the buffer completes, so the copies are
 * what a restarted back-end resubmits). The old_* fields are the commit point: a fetch commits old_free_head, a
 * completion commits all three after its used descriptor is published.
 *
 * <p>The region is front-end memory, written by whoever holds the fd: every index read from it is range-checked,
 * and a region that stops making sense while the ring runs is no longer tracked (logged once), never trusted.
 */
final class PackedInflightRegion implements InflightTracker, DescriptorRecorder {
    private static final Logger LOG = LoggerFactory.getLogger(PackedInflightRegion.class);
    static final int HEADER = 32;
    static final int DESC_STATE = 32;
    static final int VERSION = 1;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;

    // Header offsets.
    private static final long VERSION_AT = 8;
    private static final long DESC_NUM_AT = 10;
    private static final long FREE_HEAD_AT = 12;
    private static final long OLD_FREE_HEAD_AT = 14;
    private static final long USED_IDX_AT = 16;
    private static final long OLD_USED_IDX_AT = 18;
    private static final long USED_WRAP_AT = 20;
    private static final long OLD_USED_WRAP_AT = 21;
    // DescStatePacked offsets.
    private static final long INFLIGHT = 0;
    private static final long NEXT = 2;
    private static final long LAST = 4;
    private static final long NUM = 6;
    private static final long COUNTER = 8;
    private static final long ID = 16;
    private static final long FLAGS = 18;
    private static final long LEN = 20;
    private static final long ADDR = 24;

    private final String name;
    private final MemorySegment region;
    private final int descNum;
    private final int ringSize;
    private long counter;
    /** Per device-side head: its first entry, last entry and slot count (Java-side, so completions trust nothing shared). */
    private final int[] entryOfHead;
    private final int[] lastOfHead;
    private final int[] slotsOfHead;
    // The fetch in progress: its first entry and the entry the next descriptor goes to.
    private int fetchHead = -1;
    private int fetchCursor = -1;
    private int fetchLast = -1;
    private int fetchCount;
    // The used position this tracker last recorded (slot, wrap).
    private int usedSlot;
    private boolean usedWrap;
    private boolean broken;
    /** Entries dropped by the last prepare; the first few are logged in full. */
    private int dropped;
    private static final int DROPS_LOGGED_IN_FULL = 8;
    // Resubmission, in counter order.
    private int[] resubmit = new int[0];
    private int resubmitNext;
    private final long[] addresses;
    private final int[] lengths;
    private final int[] flags;

    /** The per-queue stride: header and entries, rounded up to 64 (the region is private to the back-end). */
    static long stride(int queueSize) {
        long bytes = HEADER + (long) DESC_STATE * queueSize;
        return (bytes + 63) & ~63L;
    }

    PackedInflightRegion(String name, MemorySegment region, int descNum, int ringSize) {
        this.name = name;
        this.region = region;
        this.descNum = descNum;
        this.ringSize = Math.min(ringSize, descNum);
        this.entryOfHead = new int[this.ringSize];
        this.lastOfHead = new int[this.ringSize];
        this.slotsOfHead = new int[this.ringSize];
        Arrays.fill(entryOfHead, -1);
        this.addresses = new long[this.ringSize];
        this.lengths = new int[this.ringSize];
        this.flags = new int[this.ringSize];
    }

    /**
     * Reads the region at ring start: initialises a fresh (or unusable) one at {@code basePosition}, or repairs an
     * interrupted completion, rolls back to the committed state and collects the buffers still in flight (in fetch
     * order). Returns the positions to resume at, in the vhost-user encoding: next avail in the low 16 bits, next
     * used in the high 16 (next avail is past every buffer in flight).
     */
    int prepare(int basePosition, MemorySegment ring) {
        int version = Short.toUnsignedInt(region.get(U16, VERSION_AT));
        int recorded = Short.toUnsignedInt(region.get(U16, DESC_NUM_AT));
        if (version != VERSION || recorded != descNum) {
            if (version != 0) {
                LOG.warn("{}: inflight region version {} for {} entries, expected {} for {}: starting it afresh", name,
                        version, recorded, VERSION, descNum);
            }
            return initialise(basePosition);
        }
        int oldUsed = Short.toUnsignedInt(region.get(U16, OLD_USED_IDX_AT));
        int oldWrap = region.get(U8, OLD_USED_WRAP_AT);
        int newUsed = Short.toUnsignedInt(region.get(U16, USED_IDX_AT));
        int newWrap = region.get(U8, USED_WRAP_AT);
        if (oldUsed >= ringSize || (oldWrap & ~1) != 0) {
            LOG.warn("{}: inflight region used position {}/{} does not fit a ring of {}: starting it afresh", name,
                    oldUsed, oldWrap, ringSize);
            return initialise(basePosition);
        }
        if ((newUsed != oldUsed || newWrap != oldWrap) && newUsed < ringSize && (newWrap & ~1) == 0
                && usedFor(ring, oldUsed, oldWrap == 1)) {
            // The completion's used descriptor reached the guest before the old back-end committed it: commit now.
            region.set(U16, OLD_FREE_HEAD_AT, region.get(U16, FREE_HEAD_AT));
            oldUsed = newUsed;
            oldWrap = newWrap;
        }
        if (!matchesRing(ring, oldUsed, oldWrap == 1)) {
            LOG.warn("{}: inflight region used position {}/{} does not match the ring (a new one?): starting it afresh",
                    name, oldUsed, oldWrap);
            return initialise(basePosition);
        }
        int freeHead = Short.toUnsignedInt(region.get(U16, OLD_FREE_HEAD_AT));
        boolean[] onFree = new boolean[descNum];
        for (int e = freeHead, steps = 0; e < descNum && !onFree[e] && steps < descNum; steps++) {
            onFree[e] = true;
            e = Short.toUnsignedInt(region.get(U16, entry(e) + NEXT));
        }
        boolean[] taken = new boolean[descNum];
        int[] heads = new int[ringSize];
        long[] counters = new long[descNum];
        int count = 0;
        int slots = 0;
        long maxCounter = 0;
        dropped = 0;
        for (int e = 0; e < descNum; e++) {
            if (region.get(U8, entry(e) + INFLIGHT) == 0) {
                continue;
            }
            if (onFree[e]) {
                region.set(U8, entry(e) + INFLIGHT, (byte) 0); // a fetch or completion rolled back: not in flight
                continue;
            }
            if (taken[e] || !claimChain(e, onFree, taken, ringSize - slots, count == ringSize)) {
                region.set(U8, entry(e) + INFLIGHT, (byte) 0);
                dropped++;
                continue;
            }
            slots += Short.toUnsignedInt(region.get(U16, entry(e) + NUM));
            long c = region.get(U64, entry(e) + COUNTER);
            counters[e] = c;
            if (Long.compareUnsigned(c, maxCounter) > 0) {
                maxCounter = c;
            }
            heads[count++] = e;
        }
        if (dropped > 0) {
            LOG.warn("{}: {} inflight entr{} that did not hold together dropped", name, dropped,
                    dropped == 1 ? "y" : "ies");
        }
        resubmit = InflightQueueRegion.inCounterOrder(heads, count, counters);
        resubmitNext = 0;
        counter = maxCounter + 1;
        rebuildFreeList(taken);
        usedSlot = oldUsed;
        usedWrap = oldWrap == 1;
        writeUsed(true);
        int availSlot = oldUsed + slots;
        boolean availWrap = usedWrap;
        if (availSlot >= ringSize) {
            availSlot -= ringSize;
            availWrap = !availWrap;
        }
        return PackedRing.position(availSlot, availWrap) | PackedRing.position(usedSlot, usedWrap) << 16;
    }

    /**
     * Whether the ring is the one the region's used position describes: the slot before it was written in that
     * lap (by the driver or as a used descriptor), so its AVAIL bit is the lap's wrap counter. A ring the driver
     * laid out afresh (zeroed) fails this on the first lap.
     */
    private boolean matchesRing(MemorySegment ring, int used, boolean wrap) {
        if (used == 0 && wrap) {
            return true; // nothing used yet
        }
        int previous = used == 0 ? ringSize - 1 : used - 1;
        boolean lap = used == 0 ? !wrap : wrap;
        int f = Short.toUnsignedInt(ring.get(U16, (long) VirtioRing.DESCRIPTOR_SIZE * previous + PackedRing.DESC_FLAGS));
        return ((f & PackedRing.VIRTQ_DESC_F_AVAIL) != 0) == lap;
    }

    /** Whether the ring slot holds a used descriptor of the lap {@code wrap} (AVAIL and USED both equal to it). */
    private static boolean usedFor(MemorySegment ring, int slot, boolean wrap) {
        int f = Short.toUnsignedInt(ring.get(U16, (long) VirtioRing.DESCRIPTOR_SIZE * slot + PackedRing.DESC_FLAGS));
        int both = PackedRing.usedFlags(true);
        return (f & both) == PackedRing.usedFlags(wrap);
    }

    /**
     * Claims the entries of the buffer headed by {@code head} if its list is sound: 1 to {@code room} entries,
     * none on the free list or another buffer's, ending at its recorded last.
     */
    private boolean claimChain(int head, boolean[] onFree, boolean[] taken, int room, boolean full) {
        int num = Short.toUnsignedInt(region.get(U16, entry(head) + NUM));
        int last = Short.toUnsignedInt(region.get(U16, entry(head) + LAST));
        boolean log = dropped < DROPS_LOGGED_IN_FULL;
        if (full || num == 0 || num > room) {
            if (log) {
                LOG.warn("{}: inflight entry {}: {} descriptor(s), {} slot(s) left: dropped", name, head, num, room);
            }
            return false;
        }
        int[] chain = new int[num];
        int e = head;
        for (int i = 0; i < num; i++) {
            if (e >= descNum || onFree[e] || taken[e] || (i > 0 && contains(chain, i, e))) {
                if (log) {
                    LOG.warn("{}: inflight entry {}: descriptor list broken at {}: dropped", name, head, e);
                }
                return false;
            }
            chain[i] = e;
            if (i < num - 1) {
                e = Short.toUnsignedInt(region.get(U16, entry(e) + NEXT));
            }
        }
        if (e != last) {
            if (log) {
                LOG.warn("{}: inflight entry {}: list ends at {}, recorded last {}: dropped", name, head, e, last);
            }
            return false;
        }
        for (int c : chain) {
            taken[c] = true;
        }
        return true;
    }

    private static boolean contains(int[] values, int count, int value) {
        for (int i = 0; i < count; i++) {
            if (values[i] == value) {
                return true;
            }
        }
        return false;
    }

    private int initialise(int basePosition) {
        region.fill((byte) 0);
        region.set(U16, VERSION_AT, (short) VERSION);
        region.set(U16, DESC_NUM_AT, (short) descNum);
        rebuildFreeList(new boolean[descNum]);
        usedSlot = PackedRing.slotOf(basePosition >>> 16);
        usedWrap = PackedRing.wrapOf(basePosition >>> 16);
        writeUsed(true);
        resubmit = new int[0];
        resubmitNext = 0;
        counter = 1;
        return basePosition;
    }

    /** Links every entry not held by a buffer in flight into the free list, lowest first, and commits it. */
    private void rebuildFreeList(boolean[] taken) {
        int first = descNum;
        for (int e = descNum - 1; e >= 0; e--) {
            if (!taken[e]) {
                region.set(U8, entry(e) + INFLIGHT, (byte) 0);
                region.set(U16, entry(e) + NEXT, (short) first);
                first = e;
            }
        }
        region.set(U16, FREE_HEAD_AT, (short) first);
        VarHandle.releaseFence();
        region.set(U16, OLD_FREE_HEAD_AT, (short) first);
    }

    private void writeUsed(boolean commit) {
        region.set(U16, USED_IDX_AT, (short) usedSlot);
        region.set(U8, USED_WRAP_AT, (byte) (usedWrap ? 1 : 0));
        if (commit) {
            VarHandle.releaseFence();
            region.set(U16, OLD_FREE_HEAD_AT, region.get(U16, FREE_HEAD_AT));
            region.set(U16, OLD_USED_IDX_AT, (short) usedSlot);
            region.set(U8, OLD_USED_WRAP_AT, (byte) (usedWrap ? 1 : 0));
        }
    }

    private static long entry(int e) {
        return HEADER + (long) DESC_STATE * e;
    }

    /** Number of buffers collected for resubmission (for the log). */
    int resubmitCount() {
        return resubmit.length;
    }

    /** The first entries of the buffers to resubmit, in the order they will be (tests). */
    java.util.List<Integer> resubmitOrder() {
        return Arrays.stream(resubmit).boxed().toList();
    }

    /**
     * Pops the next buffer left in flight into {@code chain} from its copied descriptors; false when none is left
     * (ones the queue refuses are skipped and their entries freed).
     */
    @Override
    public boolean popResubmit(VirtQueue target, Chain chain) {
        if (!(target instanceof PackedQueue queue)) {
            return false;
        }
        while (resubmitNext < resubmit.length) {
            int head = resubmit[resubmitNext++];
            int num = Short.toUnsignedInt(region.get(U16, entry(head) + NUM));
            int id = Short.toUnsignedInt(region.get(U16, entry(head) + ID));
            int e = head;
            int last = head;
            boolean sound = num <= ringSize; // else rewritten by the front-end since prepare
            for (int i = 0; sound && i < num; i++) {
                if (e >= descNum) {
                    sound = false;
                    break;
                }
                addresses[i] = region.get(U64, entry(e) + ADDR);
                lengths[i] = region.get(U32, entry(e) + LEN);
                flags[i] = Short.toUnsignedInt(region.get(U16, entry(e) + FLAGS));
                last = e;
                e = Short.toUnsignedInt(region.get(U16, entry(e) + NEXT));
            }
            if (sound && queue.popRecorded(chain, id, addresses, lengths, flags, num)) {
                int deviceHead = chain.head();
                entryOfHead[deviceHead] = head;
                lastOfHead[deviceHead] = last;
                slotsOfHead[deviceHead] = num;
                return true;
            }
            // Not in flight any more: the next back-end does not try it again (its entries return at the next prepare).
            region.set(U8, entry(head) + INFLIGHT, (byte) 0);
            LOG.warn("{}: inflight entry {} (buffer id {}, {} descriptors) not resubmitted", name, head, id, num);
        }
        return false;
    }

    @Override
    public int nextResubmit() {
        return -1; // packed buffers are resubmitted by popResubmit, from their copies
    }

    // ------------------------------------------------------------------------------------------- tracking

    @Override
    public void descriptor(int index, long address, int length, int id, int descFlags) {
        if (broken) {
            return;
        }
        if (index == 0) {
            fetchHead = Short.toUnsignedInt(region.get(U16, FREE_HEAD_AT));
            fetchCursor = fetchHead;
            fetchCount = 0;
        }
        int e = fetchCursor;
        if (e >= descNum || fetchCount >= ringSize) {
            fail("free list runs out at entry " + e);
            return;
        }
        long at = entry(e);
        region.set(U64, at + ADDR, address);
        region.set(U32, at + LEN, length);
        region.set(U16, at + ID, (short) id);
        region.set(U16, at + FLAGS, (short) descFlags);
        fetchCount++;
        fetchLast = e;
        fetchCursor = Short.toUnsignedInt(region.get(U16, at + NEXT));
    }

    @Override
    public void popped(int head) {
        if (broken || head >= ringSize) {
            return;
        }
        if (entryOfHead[head] >= 0) {
            return; // a resubmitted buffer: its entries were recorded by the previous back-end
        }
        if (fetchCount == 0 || fetchHead >= descNum) {
            fail("a pop recorded no descriptors");
            return;
        }
        long at = entry(fetchHead);
        region.set(U16, at + NUM, (short) fetchCount);
        region.set(U16, at + LAST, (short) fetchLast);
        region.set(U64, at + COUNTER, counter++);
        region.set(U8, at + INFLIGHT, (byte) 1);
        region.set(U16, FREE_HEAD_AT, (short) fetchCursor);
        VarHandle.releaseFence();
        region.set(U16, OLD_FREE_HEAD_AT, (short) fetchCursor);
        entryOfHead[head] = fetchHead;
        lastOfHead[head] = fetchLast;
        slotsOfHead[head] = fetchCount;
        fetchCount = 0;
    }

    /** Before the used descriptor: the buffer's entries go back to the free list, used advances (uncommitted). */
    @Override
    public void completing(int head) {
        if (broken || head < 0 || head >= ringSize || entryOfHead[head] < 0) {
            return;
        }
        int e = entryOfHead[head];
        region.set(U16, entry(lastOfHead[head]) + NEXT, region.get(U16, FREE_HEAD_AT));
        region.set(U16, FREE_HEAD_AT, (short) e);
        usedSlot += slotsOfHead[head];
        if (usedSlot >= ringSize) {
            usedSlot -= ringSize;
            usedWrap = !usedWrap;
        }
        writeUsed(false);
    }

    /** After the used descriptor was published: the buffer is no longer in flight, and everything commits. */
    @Override
    public void completed(int head, int usedIndex) {
        if (broken || head < 0 || head >= ringSize || entryOfHead[head] < 0) {
            return;
        }
        region.set(U8, entry(entryOfHead[head]) + INFLIGHT, (byte) 0);
        entryOfHead[head] = -1;
        usedSlot = PackedRing.slotOf(usedIndex); // the queue's own cursor, which completing() predicted
        usedWrap = PackedRing.wrapOf(usedIndex);
        writeUsed(true);
    }

    private void fail(String why) {
        broken = true;
        LOG.error("{}: inflight region no longer consistent ({}); this ring's requests are not tracked any more", name,
                why);
    }

    @Override
    public boolean publishesEachCompletion() {
        return true;
    }
}
