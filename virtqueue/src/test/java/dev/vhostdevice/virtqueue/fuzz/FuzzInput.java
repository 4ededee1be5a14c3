package dev.vhostdevice.virtqueue.fuzz;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One fuzz scenario for the split-queue walker: guest memory layout, queue configuration, initial descriptor
 * table entries and raw memory contents, then a sequence of driver (guest) and device operations.
 *
 * <p>The byte format is project-owned, little-endian and invertible (modelled on rust-vmm's bincode inputs, so
 * unit tests can build scenarios and serialize them as seeds): {@code decode(encode(x)).equals(x)} for every
 * input within the caps below. Decoding is total: any byte string decodes (missing bytes read as 0, counts are
 * capped), so one input runs in milliseconds.
 *
 * <pre>
 * u8  layout       bits 0-1: regions - 1 (mod 3); bits 2-3: base (0: 0, 1: 4 GiB, 2: last region ends at 2^64,
 *                  3: 0x10000)
 * per region: u8 holePages (before it; ignored for the first), u8 sizePages (1 + v mod 16, 4 KiB pages)
 * u8  maxSizeLog   max queue size = 1 &lt;&lt; (v mod 9)
 * u16 size         raw, handed to setSize (may be invalid: 0, 3, 65535 ...)
 * u8  features     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC
 * u16 indirectCap  0: the default, else setIndirectCap(v)
 * u64 desc, avail, used   ring addresses, relative to the memory base (wrapping)
 * u16 n, n x Desc  (n mod 65)  u16 index, u64 addr (relative), u32 len, u16 flags, u16 next: main-table entries
 * u16 n, n x Raw   (n mod 33)  u64 addr (relative), u16 length (mod 4097), bytes
 * u16 n, n x Op    (n mod 65)  u8 tag, then the op's fields (see {@link Op})
 * </pre>
 * Every guest address in the input is relative to the memory base, so one scenario can be moved to the top of
 * the 64-bit space by changing the layout byte.
 */
record FuzzInput(Layout layout, Config config, List<Desc> descriptors, List<Raw> raws, List<Op> ops) {
    static final int MAX_DESCRIPTORS = 64;
    static final int MAX_RAWS = 32;
    static final int MAX_RAW_BYTES = 4096;
    static final int MAX_OPS = 64;
    static final int MAX_REGIONS = 3;
    static final int MAX_REGION_PAGES = 16;
    static final int MAX_SIZE_LOG = 8;
    static final long PAGE = 4096;

    FuzzInput {
        descriptors = List.copyOf(descriptors);
        raws = List.copyOf(raws);
        ops = List.copyOf(ops);
    }

    /** Where guest memory lies. */
    enum Base {
        ZERO, FOUR_GIB, TOP, LOW;

        long start(long totalSpan) {
            return switch (this) {
                case ZERO -> 0;
                case FOUR_GIB -> 0x1_0000_0000L;
                case TOP -> -totalSpan; // the last region ends exactly at 2^64
                case LOW -> 0x10000;
            };
        }
    }

    /** A region: a hole of {@code holePages} before it (none before the first), then {@code sizePages}. */
    record Region(int holePages, int sizePages) {
        Region {
            if (holePages < 0 || holePages > 255 || sizePages < 1 || sizePages > MAX_REGION_PAGES) {
                throw new IllegalArgumentException("region " + holePages + "/" + sizePages);
            }
        }
    }

    record Layout(Base base, List<Region> regions) {
        Layout {
            regions = List.copyOf(regions);
            if (regions.isEmpty() || regions.size() > MAX_REGIONS || regions.get(0).holePages() != 0) {
                throw new IllegalArgumentException("1 to 3 regions, no hole before the first");
            }
        }

        /** Bytes from the first region's start to the last one's end. */
        long span() {
            long span = 0;
            for (int i = 0; i < regions.size(); i++) {
                span += (i == 0 ? 0 : regions.get(i).holePages() * PAGE) + regions.get(i).sizePages() * PAGE;
            }
            return span;
        }

        long baseAddress() {
            return base.start(span());
        }

        /** Guest-physical start of each region. */
        long[] starts() {
            long[] starts = new long[regions.size()];
            long at = baseAddress();
            for (int i = 0; i < regions.size(); i++) {
                at += i == 0 ? 0 : regions.get(i).holePages() * PAGE;
                starts[i] = at;
                at += regions.get(i).sizePages() * PAGE;
            }
            return starts;
        }
    }

