package dev.vhostdevice.virtqueue.fuzz;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.ChainAccessException;
import dev.vhostdevice.virtqueue.ChainFault;
import dev.vhostdevice.virtqueue.QueueConfigException;
import dev.vhostdevice.virtqueue.QueueFault;
import dev.vhostdevice.virtqueue.QueueState;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Config;
import dev.vhostdevice.virtqueue.fuzz.FuzzInput.Op;
import dev.vhostdevice.virtqueue.fuzz.ReferenceWalker.Piece;
import dev.vhostdevice.virtqueue.fuzz.ReferenceWalker.Walk;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.GuestRegion;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.math.BigInteger;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * Runs one {@link FuzzInput} against a real {@link SplitQueue} over real guest memory and, in lock step, against a
 * naive model of the queue ({@link ReferenceWalker} for the walk). After every device operation it checks the
 * invariants of virtqueue.md §5.2:
 * <ol>
 *   <li>no exception but the typed ones the model predicts ({@link QueueConfigException} from configuration,
 *       {@link ChainAccessException} from a reader/writer asked for more than the chain has); chain and queue
 *       faults are outcomes, compared with the model;</li>
 *   <li>memory confinement: every byte of guest memory is compared before and after the operation; only the bytes
 *       the model says the operation writes (the used element and idx, used flags, avail_event, the bytes a
 *       writer wrote into the chain's writable buffers) may change, and to exactly the predicted values;</li>
 *   <li>termination: descriptors visited per chain within queue size plus indirect cap, and equal to the model;</li>
 *   <li>agreement with the model: pop results (head, fault, descriptor count, the exact piece list), queue fault,
 *       indices, in-flight count, bytes read, notification decisions;</li>
 *   <li>used ring consistency: each addUsed advances used idx by one, len within the writable capacity;</li>
 *   <li>after a queue fault, nothing pops until reset.</li>
 * </ol>
 * The device side never misuses the API (it only completes heads it popped, and only calls ring operations on a
 * ready queue), so an {@link IllegalStateException} is always a finding. Returns a trace of outcomes; running the
 * same input twice must give the same trace (determinism).
 */
final class WalkerHarness {
    private static final ValueLayout.OfByte B = ValueLayout.JAVA_BYTE;
    /**
     * Whether activate() refuses a queue whose ring addresses were not set since the last reset (virtqueue.md §2.3,
     * invariant 7). SplitQueue does not yet (see KnownIssuesTest); set to true when it does.
     */
    static final boolean ACTIVATE_NEEDS_ADDRESSES_AFTER_RESET = true;

    private final FuzzInput input;
    private final Arena arena = Arena.ofConfined();
    private final GuestRegion[] backing;
    private final long base;
    private List<GuestRegion> current;
    private GuestMemory currentMemory;
    private final SplitQueue queue;
    private final Model m = new Model();
    private final List<Flight> flights = new ArrayList<>();
    private final Deque<Chain> pool = new ArrayDeque<>();
    private final List<String> trace = new ArrayList<>();

    /** The model of the queue: configuration and run state, as the class docs of SplitQueue describe them. */
    private static final class Model {
        int maxSize;
        boolean ready;
        /** Started with its rings outside the current memory (after a remap). */
        boolean parked;
        QueueFault fault;
        int size;
        long desc;
        long avail;
        long used;
        boolean eventIdx;
        boolean indirect;
        int cap;
        boolean addressesSet;
        int nextAvail;
        int nextUsed;
        int shadow;
        int added;
        final Set<Integer> inFlight = new HashSet<>();
        List<GuestRegion> regions = List.of();

        void reset() {
            ready = false;
            parked = false;
            fault = null;
            size = maxSize;
            desc = avail = used = 0;
            addressesSet = false;
            eventIdx = false;
            indirect = false;
            cap = Math.max(maxSize, 1024);
            nextAvail = nextUsed = shadow = added = 0;
            inFlight.clear();
        }
    }

    /** A popped chain the device holds, with the model's view of it. */
    private static final class Flight {
        final Chain chain;
        final int head;
        final Walk walk;
        final List<Piece> readable = new ArrayList<>();
        final List<Piece> writable = new ArrayList<>();
        long readPos;
        long writePos;
        long highWater;
        boolean stale;

        Flight(Chain chain, int head, Walk walk) {
            this.chain = chain;
            this.head = head;
            this.walk = walk;
            for (Piece p : walk.pieces()) {
                (p.writable() ? writable : readable).add(p);
            }
        }

        long readableBytes() {
            return readable.stream().mapToLong(Piece::length).sum();
        }

        long writableBytes() {
            return writable.stream().mapToLong(Piece::length).sum();
        }
    }

    /** The outcome of one run. */
    record Result(List<String> trace) {
        boolean contains(String fragment) {
            return trace.stream().anyMatch(t -> t.contains(fragment));
        }
    }

    private WalkerHarness(FuzzInput input) {
        this.input = input;
        long[] starts = input.layout().starts();
        this.base = input.layout().baseAddress();
        backing = new GuestRegion[starts.length];
        for (int i = 0; i < starts.length; i++) {
            long size = input.layout().regions().get(i).sizePages() * FuzzInput.PAGE;
            backing[i] = new GuestRegion(starts[i], size, arena.allocate(size, FuzzInput.PAGE));
        }
        current = List.of(backing);
        currentMemory = GuestMemory.of(current);
        m.maxSize = input.config().maxSize();
        queue = new SplitQueue("fuzz", m.maxSize);
        m.reset();
    }

    /** Runs {@code input} once; throws AssertionError on any broken invariant. */
    static Result run(FuzzInput input) {
        WalkerHarness h = new WalkerHarness(input);
        try {
            h.execute();
            return new Result(List.copyOf(h.trace));
        } finally {
            h.arena.close();
        }
    }

    /** Runs {@code input} twice and checks both runs agree (invariant 9). */
    static Result runTwice(FuzzInput input) {
        Result first = run(input);
        Result second = run(input);
        if (!first.equals(second)) {
            throw new AssertionError("non-deterministic: " + first.trace() + " vs " + second.trace());
        }
        return first;
    }

    private void execute() {
        for (FuzzInput.Desc d : input.descriptors()) {
            writeDescriptor(abs(input.config().desc()) + 16L * d.index(), d);
        }
        for (FuzzInput.Raw r : input.raws()) {
            driverWrite(abs(r.addr()), r.bytes());
        }
        step(-1, "configure", () -> {
            configure(input.config());
            activate();
        });
        List<Op> ops = input.ops();
        for (int i = 0; i < ops.size(); i++) {
            Op op = ops.get(i);
            step(i, op.toString(), () -> apply(op));
        }
    }

    private void step(int index, String what, Runnable action) {
        try {
            action.run();
        } catch (AssertionError e) {
            throw new AssertionError("op #" + index + " " + what + ": " + e.getMessage() + "\n trace: " + trace, e);
        } catch (RuntimeException | Error e) {
            throw new AssertionError("op #" + index + " " + what + ": unexpected " + e + "\n trace: " + trace, e);
        }
        checkState(index, what);
    }

    private long abs(long relative) {
        return base + relative;
    }

    // ------------------------------------------------------------------------------------------ configuration

    private void configure(Config c) {
        boolean sizeOk = c.size() > 0 && c.size() <= m.maxSize && Integer.bitCount(c.size()) == 1;
        try {
            queue.setSize(c.size());
            check(sizeOk, "setSize(" + c.size() + ") accepted");
            m.size = c.size();
        } catch (QueueConfigException e) {
            check(!sizeOk, "setSize(" + c.size() + ") refused: " + e.getMessage());
        }
        long d = abs(c.desc());
        long a = abs(c.avail());
        long u = abs(c.used());
        boolean aligned = (d & 15) == 0 && (a & 1) == 0 && (u & 3) == 0;
        try {
            queue.setAddresses(d, a, u);
            check(aligned, "misaligned addresses accepted");
            m.desc = d;
            m.avail = a;
            m.used = u;
            m.addressesSet = true;
        } catch (QueueConfigException e) {
            check(!aligned, "aligned addresses refused: " + e.getMessage());
        }
        queue.setEventIdx(c.eventIdx());
        m.eventIdx = c.eventIdx();
        queue.setIndirectAllowed(c.indirect());
        m.indirect = c.indirect();
        if (c.indirectCap() != 0) {
            queue.setIndirectCap(c.indirectCap());
            m.cap = c.indirectCap();
        }
        trace.add("config size=" + m.size);
    }

    private void activate() {
        int n = m.size;
        boolean fits = ringFits(m.desc, 16L * n) && ringFits(m.avail, 6L + 2L * n) && ringFits(m.used, 6L + 8L * n)
                && (m.addressesSet || !ACTIVATE_NEEDS_ADDRESSES_AFTER_RESET);
        byte[][] before = snapshot();
        try {
            queue.activate(currentMemory);
            check(fits, "activate accepted rings outside guest memory");
            m.ready = true;
            m.parked = false;
            m.shadow = m.nextAvail;
            m.regions = current;
            trace.add("activated");
        } catch (QueueConfigException e) {
            check(!fits, "activate refused rings in guest memory: " + e.getMessage());
            trace.add("activate refused");
        }
        expectChanges(before, Map.of());
    }

    private boolean ringFits(long gpa, long length) {
        return ReferenceWalker.inOneRegion(current, ReferenceWalker.unsigned(gpa), BigInteger.valueOf(length));
    }

    // ------------------------------------------------------------------------------------------- operations

    private void apply(Op op) {
        switch (op) {
            case FuzzInput.Publish p -> {
                Integer idx = read16(current, m.avail + 2);
                if (idx != null) {
                    write16(m.avail + 4 + 2L * (idx & (m.size - 1)), p.head());
                    write16(m.avail + 2, idx + 1);
                }
            }
            case FuzzInput.SetAvailIdx s -> write16(m.avail + 2, s.idx());
            case FuzzInput.WriteDesc w -> writeDescriptor(m.desc + 16L * w.desc().index(), w.desc());
            case FuzzInput.WriteRaw w -> driverWrite(abs(w.addr()), w.bytes());
            case FuzzInput.SetUsedEvent s -> write16(m.avail + 4 + 2L * m.size, s.value());
            case FuzzInput.SetAvailFlags s -> write16(m.avail, s.value());
            case FuzzInput.Pop p -> pop(-1);
            case FuzzInput.PopHead p -> pop(p.head());
            case FuzzInput.Read r -> read(r);
            case FuzzInput.Write w -> write(w);
            case FuzzInput.Seek s -> seek(s);
            case FuzzInput.AddUsed a -> addUsed(a);
            case FuzzInput.NeedsNotification x -> needsNotification();
            case FuzzInput.EnableNotification x -> enableNotification();
            case FuzzInput.DisableNotification x -> disableNotification();
            case FuzzInput.Reset r -> reset(r);
            case FuzzInput.StateRestore s -> stateRestore(s);
            case FuzzInput.Remap r -> remap(r);
            case FuzzInput.HasAvailable h -> {
                byte[][] before = snapshot();
                boolean expected = m.ready && m.fault == null && !Objects.equals(read16(m.regions, m.avail + 2), m.nextAvail);
                boolean got = queue.hasAvailable();
                check(got == expected, "hasAvailable " + got + ", model " + expected);
                expectChanges(before, Map.of());
                trace.add("hasAvailable " + got);
            }
        }
    }

    private void pop(int popHead) {
        byte[][] before = snapshot();
        Chain chain = pool.isEmpty() ? new Chain() : pool.pop();
        // Model first, from the memory as it is before the call.
        int head = -1;
        Walk walk = null;
        if (popHead >= 0) {
            if (m.ready && m.fault == null && popHead < m.size && !m.inFlight.contains(popHead)) {
                head = popHead;
            }
        } else if (m.ready && m.fault == null) {
            boolean proceed = true;
            if (m.nextAvail == m.shadow) {
                int idx = read16(m.regions, m.avail + 2);
                int outstanding = (idx - m.nextAvail) & 0xFFFF;
                if (outstanding > m.size) {
                    m.fault = QueueFault.AVAIL_INDEX_RUNAWAY;
                    proceed = false;
                } else if (outstanding == 0) {
                    proceed = false;
                } else {
                    m.shadow = idx;
                }
            }
            if (proceed) {
                int slotHead = read16(m.regions, m.avail + 4 + 2L * (m.nextAvail % m.size));
                if (slotHead >= m.size) {
                    m.fault = QueueFault.HEAD_OUT_OF_RANGE;
                } else if (m.inFlight.contains(slotHead)) {
                    m.fault = QueueFault.HEAD_IN_FLIGHT;
                } else {
                    head = slotHead;
                    m.nextAvail = (m.nextAvail + 1) & 0xFFFF;
                }
            }
        }
        if (head >= 0) {
            m.inFlight.add(head);
            walk = ReferenceWalker.walk(m.regions, m.desc, m.size, head, m.indirect, m.cap);
        }

        boolean got = popHead >= 0 ? queue.popHead(popHead, chain) : queue.pop(chain);
        check(got == (head >= 0), "pop returned " + got + ", model " + (head >= 0) + " (model fault " + m.fault + ")");
        expectChanges(before, Map.of());
        if (!got) {
            pool.push(chain);
            trace.add("pop none" + (m.fault != null ? " broken " + m.fault : ""));
            return;
        }
        check(chain.head() == head, "head " + chain.head() + ", model " + head);
        check(chain.fault() == walk.fault(), "chain fault " + chain.fault() + ", model " + walk.fault());
        check(chain.descriptorCount() == walk.descriptors(),
                "descriptors " + chain.descriptorCount() + ", model " + walk.descriptors());
        check(chain.descriptorCount() <= m.size + m.cap, "walk not bounded: " + chain.descriptorCount());
        List<Piece> pieces = new ArrayList<>();
        for (int p = 0; p < chain.pieceCount(); p++) {
            pieces.add(new Piece(chain.pieceAddress(p), chain.pieceLength(p), chain.isPieceWritable(p)));
            check(chain.pieceSegment(p) != null, "piece without segment");
        }
        check(pieces.equals(walk.pieces()), "pieces " + pieces + ", model " + walk.pieces());
        check(chain.readableBytes() == walk.bytes(false) && chain.writableBytes() == walk.bytes(true),
                "byte counts " + chain.readableBytes() + "/" + chain.writableBytes());
        check(chain.reader().position() == 0 && chain.writer().position() == 0 && chain.writer().bytesWritten() == 0,
                "cursors not rewound");
        // Every piece's segment must be the guest memory at that address.
        for (int p = 0; p < chain.pieceCount(); p++) {
            MemorySegment s = chain.pieceSegment(p);
            long off = chain.pieceOffset(p);
            check(off >= 0 && off + chain.pieceLength(p) <= s.byteSize(), "piece outside its segment");
        }
        Flight f = new Flight(chain, head, walk);
        flights.add(f);
        trace.add("pop head=" + head + " " + (walk.fault() != null ? walk.fault() : "ok " + walk.pieces().size()
                + " pieces r=" + f.readableBytes() + " w=" + f.writableBytes()));
    }

    private Flight flight(int selector) {
        if (flights.isEmpty()) {
            return null;
        }
        Flight f = flights.get(selector % flights.size());
        return f.stale ? null : f;
    }

    private void read(FuzzInput.Read r) {
        Flight f = flight(r.chain());
        if (f == null) {
            return;
        }
        byte[][] before = snapshot();
        long count = switch (r.kind()) {
            case 0 -> r.n();
            case 1 -> 2;
            case 2 -> 4;
            default -> 8;
        };
        boolean fits = count <= f.readableBytes() - f.readPos;
        byte[] expected = fits ? streamBytes(f.readable, f.readPos, (int) count) : null;
        byte[] got = new byte[(int) count];
        try {
            switch (r.kind()) {
                case 0 -> f.chain.reader().read(got, 0, r.n());
                case 1 -> le(got, f.chain.reader().readShort(), 2);
                case 2 -> le(got, f.chain.reader().readInt(), 4);
                default -> le(got, f.chain.reader().readLong(), 8);
            }
            check(fits, "read of " + count + " past the end accepted");
            check(Arrays.equals(got, expected), "read bytes differ from the model");
            f.readPos += count;
        } catch (ChainAccessException e) {
            check(!fits, "read of " + count + " refused: " + e.getMessage());
        }
        check(f.chain.reader().position() == f.readPos, "reader position " + f.chain.reader().position());
        expectChanges(before, Map.of());
        trace.add("read " + count + (fits ? " ok" : " refused"));
    }

    private void write(FuzzInput.Write w) {
        Flight f = flight(w.chain());
        if (f == null) {
            return;
        }
        byte[][] before = snapshot();
        long count = switch (w.kind()) {
            case 1 -> 2;
            case 2 -> 4;
            case 3 -> 8;
            default -> w.n();
        };
        byte[] data = new byte[(int) count];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (w.kind() == 4 ? w.seed() : w.seed() + 31 * i + 1);
        }
        boolean fits = count <= f.writableBytes() - f.writePos;
        Map<Long, Byte> expected = new HashMap<>();
        if (fits && w.kind() != 5) {
            long[] gpas = streamAddresses(f.writable, f.writePos, (int) count);
            for (int i = 0; i < gpas.length; i++) {
                expected.put(gpas[i], data[i]);
            }
        }
        try {
            switch (w.kind()) {
                case 0 -> f.chain.writer().write(data, 0, data.length);
                case 1 -> f.chain.writer().writeShort((int) fromLe(data));
                case 2 -> f.chain.writer().writeInt((int) fromLe(data));
                case 3 -> f.chain.writer().writeLong(fromLe(data));
                case 4 -> f.chain.writer().fill((byte) w.seed(), w.n());
                default -> f.chain.writer().skip(w.n());
            }
            check(fits, "write of " + count + " past the end accepted");
            f.writePos += count;
            f.highWater = Math.max(f.highWater, f.writePos);
        } catch (ChainAccessException e) {
            check(!fits, "write of " + count + " refused: " + e.getMessage());
        }
        check(f.chain.writer().position() == f.writePos, "writer position " + f.chain.writer().position());
        check(f.chain.writer().bytesWritten() == f.highWater, "bytesWritten " + f.chain.writer().bytesWritten());
        expectChanges(before, expected);
        trace.add("write " + count + (fits ? " ok" : " refused"));
    }

    private void seek(FuzzInput.Seek s) {
        Flight f = flight(s.chain());
        if (f == null) {
            return;
        }
        byte[][] before = snapshot();
        long size = s.writer() ? f.writableBytes() : f.readableBytes();
        boolean fits = s.position() <= size;
        try {
            if (s.writer()) {
                f.chain.writer().seek(s.position());
            } else {
                f.chain.reader().seek(s.position());
            }
            check(fits, "seek past the end accepted");
            if (s.writer()) {
                f.writePos = s.position();
                f.highWater = Math.max(f.highWater, f.writePos);
            } else {
                f.readPos = s.position();
            }
        } catch (ChainAccessException e) {
            check(!fits, "seek refused: " + e.getMessage());
        }
        check(f.chain.reader().position() == f.readPos && f.chain.writer().position() == f.writePos,
                "cursor positions");
        expectChanges(before, Map.of());
        trace.add("seek " + (fits ? "ok" : "refused"));
    }

    private void addUsed(FuzzInput.AddUsed a) {
        if (flights.isEmpty() || !m.ready) {
            return; // completing on a stopped queue is a device bug the API rejects; the harness never does it
        }
        int index = a.chain() % flights.size();
        Flight f = flights.get(index);
        byte[][] before = snapshot();
        long length = f.walk.fault() == null ? f.highWater : 0;
        check(length <= f.writableBytes(), "used len over the writable capacity");
        long element = m.used + 4 + 8L * (m.nextUsed & (m.size - 1));
        Map<Long, Byte> expected = new HashMap<>();
        putLe(expected, element, f.head, 4);
        putLe(expected, element + 4, length, 4);
        putLe(expected, m.used + 2, (m.nextUsed + 1) & 0xFFFF, 2);
        queue.addUsed(f.chain);
        m.nextUsed = (m.nextUsed + 1) & 0xFFFF;
        m.inFlight.remove(f.head);
        m.added++;
        expectChanges(before, expected);
        check(read16(m.regions, m.used + 2) == m.nextUsed, "used idx did not advance by one");
        flights.remove(index);
        pool.push(f.chain);
        trace.add("used head=" + f.head + " len=" + length);
    }

    private void needsNotification() {
        if (!m.ready) {
            return;
        }
        byte[][] before = snapshot();
        int added = m.added;
        m.added = 0;
        boolean expected;
        if (added == 0) {
            expected = false;
        } else if (m.eventIdx) {
            int usedEvent = read16(m.regions, m.avail + 4 + 2L * m.size);
            expected = added >= 0x10000
                    || ReferenceWalker.needEvent(usedEvent, m.nextUsed, (m.nextUsed - added) & 0xFFFF);
        } else {
            expected = (read16(m.regions, m.avail) & 1) == 0;
        }
        boolean got = queue.needsNotification();
        check(got == expected, "needsNotification " + got + ", model " + expected);
        expectChanges(before, Map.of());
        trace.add("notify " + got);
    }

    private void enableNotification() {
        if (!m.ready) {
            return;
        }
        byte[][] before = snapshot();
        Map<Long, Byte> expected = new HashMap<>();
        boolean result = false;
        if (m.fault == null) {
            if (m.eventIdx) {
                putLe(expected, m.used + 4 + 8L * m.size, m.nextAvail, 2);
            } else {
                putLe(expected, m.used, 0, 2);
            }
        }
        boolean got = queue.enableNotification();
        if (m.fault == null) {
            // The re-check reads the available index after the store (which may have landed on it).
            result = read16(m.regions, m.avail + 2) != m.nextAvail;
        }
        check(got == result, "enableNotification " + got + ", model " + result);
        expectChanges(before, expected);
        trace.add("enable " + got);
    }

    private void disableNotification() {
        if (!m.ready) {
            return;
        }
        byte[][] before = snapshot();
        Map<Long, Byte> expected = new HashMap<>();
        if (!m.eventIdx) {
            putLe(expected, m.used, 1, 2);
        }
        queue.disableNotification();
        expectChanges(before, expected);
        trace.add("disable");
    }

    private void reset(FuzzInput.Reset r) {
        byte[][] before = snapshot();
        queue.reset();
        m.reset();
        flights.clear();
        expectChanges(before, Map.of());
        trace.add("reset " + r.mode());
        switch (r.mode()) {
            case 1 -> {
                configure(input.config());
                activate();
            }
            case 2 -> activate();
            case 3 -> {
                configure(r.newConfig());
                activate();
            }
            default -> { }
        }
    }

    private void stateRestore(FuzzInput.StateRestore s) {
        byte[][] before = snapshot();
        QueueState state = queue.state();
        check(state.equals(new QueueState(m.nextAvail, m.nextUsed, m.eventIdx)), "state " + state);
        boolean wasReady = m.ready;
        queue.stop();
        m.ready = false;
        m.parked = false;
        QueueState restored = s.given() ? new QueueState(s.nextAvail(), s.nextUsed(), s.eventIdx()) : state;
        try {
            queue.restore(restored);
        } catch (QueueConfigException e) {
            throw new AssertionError("restore on a stopped queue refused", e);
        }
        m.nextAvail = restored.nextAvail();
        m.shadow = m.nextAvail;
        m.nextUsed = restored.nextUsed();
        m.eventIdx = restored.eventIdx();
        m.inFlight.clear();
        m.added = 0;
        flights.clear();
        expectChanges(before, Map.of());
        trace.add("restored " + restored);
        if (wasReady) {
            activate();
        }
    }

    private void remap(FuzzInput.Remap r) {
        List<GuestRegion> next = new ArrayList<>(List.of(backing));
        if (r.mode() > 0) {
            next.remove((r.mode() - 1) % next.size());
        }
        current = List.copyOf(next);
        currentMemory = GuestMemory.of(current);
        byte[][] before = snapshot();
        flights.forEach(f -> f.stale = true); // the device must not touch buffers of the old table
        if (m.ready || m.parked) {
            int n = m.size;
            boolean fits = ringFits(m.desc, 16L * n) && ringFits(m.avail, 6L + 2L * n) && ringFits(m.used, 6L + 8L * n);
            // Rings outside the new table park the queue (position and in-flight heads kept); a table that holds
            // them again resumes it.
            m.ready = fits;
            m.parked = !fits;
            if (fits) {
                m.shadow = m.nextAvail;
                m.regions = current;
            }
        }
        boolean ready = queue.remap(currentMemory);
        check(ready == m.ready, "remap returned " + ready + ", model " + m.ready);
        expectChanges(before, Map.of());
        trace.add("remap " + r.mode() + " ready=" + m.ready + (m.parked ? " parked" : ""));
    }

    private void checkState(int index, String what) {
        try {
            check(queue.isReady() == m.ready, "ready " + queue.isReady() + ", model " + m.ready);
            check(queue.isParked() == m.parked, "parked " + queue.isParked() + ", model " + m.parked);
            check(queue.fault() == m.fault, "fault " + queue.fault() + ", model " + m.fault);
            check(queue.isBroken() == (m.fault != null), "isBroken");
            check(queue.nextAvail() == m.nextAvail, "nextAvail " + queue.nextAvail() + ", model " + m.nextAvail);
            check(queue.nextUsed() == m.nextUsed, "nextUsed " + queue.nextUsed() + ", model " + m.nextUsed);
            check(queue.inFlightCount() == m.inFlight.size(),
                    "inFlight " + queue.inFlightCount() + ", model " + m.inFlight.size());
            check(queue.size() == m.size, "size " + queue.size() + ", model " + m.size);
            check(queue.eventIdx() == m.eventIdx, "eventIdx");
            check(queue.indirectCap() == m.cap, "indirect cap");
        } catch (AssertionError e) {
            throw new AssertionError("after op #" + index + " " + what + ": " + e.getMessage() + "\n trace: " + trace);
        }
    }

    // ------------------------------------------------------------------------------------------ guest memory

    private byte[][] snapshot() {
        byte[][] s = new byte[backing.length][];
        for (int i = 0; i < backing.length; i++) {
            s[i] = backing[i].segment().toArray(B);
        }
        return s;
    }

    /** Every byte of guest memory is as before except {@code expected}, which holds exactly those values. */
    private void expectChanges(byte[][] before, Map<Long, Byte> expected) {
        for (int i = 0; i < backing.length; i++) {
            byte[] after = backing[i].segment().toArray(B);
            int from = 0;
            while (from < after.length) {
                int at = Arrays.mismatch(before[i], from, before[i].length, after, from, after.length);
                if (at < 0) {
                    break;
                }
                long off = from + at;
                long gpa = backing[i].guestAddress() + off;
                Byte want = expected.get(gpa);
                if (want == null) {
                    throw new AssertionError("memory confinement: byte at 0x%x changed 0x%02x -> 0x%02x"
                            .formatted(gpa, before[i][(int) off], after[(int) off]));
                }
                from = (int) off + 1;
            }
        }
        for (Map.Entry<Long, Byte> e : expected.entrySet()) {
            int got = ReferenceWalker.readByte(List.of(backing), ReferenceWalker.unsigned(e.getKey()));
            if (got != (e.getValue() & 0xFF)) {
                throw new AssertionError("byte at 0x%x is 0x%02x, expected 0x%02x"
                        .formatted(e.getKey(), got, e.getValue() & 0xFF));
            }
        }
    }

    private static Integer read16(List<GuestRegion> regions, long gpa) {
        BigInteger v = ReferenceWalker.readLe(regions, ReferenceWalker.unsigned(gpa), 2);
        return v == null ? null : v.intValue();
    }

    private void write16(long gpa, int value) {
        driverWrite(gpa, new byte[] {(byte) value, (byte) (value >>> 8)});
    }

    private void writeDescriptor(long gpa, FuzzInput.Desc d) {
        byte[] b = new byte[16];
        for (int i = 0; i < 8; i++) {
            b[i] = (byte) (abs(d.addr()) >>> (8 * i));
        }
        for (int i = 0; i < 4; i++) {
            b[8 + i] = (byte) (d.len() >>> (8 * i));
        }
        b[12] = (byte) d.flags();
        b[13] = (byte) (d.flags() >>> 8);
        b[14] = (byte) d.next();
        b[15] = (byte) (d.next() >>> 8);
        driverWrite(gpa, b);
    }

    /** The guest writes {@code bytes} at {@code gpa}; bytes outside the current memory table are dropped. */
    private void driverWrite(long gpa, byte[] bytes) {
        for (int i = 0; i < bytes.length; i++) {
            long at = gpa + i;
            for (GuestRegion r : current) {
                if (r.contains(at)) {
                    r.segment().set(B, at - r.guestAddress(), bytes[i]);
                }
            }
        }
    }

    private byte[] streamBytes(List<Piece> pieces, long from, int count) {
        long[] gpas = streamAddresses(pieces, from, count);
        byte[] out = new byte[count];
        for (int i = 0; i < count; i++) {
            int b = ReferenceWalker.readByte(List.of(backing), ReferenceWalker.unsigned(gpas[i]));
            check(b >= 0, "piece byte not in memory");
            out[i] = (byte) b;
        }
        return out;
    }

    /** Guest addresses of bytes [from, from + count) of a direction's byte stream. */
    private static long[] streamAddresses(List<Piece> pieces, long from, int count) {
        long[] out = new long[count];
        int i = 0;
        long skip = from;
        for (Piece p : pieces) {
            if (i == count) {
                break;
            }
            if (skip >= p.length()) {
                skip -= p.length();
                continue;
            }
            for (long o = skip; o < p.length() && i < count; o++) {
                out[i++] = p.address() + o;
            }
            skip = 0;
        }
        if (i != count) {
            throw new AssertionError("model: stream shorter than " + count);
        }
        return out;
    }

    private static void le(byte[] out, long value, int bytes) {
        for (int i = 0; i < bytes; i++) {
            out[i] = (byte) (value >>> (8 * i));
        }
    }

    private static long fromLe(byte[] b) {
        long v = 0;
        for (int i = b.length - 1; i >= 0; i--) {
            v = v << 8 | (b[i] & 0xFF);
        }
        return v;
    }

    private static void putLe(Map<Long, Byte> map, long gpa, long value, int bytes) {
        for (int i = 0; i < bytes; i++) {
            map.put(gpa + i, (byte) (value >>> (8 * i)));
        }
    }

    private static void check(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }
}
