package dev.vhostdevice.virtqueue.fuzz;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.PackedRing;
import dev.vhostdevice.virtqueue.QueueConfigException;
import dev.vhostdevice.virtqueue.QueueState;
import dev.vhostdevice.virtqueue.fuzz.PackedReferenceModel.Outcome;
import dev.vhostdevice.virtqueue.fuzz.PackedReferenceModel.Piece;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Used;
import dev.vhostdevice.virtqueue.testing.PackedDriverQueue;
import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs one fuzz input against a real {@link PackedQueue} over real guest memory and, in lock step, against
 * {@link PackedReferenceModel}, with the invariants of the split harness carried over to packed rings:
 * <ol>
 *   <li>no exception escapes (the device side never misuses the API, so even IllegalStateException is a
 *       finding);</li>
 *   <li>agreement with the model on every pop: empty, queue fault, or chain (id, ring slots, chain fault or
 *       the exact pieces);</li>
 *   <li>memory confinement: every byte of guest memory is compared around each device operation; a pop writes
 *       nothing, a completion only the used slot's len/id/flags and the bytes written into the chain's writable
 *       pieces, a notification decision only the batch's first flags, enable/disable only the device area;
 *       a used descriptor never changes a slot's address field;</li>
 *   <li>termination: descriptors per chain within the ring size plus the indirect cap;</li>
 *   <li>after a queue fault nothing pops;</li>
 *   <li>round trip: when the driver never corrupted the ring, every id it made available comes back exactly
 *       once, with the length the device wrote, and both sides end at the same positions.</li>
 * </ol>
 *
 * <p>Input format (total: missing bytes read as 0): size selector, config bits (EVENT_IDX, INDIRECT_DESC, start
 * wrap, id only in the last descriptor), start slot (u16), indirect cap (0 = default); then operations of one
 * opcode byte each and their operands (see {@link Op}). {@link Builder} writes inputs for the seed corpus.
 */
final class PackedWalkerHarness {
    static final long RING = 0x1000;
    /** Data buffers lie at DATA + (cursor mod DATA_SPAN), each up to 64 KiB long. */
    private static final long DATA_SPAN = 0x20000;

    /** Operations, by opcode modulo their count. */
    enum Op { ADD, ADD_INDIRECT, RAW, POP, COMPLETE, NOTIFY, EVENTS, SAVE_RESTORE }

    private final byte[] data;
    private int at;
    // Guest layout, as small as the ring allows (every operation compares all of guest memory): ring, data, tables.
    private long dataBase;
    private long tables;
    private long memorySize;

    private PackedWalkerHarness(byte[] data) {
        this.data = data;
    }

    private int u8() {
        return at < data.length ? data[at++] & 0xFF : 0;
    }

    private int u16() {
        return u8() | u8() << 8;
    }

    /** Runs the input twice and requires the same trace (determinism). */
    static String runTwice(byte[] input) {
        String first = new PackedWalkerHarness(input).run();
        String second = new PackedWalkerHarness(input).run();
        if (!first.equals(second)) {
            throw new AssertionError("non-deterministic:\n" + first + "\n" + second);
        }
        return first;
    }

    private record Held(Chain chain, int id, int slots) {
    }