    /** Queue configuration. Addresses are relative to the memory base. */
    record Config(int maxSizeLog, int size, boolean eventIdx, boolean indirect, int indirectCap,
                  long desc, long avail, long used) {
        Config {
            if (maxSizeLog < 0 || maxSizeLog > MAX_SIZE_LOG) {
                throw new IllegalArgumentException("maxSizeLog " + maxSizeLog);
            }
            size &= 0xFFFF;
            indirectCap &= 0xFFFF;
        }

        int maxSize() {
            return 1 << maxSizeLog;
        }
    }

    record Desc(int index, long addr, int len, int flags, int next) {
        Desc {
            index &= 0xFFFF;
            flags &= 0xFFFF;
            next &= 0xFFFF;
        }
    }

    record Raw(long addr, byte[] bytes) {
        Raw {
            if (bytes.length > MAX_RAW_BYTES) {
                throw new IllegalArgumentException("raw write of " + bytes.length);
            }
            bytes = bytes.clone();
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Raw r && r.addr == addr && Arrays.equals(r.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(addr) * 31 + Arrays.hashCode(bytes);
        }

        @Override
        public String toString() {
            return "Raw[0x" + Long.toHexString(addr) + ", " + bytes.length + " bytes]";
        }
    }

    /** Driver operations (the guest writing its rings) and device operations (calls on the queue). */
    sealed interface Op {
        int tag();
    }

    // ---- driver ops: guest writes, through the current queue configuration's ring addresses
    /** Puts {@code head} in the next avail slot (slot = avail.idx mod size) and increments avail.idx. */
    record Publish(int head) implements Op {
        public int tag() { return 0; }
    }

    record SetAvailIdx(int idx) implements Op {
        public int tag() { return 1; }
    }

    /** Writes main-table entry {@code index} (if it lies in guest memory). */
    record WriteDesc(Desc desc) implements Op {
        public int tag() { return 2; }
    }

    /** Writes bytes anywhere in guest memory (bytes outside it are dropped). */
    record WriteRaw(long addr, byte[] bytes) implements Op {
        WriteRaw {
            if (bytes.length > 255) {
                throw new IllegalArgumentException("raw op of " + bytes.length);
            }
            bytes = bytes.clone();
        }

        public int tag() { return 3; }

        @Override
        public boolean equals(Object o) {
            return o instanceof WriteRaw r && r.addr == addr && Arrays.equals(r.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return Long.hashCode(addr) * 31 + Arrays.hashCode(bytes);
        }
    }

    record SetUsedEvent(int value) implements Op {
        public int tag() { return 4; }
    }

    record SetAvailFlags(int value) implements Op {
        public int tag() { return 5; }
    }

    // ---- device ops
    record Pop() implements Op {
        public int tag() { return 6; }
    }

    record PopHead(int head) implements Op {
        public int tag() { return 7; }
    }

    /** Reads through the reader of in-flight chain {@code chain mod count}: kind 0 bytes(n), 1 short, 2 int, 3 long. */
    record Read(int chain, int kind, int n) implements Op {
        public int tag() { return 8; }
    }

    /** Writes through the writer: kind 0 bytes(n), 1 short, 2 int, 3 long, 4 fill(n), 5 skip(n). */
    record Write(int chain, int kind, int n, int seed) implements Op {
        public int tag() { return 9; }
    }

    /** Seeks the reader (writer = false) or the writer to {@code position}. */
    record Seek(int chain, boolean writer, long position) implements Op {
        public int tag() { return 10; }
    }

    /** Completes in-flight chain {@code chain mod count} with addUsed(Chain). */
    record AddUsed(int chain) implements Op {
        public int tag() { return 11; }
    }

    record NeedsNotification() implements Op {
        public int tag() { return 12; }
    }

    record EnableNotification() implements Op {
        public int tag() { return 13; }
    }

    record DisableNotification() implements Op {
        public int tag() { return 14; }
    }

    /**
     * reset(); then mode 0: stay stopped; 1: configure as the input's config and activate; 2: activate with no
     * configuration at all (rust-vmm's stale-ring finding); 3: configure with {@code newConfig} and activate.
     */
    record Reset(int mode, Config newConfig) implements Op {
        Reset {
            if (mode < 0 || mode > 3 || (mode == 3) != (newConfig != null)) {
                throw new IllegalArgumentException("reset mode " + mode);
            }
        }

        public int tag() { return 15; }
    }

