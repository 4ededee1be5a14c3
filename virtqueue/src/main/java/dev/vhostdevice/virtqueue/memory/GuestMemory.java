package dev.vhostdevice.virtqueue.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * Guest-physical memory: an immutable, sorted set of non-overlapping {@link GuestRegion}s.
 *
 * <p>Translation rule: a range is in guest memory when every byte of it lies in some region and it does not
 * wrap past 2^64. Guest <em>buffers</em> may span regions that are adjacent in guest-physical space (the
 * walker then splits them into one piece per region); rings and indirect descriptor tables must lie within a
 * single region ({@link #slice}), because they are accessed as one segment.
 *
 * <p>Closing the memory releases what it owns (mappings made by {@link Builder#mapFile}, memory made by
 * {@link #allocate}); segments handed in by the caller stay the caller's. Thread-safe: the region table never
 * changes; a new table is a new {@code GuestMemory}.
 */
public final class GuestMemory implements AutoCloseable {
    private final GuestRegion[] regions;
    private final long[] starts;
    private final Arena arena;
    /** Regions mapped per access that this memory owns (released on close). */
    private final List<OnDemandMemory> owned;
    /** Index of the region that answered the last lookup: most lookups hit the region of the one before. */
    private int lastHit;

    private GuestMemory(GuestRegion[] sorted, Arena arena, List<OnDemandMemory> owned) {
        this.regions = sorted;
        this.arena = arena;
        this.owned = owned;
        this.starts = new long[sorted.length];
        for (int i = 0; i < sorted.length; i++) {
            starts[i] = sorted[i].guestAddress();
        }
    }

    /** Memory over caller-owned regions (any order; they must not overlap). */
    public static GuestMemory of(List<GuestRegion> regions) {
        return new GuestMemory(sortedAndDisjoint(regions), null, List.of());
    }

    /** Memory over caller-owned regions. */
    public static GuestMemory of(GuestRegion... regions) {
        return of(List.of(regions));
    }

    /** One region of fresh zeroed native memory, owned (and freed on close) by the returned memory. */
    public static GuestMemory allocate(long guestAddress, long size) {
        return builder().allocate(guestAddress, size).build();
    }

    public static Builder builder() {
        return new Builder(MemoryMapper.system());
    }

    public static Builder builder(MemoryMapper mapper) {
        return new Builder(mapper);
    }

    private static GuestRegion[] sortedAndDisjoint(List<GuestRegion> regions) {
        GuestRegion[] sorted = regions.toArray(GuestRegion[]::new);
        Arrays.sort(sorted, Comparator.comparing(GuestRegion::guestAddress, Long::compareUnsigned));
        for (int i = 1; i < sorted.length; i++) {
            if (Long.compareUnsigned(sorted[i].guestAddress(), sorted[i - 1].lastAddress()) <= 0) {
                throw new IllegalArgumentException("regions overlap: " + sorted[i - 1] + " and " + sorted[i]);
            }
        }
        return sorted;
    }

    public int regionCount() {
        return regions.length;
    }

    public GuestRegion region(int index) {
        return regions[index];
    }

    public List<GuestRegion> regions() {
        return List.of(regions);
    }

    /** Index of the region holding {@code gpa}, or -1. */
    public int regionIndex(long gpa) {
        int hint = lastHit;
        if (hint < regions.length && regions[hint].contains(gpa)) {
            return hint;
        }
        int low = 0;
        int high = regions.length - 1;
        while (low <= high) {
            int mid = (low + high) >>> 1;
            if (Long.compareUnsigned(starts[mid], gpa) <= 0) {
                low = mid + 1;
            } else {
                high = mid - 1;
            }
        }
        // high is the last region starting at or below gpa.
        if (high >= 0 && regions[high].contains(gpa)) {
            lastHit = high;
            return high;
        }
        return -1;
    }

    /**
     * The segment of {@code length} bytes at {@code gpa} if the whole range lies in one region mapped in advance,
     * else null. A zero length is never a valid ring or table, so it yields null too.
     */
    public MemorySegment slice(long gpa, long length) {
        int index = regionIndex(gpa);
        if (index < 0 || length <= 0) {
            return null;
        }
        GuestRegion region = regions[index];
        long offset = gpa - region.guestAddress();
        if (Long.compareUnsigned(length, region.size() - offset) > 0 || region.isOnDemand()) {
            return null; // rings and tables are used as one segment: never in memory mapped per access
        }
        return region.segment().asSlice(offset, length);
    }

    /**
     * Whether every byte of [{@code gpa}, {@code gpa + length}) is guest memory, across adjacent regions if need
     * be. The empty range is inside when its address is.
     */
    public boolean contains(long gpa, long length) {
        if (length < 0) {
            return false;
        }
        long address = gpa;
        long remaining = length;
        do {
            int index = regionIndex(address);
            if (index < 0) {
                return false;
            }
            GuestRegion region = regions[index];
            long available = region.lastAddress() - address + 1;
            if (Long.compareUnsigned(remaining, available) <= 0) {
                return true;
            }
            remaining -= available;
            address += available;
            if (address == 0) {
                return false; // ran off the top of the 64-bit space
            }
        } while (true);
    }

    /** Unmaps and frees what this memory owns. Callers guarantee no thread still reads it. */
    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
        owned.forEach(OnDemandMemory::release);
    }

    @Override
    public String toString() {
        return "GuestMemory" + Arrays.toString(regions);
    }

    /** Collects regions; {@link #build()} checks that they do not overlap. */
    public static final class Builder {
        private final MemoryMapper mapper;
        private final List<GuestRegion> regions = new ArrayList<>();
        private final List<OnDemandMemory> owned = new ArrayList<>();
        private Arena arena;

        private Builder(MemoryMapper mapper) {
            this.mapper = mapper;
        }

        private Arena arena() {
            if (arena == null) {
                arena = Arena.ofShared();
            }
            return arena;
        }

        /** A caller-owned region. */
        public Builder add(GuestRegion region) {
            regions.add(region);
            return this;
        }

        /** A region of fresh zeroed native memory, page-aligned so guest alignment is host alignment. */
        public Builder allocate(long guestAddress, long size) {
            regions.add(new GuestRegion(guestAddress, size, arena().allocate(size, 4096)));
            return this;
        }

        /**
         * A region on the Java heap (a {@code long[]}, so it is 8-aligned and can hold rings), freed by the GC.
         * For tests and for VMMs that keep guest RAM on the heap; {@code size} must be a multiple of 8.
         */
        public Builder heap(long guestAddress, int size) {
            if (size <= 0 || size % Long.BYTES != 0) {
                throw new IllegalArgumentException("heap region size must be a positive multiple of 8: " + size);
            }
            regions.add(new GuestRegion(guestAddress, size, MemorySegment.ofArray(new long[size / Long.BYTES])));
            return this;
        }

        /**
         * A region mapped from {@code size} bytes of {@code fd} at {@code fileOffset}. The file must be at least
         * {@code fileOffset + size} bytes long: touching a mapping past the end of its file raises SIGBUS, which
         * the JVM reports late and outside any try block, so it is refused here instead.
         */
        public Builder mapFile(long guestAddress, long size, int fd, long fileOffset) throws ErrnoException {
            if (size <= 0 || fileOffset < 0) {
                throw new IllegalArgumentException("bad region: size " + size + ", offset " + fileOffset);
            }
            long fileSize = mapper.fileSize(fd);
            if (fileOffset > fileSize || size > fileSize - fileOffset) {
                throw new IllegalArgumentException("region of 0x%x bytes at file offset 0x%x exceeds the file (0x%x bytes)"
                        .formatted(size, fileOffset, fileSize));
            }
            regions.add(new GuestRegion(guestAddress, size, mapper.map(fd, fileOffset, size, arena())));
            return this;
        }

        /**
         * A region of {@code size} bytes at {@code guestAddress} whose buffers are mapped per access; the memory
         * releases it when closed.
         */
        public Builder onDemand(long guestAddress, long size, OnDemandMemory memory) {
            owned.add(memory);
            regions.add(new GuestRegion(guestAddress, size, memory));
            return this;
        }

        /**
         * The arena that owns this builder's mappings, for a mapping made outside {@link #mapFile} (Xen frames and
         * grants) to be released with the memory.
         */
        public Arena owner() {
            return arena();
        }

        /** The memory; on a bad region set everything mapped so far is released and the error thrown. */
        public GuestMemory build() {
            try {
                return new GuestMemory(sortedAndDisjoint(regions), arena, List.copyOf(owned));
            } catch (RuntimeException e) {
                discard();
                throw e;
            }
        }

        /** Releases what was mapped or allocated so far; for a caller that gives up half-way. */
        public void discard() {
            if (arena != null) {
                arena.close();
                arena = null;
            }
            owned.forEach(OnDemandMemory::release);
            owned.clear();
            regions.clear();
        }
    }
}
