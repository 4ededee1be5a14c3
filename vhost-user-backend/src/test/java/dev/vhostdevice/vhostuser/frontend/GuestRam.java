package dev.vhostdevice.vhostuser.frontend;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import dev.vhostdevice.virtqueue.testing.GuestAllocator;
import java.util.ArrayList;
import java.util.List;

/**
 * Guest RAM as QEMU hands it to a back-end: one memfd (QEMU's memory-backend-memfd), cut into one or more
 * regions at increasing file offsets (mmap_offset), each with a guest-physical address and a front-end user
 * address (UVA) that differs from the GPA. As with QEMU's {@code -m 4G} on q35, the UVAs are contiguous while
 * the GPAs may have holes, and every region is sent with its own copy of the same fd.
 *
 * <p>The test process maps the same memfd, so {@link #memory()} is the driver's view of what the back-end sees.
 * Buffers and rings come from a bump allocator per region.
 */
public final class GuestRam implements AutoCloseable {
    /** Where QEMU-like user addresses start: far from any GPA the tests use. */
    public static final long UVA_BASE = 0x7f3a_0000_0000L;

    private final int memfd;
    private final List<Msg.Region> regions;
    private final GuestMemory memory;
    private final List<GuestAllocator> allocators = new ArrayList<>();

    private GuestRam(int memfd, List<Msg.Region> regions, GuestMemory memory) {
        this.memfd = memfd;
        this.regions = List.copyOf(regions);
        this.memory = memory;
        for (Msg.Region r : regions) {
            // The first page of each region stays unused: address 0 is never a valid buffer in these tests.
            allocators.add(new GuestAllocator(r.gpa() + 4096, r.size() - 4096));
        }
    }

    /** One region of {@code size} bytes at GPA 0, file offset 0. */
    public static GuestRam single(long size) throws ErrnoException {
        return builder().region(0, size).build();
    }

    /** The shape QEMU's q35 gives {@code -m 4G}, scaled down: RAM below and above a hole, one memfd, two fds. */
    public static GuestRam splitLikeQ35(long eachSize) throws ErrnoException {
        return builder().region(0, eachSize).region(0x1_0000_0000L, eachSize).build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Regions in the order added; each takes the next {@code size} bytes of the memfd. */
    public static final class Builder {
        private final List<long[]> specs = new ArrayList<>();
        private long leadingFileGap;

        /** A region of {@code size} bytes (a multiple of 4096) at guest-physical {@code gpa}. */
        public Builder region(long gpa, long size) {
            if (size <= 4096 || size % 4096 != 0) {
                throw new IllegalArgumentException("region size must be a page multiple above one page: " + size);
            }
            specs.add(new long[] {gpa, size});
            return this;
        }

        /** Starts the first region {@code bytes} into the memfd, so even region 0 has mmap_offset != 0. */
        public Builder fileOffset(long bytes) {
            leadingFileGap = bytes;
            return this;
        }

        public GuestRam build() throws ErrnoException {
            MemoryMapper mapper = MemoryMapper.system();
            long fileSize = leadingFileGap;
            for (long[] s : specs) {
                fileSize += s[1];
            }
            int fd = mapper.createMemoryFile("test-frontend-guest-ram", fileSize);
            List<Msg.Region> regions = new ArrayList<>();
            GuestMemory.Builder view = GuestMemory.builder(mapper);
            try {
                long offset = leadingFileGap;
                for (long[] s : specs) {
                    regions.add(new Msg.Region(s[0], s[1], UVA_BASE + offset, offset));
                    view.mapFile(s[0], s[1], fd, offset);
                    offset += s[1];
                }
                return new GuestRam(fd, regions, view.build());
            } catch (ErrnoException | RuntimeException e) {
                view.discard();
                mapper.close(fd);
                throw e;
            }
        }
    }

    public int fd() {
        return memfd;
    }

    public List<Msg.Region> regions() {
        return regions;
    }

    public Msg.Region region(int index) {
        return regions.get(index);
    }

    /** The driver's view (the same memfd, mapped in this process). */
    public GuestMemory memory() {
        return memory;
    }

    /** The front-end user address of {@code gpa}. */
    public long uva(long gpa) {
        for (Msg.Region r : regions) {
            if (gpa - r.gpa() >= 0 && gpa - r.gpa() < r.size()) {
                return r.uva() + (gpa - r.gpa());
            }
        }
        throw new IllegalArgumentException("0x%x is not guest RAM".formatted(gpa));
    }

    /** {@code length} bytes from region {@code index}, aligned to {@code alignment}. */
    public long allocateIn(int index, long length, long alignment) {
        return allocators.get(index).allocate(length, alignment);
    }

    /** {@code length} bytes from region 0. */
    public long allocate(long length, long alignment) {
        return allocateIn(0, length, alignment);
    }

    /** The SET_MEM_TABLE body for all regions. */
    public byte[] memTable() {
        return Msg.memTable(regions);
    }

    /** The fd array to send with {@link #memTable()}: the same memfd once per region, as QEMU does. */
    public int[] memTableFds() {
        int[] fds = new int[regions.size()];
        java.util.Arrays.fill(fds, memfd);
        return fds;
    }

    @Override
    public void close() {
        memory.close();
        Linux.system().close(memfd);
    }
}