    /** stop(); restore(state() if !given, else (nextAvail, nextUsed, eventIdx)); activate (GET/SET_VRING_BASE). */
    record StateRestore(boolean given, int nextAvail, int nextUsed, boolean eventIdx) implements Op {
        StateRestore {
            nextAvail &= 0xFFFF;
            nextUsed &= 0xFFFF;
        }

        public int tag() { return 16; }
    }

    /** remap() to a new table over the same backing: mode 0 all regions; k &gt; 0 drops region (k - 1) mod count. */
    record Remap(int mode) implements Op {
        public int tag() { return 17; }
    }

    record HasAvailable() implements Op {
        public int tag() { return 18; }
    }

    static final int OP_TAGS = 19;

    // ------------------------------------------------------------------------------------------ decoding

    static FuzzInput decode(byte[] data) {
        In in = new In(data);
        int layoutByte = in.u8();
        int regionCount = 1 + (layoutByte & 3) % MAX_REGIONS;
        Base base = Base.values()[(layoutByte >>> 2) & 3];
        List<Region> regions = new ArrayList<>();
        for (int i = 0; i < regionCount; i++) {
            int hole = in.u8();
            int pages = 1 + in.u8() % MAX_REGION_PAGES;
            regions.add(new Region(i == 0 ? 0 : hole, pages));
        }
        Config config = decodeConfig(in, true);
        List<Desc> descs = new ArrayList<>();
        int n = in.u16() % (MAX_DESCRIPTORS + 1);
        for (int i = 0; i < n; i++) {
            descs.add(decodeDesc(in));
        }
        List<Raw> raws = new ArrayList<>();
        n = in.u16() % (MAX_RAWS + 1);
        for (int i = 0; i < n; i++) {
            long addr = in.u64();
            raws.add(new Raw(addr, in.bytes(in.u16() % (MAX_RAW_BYTES + 1))));
        }
        List<Op> ops = new ArrayList<>();
        n = in.u16() % (MAX_OPS + 1);
        for (int i = 0; i < n; i++) {
            ops.add(decodeOp(in));
        }
        return new FuzzInput(new Layout(base, regions), config, descs, raws, ops);
    }

    private static Config decodeConfig(In in, boolean full) {
        int maxSizeLog = full ? in.u8() % (MAX_SIZE_LOG + 1) : 0;
        int size = in.u16();
        int features = in.u8();
        int cap = in.u16();
        return new Config(maxSizeLog, size, (features & 1) != 0, (features & 2) != 0, cap, in.u64(), in.u64(),
                in.u64());
    }

    private static Desc decodeDesc(In in) {
        return new Desc(in.u16(), in.u64(), in.u32(), in.u16(), in.u16());
    }

    private static Op decodeOp(In in) {
        int tag = in.u8() % OP_TAGS;
        return switch (tag) {
            case 0 -> new Publish(in.u16());
            case 1 -> new SetAvailIdx(in.u16());
            case 2 -> new WriteDesc(decodeDesc(in));
            case 3 -> {
                long addr = in.u64();
                yield new WriteRaw(addr, in.bytes(in.u8()));
            }
            case 4 -> new SetUsedEvent(in.u16());
            case 5 -> new SetAvailFlags(in.u16());
            case 6 -> new Pop();
            case 7 -> new PopHead(in.u16());
            case 8 -> new Read(in.u8(), in.u8() % 4, in.u16());
            case 9 -> new Write(in.u8(), in.u8() % 6, in.u16(), in.u8());
            case 10 -> {
                int chain = in.u8();
                boolean writer = (in.u8() & 1) != 0;
                yield new Seek(chain, writer, in.u32() & 0xFFFF_FFFFL);
            }
            case 11 -> new AddUsed(in.u8());
            case 12 -> new NeedsNotification();
            case 13 -> new EnableNotification();
            case 14 -> new DisableNotification();
            case 15 -> {
                int mode = in.u8() % 4;
                yield new Reset(mode, mode == 3 ? decodeConfig(in, false) : null);
            }
            case 16 -> {
                int flags = in.u8();
                yield new StateRestore((flags & 1) != 0, in.u16(), in.u16(), (flags & 2) != 0);
            }
            case 17 -> new Remap(in.u8());
            case 18 -> new HasAvailable();
            default -> throw new AssertionError(tag);
        };
    }

    // ------------------------------------------------------------------------------------------ encoding