    private String run() {
        StringBuilder trace = new StringBuilder();
        int sizeSel = u8();
        int size = sizeSel == 255 ? 32768 : 1 + sizeSel % 48;
        int config = u8();
        boolean eventIdx = (config & 1) != 0;
        boolean indirect = (config & 2) != 0;
        boolean startWrap = (config & 4) == 0;
        boolean idInLastOnly = (config & 8) != 0;
        int startSlot = u16() % size;
        int capByte = u8();
        dataBase = (RING + 16L * size + 0xFFF) & ~0xFFFL;
        tables = dataBase + DATA_SPAN + 0x10000;
        memorySize = tables + 0x2000;
        try (GuestMemory memory = GuestMemory.allocate(0, memorySize)) {
            MemorySegment all = memory.region(0).segment();
            PackedDriverQueue driver = PackedDriverQueue.layout(memory, size, RING);
            driver.setIdInEveryDescriptor(!idInLastOnly);
            driver.setEventIdx(eventIdx);
            int start = PackedRing.position(startSlot, startWrap);
            driver.startAt(start);
            PackedQueue queue = new PackedQueue("fuzz", size);
            driver.configure(queue);
            queue.setEventIdx(eventIdx);
            queue.setIndirectAllowed(indirect);
            if (capByte != 0) {
                queue.setIndirectCap(capByte);
            }
            queue.restore(new QueueState(start, start, eventIdx));
            queue.activate(memory);
            PackedReferenceModel model = new PackedReferenceModel(size, RING, memorySize, indirect, queue.indirectCap(),
                    startSlot, startWrap);
            List<Held> held = new ArrayList<>();
            Map<Integer, Integer> expectedLength = new HashMap<>();
            boolean clean = true;
            long dataCursor = 0;
            long pendingFirst = -1;
            int ops = 0;
            while (at < data.length && ops++ < 4096) {
                Op op = Op.values()[u8() % Op.values().length];
                switch (op) {
                    case ADD -> {
                        int n = 1 + u8() % 4;
                        Buffer[] buffers = new Buffer[n];
                        for (int i = 0; i < n; i++) {
                            buffers[i] = buffer(u8(), u16(), dataCursor);
                            dataCursor = (dataCursor + 256) % DATA_SPAN;
                        }
                        if (driver.freeSlots() >= n && hasFreeId(driver)) {
                            trace.append("add ").append(driver.add(buffers)).append('\n');
                        }
                    }
                    case ADD_INDIRECT -> {
                        int n = u8() % 18;
                        int lie = u8();
                        long table = tables + (u8() % 16) * 0x100L;
                        for (int i = 0; i < n; i++) {
                            Buffer b = buffer(u8(), u16(), dataCursor);
                            dataCursor = (dataCursor + 256) % DATA_SPAN;
                            int extra = (lie & 4) != 0 && i == n - 1 ? PackedReferenceModel.NEXT : 0;
                            extra |= (lie & 8) != 0 && i == 0 ? PackedReferenceModel.INDIRECT : 0;
                            driver.writeDescriptorAt(table + 16L * i, b.address(), b.length(), 0xABCD,
                                    (b.writable() ? PackedReferenceModel.WRITE : 0) | extra);
                        }
                        int length = switch (lie & 3) {
                            case 0 -> 16 * n;
                            case 1 -> 0;
                            case 2 -> 16 * n + 8;
                            default -> 16 * n;
                        };
                        long address = (lie & 3) == 3 ? memorySize - 8 : table;
                        int flags = PackedReferenceModel.INDIRECT | ((lie & 16) != 0 ? PackedReferenceModel.NEXT : 0);
                        if (driver.freeSlots() >= 1 && hasFreeId(driver)) {
                            // INDIRECT|NEXT runs on into a slot the driver never filled: no longer a driver's ring.
                            clean &= (lie & 16) == 0;
                            int id = driver.peekFreeId();
                            trace.append("add-indirect ").append(driver.addRaw(id, address, length, flags)).append('\n');
                        }
                    }
                    case RAW -> {
                        clean = false;
                        int slot = u16() % size;
                        int flags = u16();
                        int id = u16();
                        Buffer b = buffer(u8(), u16(), dataCursor);
                        driver.writeSlot(slot, b.address(), b.length(), id, flags);
                        trace.append("raw ").append(slot).append(' ').append(Integer.toHexString(flags)).append('\n');
                    }
                    case POP -> {
                        byte[] before = all.toArray(ValueLayout.JAVA_BYTE);
                        Outcome expected = model.pop(before);
                        Chain chain = new Chain();
                        boolean wasBroken = queue.isBroken();
                        boolean got = queue.pop(chain);
                        requireUnchanged(all, before, List.of(), "pop");
                        Outcome actual;
                        if (got) {
                            actual = Outcome.chain(chain.bufferId(), chain.ringSlots(), chain.fault(), pieces(chain));
                        } else if (!wasBroken && queue.isBroken()) {
                            actual = Outcome.broken(queue.fault());
                        } else {
                            actual = Outcome.empty();
                        }
                        if (!actual.equals(expected)) {
                            throw new AssertionError("pop: production " + actual + ", model " + expected);
                        }
                        if (got) {
                            if (chain.descriptorCount() > size + queue.indirectCap()) {
                                throw new AssertionError("walked " + chain.descriptorCount() + " descriptors");
                            }
                            held.add(new Held(chain, chain.bufferId(), chain.ringSlots()));
                        }
                        trace.append("pop ").append(actual).append('\n');
                    }
                    case COMPLETE -> {
                        int pick = u8();
                        int length = u16();
                        if (held.isEmpty() || !queue.isReady()) {
                            break;
                        }
                        Held h = held.remove(pick % held.size());
                        int written = (int) Math.min(length, h.chain().writableBytes());
                        byte[] before = all.toArray(ValueLayout.JAVA_BYTE);
                        long slotAt = RING + 16L * PackedRing.slotOf(queue.nextUsed());
                        for (int i = 0; i < written; i++) {
                            h.chain().writer().writeByte((byte) (i + 1));
                        }
                        queue.addUsed(h.chain());
                        List<long[]> allowed = new ArrayList<>(writtenRanges(h.chain(), written));
                        allowed.add(new long[] {slotAt + 8, 8});
                        requireUnchanged(all, before, allowed, "complete");
                        if (pendingFirst < 0) {
                            pendingFirst = slotAt;
                        }
                        model.completed(h.id(), h.slots());
                        expectedLength.put(h.id(), h.chain().isValid() ? written : 0);
                        trace.append("complete ").append(h.id()).append(' ').append(written).append('\n');
                    }
                    case NOTIFY -> {
                        byte[] before = all.toArray(ValueLayout.JAVA_BYTE);
                        boolean call = queue.needsNotification();
                        requireUnchanged(all, before, pendingFirst < 0 ? List.of()
                                : List.of(new long[] {pendingFirst + 14, 2}), "notify");
                        pendingFirst = -1;
                        trace.append("notify ").append(call).append('\n');
                        if (clean) {
                            drainDriver(driver, expectedLength);
                        }
                    }
                    case EVENTS -> {
                        boolean enable = (u8() & 1) != 0;
                        byte[] before = all.toArray(ValueLayout.JAVA_BYTE);
                        if (enable) {
                            trace.append("enable ").append(queue.enableNotification()).append('\n');
                        } else {
                            queue.disableNotification();
                        }
                        requireUnchanged(all, before, List.of(new long[] {driver.deviceAreaAddress(), 4}), "events");
                    }
                    case SAVE_RESTORE -> {
                        if (!held.isEmpty()) {
                            break;
                        }
                        queue.stop();
                        pendingFirst = -1;
                        QueueState state = queue.state();
                        queue.restore(state);
                        queue.activate(memory);
                        trace.append("saved ").append(Integer.toHexString(state.nextAvail())).append('/')
                                .append(Integer.toHexString(state.nextUsed())).append('\n');
                    }
                }
                if (queue.isBroken() && queue.pop(new Chain())) {
                    throw new AssertionError("a broken queue popped");
                }
            }
            if (clean && !queue.isBroken()) {
                roundTrip(queue, driver, held, expectedLength);
            }
        } catch (QueueConfigException e) {
            throw new AssertionError("configuration refused: " + e.getMessage(), e);
        }
        return trace.toString();
    }

    /** Completes what is held, publishes, and checks the driver got every id back once with its length. */
    private static void roundTrip(PackedQueue queue, PackedDriverQueue driver, List<Held> held,
                                  Map<Integer, Integer> expectedLength) {
        for (Held h : held) {
            queue.addUsed(h.chain());
            expectedLength.put(h.id(), 0);
        }
        held.clear();
        queue.needsNotification();
        drainDriver(driver, expectedLength);
        if (!expectedLength.isEmpty()) {
            throw new AssertionError("ids never returned to the driver: " + expectedLength.keySet());
        }
        if (driver.usedPosition() != queue.nextUsed() || queue.inFlightCount() != 0) {
            throw new AssertionError("positions differ: driver used " + Integer.toHexString(driver.usedPosition())
                    + ", device " + Integer.toHexString(queue.nextUsed()));
        }
    }

    /** The driver takes every published used descriptor: each must be a completed id, with its length, once. */
    private static void drainDriver(PackedDriverQueue driver, Map<Integer, Integer> expectedLength) {
        Used used;
        while ((used = driver.pollUsed()) != null) {
            Integer want = expectedLength.remove(used.head());
            if (want == null || want != used.length()) {
                throw new AssertionError("id " + used.head() + " returned with " + used.length() + ", expected " + want);
            }
        }
    }