    byte[] encode() {
        Out out = new Out();
        int baseBits = layout.base().ordinal();
        out.u8((layout.regions().size() - 1) | baseBits << 2);
        for (Region r : layout.regions()) {
            out.u8(r.holePages());
            out.u8(r.sizePages() - 1);
        }
        encodeConfig(out, config, true);
        checkCount(descriptors.size(), MAX_DESCRIPTORS);
        out.u16(descriptors.size());
        descriptors.forEach(d -> encodeDesc(out, d));
        checkCount(raws.size(), MAX_RAWS);
        out.u16(raws.size());
        for (Raw r : raws) {
            out.u64(r.addr());
            out.u16(r.bytes().length);
            out.bytes(r.bytes());
        }
        checkCount(ops.size(), MAX_OPS);
        out.u16(ops.size());
        for (Op op : ops) {
            out.u8(op.tag());
            switch (op) {
                case Publish p -> out.u16(p.head());
                case SetAvailIdx s -> out.u16(s.idx());
                case WriteDesc w -> encodeDesc(out, w.desc());
                case WriteRaw w -> {
                    out.u64(w.addr());
                    out.u8(w.bytes().length);
                    out.bytes(w.bytes());
                }
                case SetUsedEvent s -> out.u16(s.value());
                case SetAvailFlags s -> out.u16(s.value());
                case Pop p -> { }
                case PopHead p -> out.u16(p.head());
                case Read r -> {
                    out.u8(r.chain());
                    out.u8(r.kind());
                    out.u16(r.n());
                }
                case Write w -> {
                    out.u8(w.chain());
                    out.u8(w.kind());
                    out.u16(w.n());
                    out.u8(w.seed());
                }
                case Seek s -> {
                    out.u8(s.chain());
                    out.u8(s.writer() ? 1 : 0);
                    out.u32((int) s.position());
                }
                case AddUsed a -> out.u8(a.chain());
                case NeedsNotification x -> { }
                case EnableNotification x -> { }
                case DisableNotification x -> { }
                case Reset r -> {
                    out.u8(r.mode());
                    if (r.mode() == 3) {
                        encodeConfig(out, r.newConfig(), false);
                    }
                }
                case StateRestore s -> {
                    out.u8((s.given() ? 1 : 0) | (s.eventIdx() ? 2 : 0));
                    out.u16(s.nextAvail());
                    out.u16(s.nextUsed());
                }
                case Remap r -> out.u8(r.mode());
                case HasAvailable h -> { }
            }
        }
        return out.toByteArray();
    }

    private static void checkCount(int count, int max) {
        if (count > max) {
            throw new IllegalArgumentException(count + " > " + max);
        }
    }

    private static void encodeConfig(Out out, Config c, boolean full) {
        if (full) {
            out.u8(c.maxSizeLog());
        }
        out.u16(c.size());
        out.u8((c.eventIdx() ? 1 : 0) | (c.indirect() ? 2 : 0));
        out.u16(c.indirectCap());
        out.u64(c.desc());
        out.u64(c.avail());
        out.u64(c.used());
    }

    private static void encodeDesc(Out out, Desc d) {
        out.u16(d.index());
        out.u64(d.addr());
        out.u32(d.len());
        out.u16(d.flags());
        out.u16(d.next());
    }

    /** Little-endian reader that yields zeros past the end. */
    private static final class In {
        private final byte[] data;
        private int at;

        In(byte[] data) {
            this.data = data;
        }

        int u8() {
            return at < data.length ? data[at++] & 0xFF : 0;
        }

        int u16() {
            return u8() | u8() << 8;
        }

        int u32() {
            return u16() | u16() << 16;
        }

        long u64() {
            return (u32() & 0xFFFF_FFFFL) | (long) u32() << 32;
        }

        byte[] bytes(int n) {
            int have = Math.max(0, Math.min(n, data.length - at));
            byte[] out = new byte[n];
            System.arraycopy(data, at, out, 0, have);
            at += have;
            return out;
        }
    }

    private static final class Out {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        void u8(int v) {
            out.write(v);
        }

        void u16(int v) {
            u8(v);
            u8(v >>> 8);
        }

        void u32(int v) {
            u16(v);
            u16(v >>> 16);
        }

        void u64(long v) {
            u32((int) v);
            u32((int) (v >>> 32));
        }

        void bytes(byte[] b) {
            out.writeBytes(b);
        }

        byte[] toByteArray() {
            return out.toByteArray();
        }
    }
}