    private static boolean hasFreeId(PackedDriverQueue driver) {
        return driver.peekFreeId() >= 0;
    }

    /**
     * A buffer from a kind byte: bit 0 writable, bits 1-2 an address class (normal, straddling the end of memory,
     * beyond it, wrapping 2^64), bit 7 a length near 4 GiB.
     */
    private Buffer buffer(int kind, int length, long cursor) {
        boolean writable = (kind & 1) != 0;
        long address = switch ((kind >> 1) & 3) {
            case 0 -> dataBase + cursor;
            case 1 -> memorySize - length / 2 - 1;
            case 2 -> 2 * memorySize;
            default -> -8L;
        };
        int len = (kind & 0x80) != 0 ? -1 - (length & 0xFF) : length; // near 4 GiB for the total-length rule
        return new Buffer(address, len, writable);
    }

    private static List<Piece> pieces(Chain chain) {
        List<Piece> out = new ArrayList<>();
        for (int p = 0; p < chain.pieceCount(); p++) {
            out.add(new Piece(chain.pieceAddress(p), chain.pieceLength(p), chain.isPieceWritable(p)));
        }
        return out;
    }

    private static List<long[]> writtenRanges(Chain chain, long written) {
        List<long[]> out = new ArrayList<>();
        long left = written;
        for (int p = chain.firstWritablePiece(); p < chain.pieceCount() && left > 0; p++) {
            long step = Math.min(left, chain.pieceLength(p));
            out.add(new long[] {chain.pieceAddress(p), step});
            left -= step;
        }
        return out;
    }

    private static void requireUnchanged(MemorySegment all, byte[] before, List<long[]> allowed, String what) {
        MemorySegment old = MemorySegment.ofArray(before);
        long from = 0;
        long size = all.byteSize();
        while (from < size) {
            // mismatch() compares natively: the fuzzer's instrumentation stays out of a megabyte loop.
            long offset = all.asSlice(from).mismatch(old.asSlice(from));
            if (offset < 0) {
                return;
            }
            long address = from + offset;
            if (!inside(address, allowed)) {
                throw new AssertionError(what + " wrote guest byte 0x" + Long.toHexString(address) + " outside "
                        + "what it may touch");
            }
            from = address + 1;
        }
    }

    private static boolean inside(long address, List<long[]> ranges) {
        for (long[] r : ranges) {
            if (address >= r[0] && address < r[0] + r[1]) {
                return true;
            }
        }
        return false;
    }

    /** Writes inputs for the seed corpus. */
    static final class Builder {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        /** A ring of {@code size} (1-48, or 32768), config bits, start slot, indirect cap (0 = default). */
        Builder(int size, int config, int startSlot, int cap) {
            u8(size == 32768 ? 255 : size - 1);
            u8(config);
            u16(startSlot);
            u8(cap);
        }

        Builder u8(int v) {
            out.write(v);
            return this;
        }

        Builder u16(int v) {
            return u8(v & 0xFF).u8(v >>> 8 & 0xFF);
        }

        Builder op(Op op) {
            return u8(op.ordinal());
        }

        /** ADD of buffers given as (kind, length) pairs. */
        Builder add(int... kindLength) {
            op(Op.ADD).u8(kindLength.length / 2 - 1);
            for (int i = 0; i < kindLength.length; i += 2) {
                u8(kindLength[i]).u16(kindLength[i + 1]);
            }
            return this;
        }

        Builder addIndirect(int lie, int table, int... kindLength) {
            op(Op.ADD_INDIRECT).u8(kindLength.length / 2).u8(lie).u8(table);
            for (int i = 0; i < kindLength.length; i += 2) {
                u8(kindLength[i]).u16(kindLength[i + 1]);
            }
            return this;
        }

        Builder raw(int slot, int flags, int id, int kind, int length) {
            return op(Op.RAW).u16(slot).u16(flags).u16(id).u8(kind).u16(length);
        }

        Builder pop() {
            return op(Op.POP);
        }

        Builder complete(int pick, int length) {
            return op(Op.COMPLETE).u8(pick).u16(length);
        }

        Builder notifyDecision() {
            return op(Op.NOTIFY);
        }

        Builder events(boolean enable) {
            return op(Op.EVENTS).u8(enable ? 1 : 0);
        }

        Builder saveRestore() {
            return op(Op.SAVE_RESTORE);
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
