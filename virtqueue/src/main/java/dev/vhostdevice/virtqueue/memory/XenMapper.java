package dev.vhostdevice.virtqueue.memory;

import static dev.vhostdevice.virtqueue.memory.XenIoctls.XEN_PAGE_SHIFT;
import static dev.vhostdevice.virtqueue.memory.XenIoctls.XEN_PAGE_SIZE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.LoggerFactory;

/**
 * Maps Xen guest memory through {@link XenIo} (xen.md §2.5): foreign frames of a domain through privcmd, and
 * grants through gntdev, in advance or per access.
 */
final class XenMapper {
    private final XenIo io;

    XenMapper(XenIo io) {
        this.io = io;
    }

    /** Pages covering {@code length} bytes that start {@code lead} bytes into their first page. */
    static long pages(long lead, long length) {
        return (lead + length + XEN_PAGE_SIZE - 1) >>> XEN_PAGE_SHIFT;
    }

    /** A Xen region needs Xen's devices, and host pages of Xen's size (frame and grant arithmetic is per page). */
    private void requireXenHost(String kind) throws ErrnoException {
        if (!io.devicesPresent()) {
            throw new ErrnoException(kind + " region needs /dev/xen, and this host has no Xen devices", Errno.ENODEV);
        }
        long pageSize = io.pageSize();
        if (pageSize != XEN_PAGE_SIZE) {
            throw new ErrnoException("mapping " + kind + " region on a host with pages of " + pageSize + " bytes (Xen"
                    + " frames and grants are " + XEN_PAGE_SIZE + "; Xen memory needs host pages of that size)",
                    Errno.EOPNOTSUPP);
        }
    }

    /**
     * A FOREIGN region: an empty privcmd mapping of the region's pages, populated with IOCTL_PRIVCMD_MMAPBATCH_V2
     * for frames {@code gpa/4096 + i} of {@code domid}. Any frame the hypervisor refused fails the region, named.
     */
    GuestRegion foreign(long gpa, long size, int fd, int domid, Arena owner) throws ErrnoException {
        requireXenHost("a FOREIGN");
        long lead = gpa & (XEN_PAGE_SIZE - 1);
        long pages = pages(lead, size);
        if (pages > Integer.MAX_VALUE) {
            throw new ErrnoException("a FOREIGN region of 0x" + Long.toHexString(size) + " bytes", Errno.EINVAL);
        }
        long length = pages << XEN_PAGE_SHIFT;
        long address = io.mmap(length, XenIo.PROT_READ | XenIo.PROT_WRITE, fd, 0);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment gfns = call.allocate(JAVA_LONG, pages);
            MemorySegment errors = call.allocate(JAVA_INT, pages);
            long firstGfn = gpa >>> XEN_PAGE_SHIFT;
            for (long i = 0; i < pages; i++) {
                gfns.setAtIndex(JAVA_LONG, i, firstGfn + i);
            }
            MemorySegment arg = call.allocate(XenIoctls.MMAPBATCH_V2);
            arg.set(JAVA_INT, XenIoctls.MMAPBATCH_V2_NUM, (int) pages);
            arg.set(JAVA_SHORT, XenIoctls.MMAPBATCH_V2_DOM, (short) domid);
            arg.set(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ADDR, address);
            arg.set(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ARR, gfns.address());
            arg.set(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ERR, errors.address());
            io.ioctl(fd, XenIoctls.IOCTL_PRIVCMD_MMAPBATCH_V2, arg, "IOCTL_PRIVCMD_MMAPBATCH_V2 of " + pages
                    + " frames of domain " + domid);
            for (long i = 0; i < pages; i++) {
                int error = errors.getAtIndex(JAVA_INT, i);
                if (error != 0) {
                    throw new ErrnoException("frame 0x" + Long.toHexString(firstGfn + i) + " of domain " + domid
                            + " did not map", -error);
                }
            }
        } catch (ErrnoException | RuntimeException e) {
            io.munmap(address, length);
            throw e;
        }
        MemorySegment mapping = MemorySegment.ofAddress(address).reinterpret(length, owner,
                unused -> io.munmap(address, length));
        return new GuestRegion(gpa, size, mapping.asSlice(lead, size));
    }

    /** A GRANT region mapped in advance: all its grant refs mapped read-write once, until the memory closes. */
    GuestRegion grant(long gpa, long size, int fd, int domid, Arena owner) throws ErrnoException {
        requireXenHost("a GRANT");
        GrantFile file = new GrantFile(io, io.dup(fd), domid);
        try {
            GrantMapping mapping = file.map(gpa, size, XenIo.PROT_READ | XenIo.PROT_WRITE, owner);
            return new GuestRegion(gpa, size, mapping.segment());
        } finally {
            file.release(); // the fd stays open while the mapping lives
        }
    }

    /** A GRANT | NO_ADVANCE_MAP region: nothing mapped now; each buffer is mapped when the walker resolves it. */
    GuestRegion grantPerAccess(long gpa, long size, int fd, int domid) throws ErrnoException {
        requireXenHost("a GRANT");
        return new GuestRegion(gpa, size, new GrantWindow(new GrantFile(io, io.dup(fd), domid), gpa));
    }

    /**
     * The region's own copy of the front-end's gntdev fd, kept open until the region is released and every
     * mapping made through it is undone (the unmap ioctl needs it: rust-vmm vm-memory #245).
     */
    static final class GrantFile {
        private final XenIo io;
        private final int fd;
        private final int domid;
        /** One per live mapping, plus one while the region holds the file. */
        private final AtomicInteger holds = new AtomicInteger(1);

        GrantFile(XenIo io, int fd, int domid) {
            this.io = io;
            this.fd = fd;
            this.domid = domid;
        }

        /**
         * Maps the grants behind [{@code gpa}, {@code gpa + length}): IOCTL_GNTDEV_MAP_GRANT_REF for the pages'
         * consecutive refs, then mmap at the index it returns. Undone by munmap, then UNMAP_GRANT_REF.
         */
        GrantMapping map(long gpa, long length, int prot, Arena arena) throws ErrnoException {
            long lead = gpa & (XEN_PAGE_SIZE - 1);
            long pages = pages(lead, length);
            if (pages > 0x10_0000) {
                throw new ErrnoException("a grant mapping of " + pages + " pages", Errno.EINVAL);
            }
            int count = (int) pages;
            long firstRef = XenIoctls.grantRef(gpa);
            long index;
            try (Arena call = Arena.ofConfined()) {
                MemorySegment arg = call.allocate(XenIoctls.mapGrantRefBytes(count), 8);
                arg.set(JAVA_INT, XenIoctls.MAP_GRANT_REF_COUNT, count);
                for (int i = 0; i < count; i++) {
                    long at = XenIoctls.MAP_GRANT_REF_REFS + XenIoctls.GRANT_REF.byteSize() * i;
                    arg.set(JAVA_INT, at, domid);
                    arg.set(JAVA_INT, at + 4, (int) (firstRef + i));
                }
                io.ioctl(fd, XenIoctls.IOCTL_GNTDEV_MAP_GRANT_REF, arg, "IOCTL_GNTDEV_MAP_GRANT_REF of refs 0x"
                        + Long.toHexString(firstRef) + "+" + count + " of domain " + domid);
                index = arg.get(JAVA_LONG, XenIoctls.MAP_GRANT_REF_INDEX);
            }
            long bytes = pages << XEN_PAGE_SHIFT;
            long address;
            try {
                address = io.mmap(bytes, prot, fd, index);
            } catch (ErrnoException e) {
                unmapRefs(index, count);
                throw e;
            }
            holds.incrementAndGet();
            GrantMapping mapping = new GrantMapping(this, address, bytes, index, count);
            MemorySegment whole = MemorySegment.ofAddress(address).reinterpret(bytes, arena, unused -> mapping.undo());
            mapping.segment = whole.asSlice(lead, length);
            return mapping;
        }

        private void unmapRefs(long index, int count) {
            try (Arena call = Arena.ofConfined()) {
                MemorySegment arg = call.allocate(XenIoctls.UNMAP_GRANT_REF);
                arg.set(JAVA_LONG, XenIoctls.UNMAP_GRANT_REF_INDEX, index);
                arg.set(JAVA_INT, XenIoctls.UNMAP_GRANT_REF_COUNT, count);
                io.ioctl(fd, XenIoctls.IOCTL_GNTDEV_UNMAP_GRANT_REF, arg, "IOCTL_GNTDEV_UNMAP_GRANT_REF");
            } catch (ErrnoException e) {
                // The pages stay granted to us until the fd closes; nothing else can be done about it here.
                LoggerFactory.getLogger(XenMapper.class).warn("grant refs stay mapped until the fd closes: {}", e.getMessage());
            }
        }

        void release() {
            if (holds.decrementAndGet() == 0) {
                io.close(fd);
            }
        }
    }

    /** One live grant mapping: munmap, then UNMAP_GRANT_REF, then its hold on the file goes. */
    static final class GrantMapping implements OnDemandMemory.Mapping {
        private final GrantFile file;
        private final long address;
        private final long bytes;
        private final long index;
        private final int count;
        private final AtomicInteger undone = new AtomicInteger();
        private Arena arena;
        MemorySegment segment;

        GrantMapping(GrantFile file, long address, long bytes, long index, int count) {
            this.file = file;
            this.address = address;
            this.bytes = bytes;
            this.index = index;
            this.count = count;
        }

        @Override
        public MemorySegment segment() {
            return segment;
        }

        @Override
        public void unmap() {
            if (arena != null) {
                arena.close(); // runs undo(); every access through the segment throws from here on
            }
        }

        void undo() {
            if (undone.getAndIncrement() == 0) {
                file.io.munmap(address, bytes);
                file.unmapRefs(index, count);
                file.release();
            }
        }
    }

    /** The per-access side of a NO_ADVANCE_MAP grant region. */
    static final class GrantWindow implements OnDemandMemory {
        private final GrantFile file;
        private final long base;

        GrantWindow(GrantFile file, long base) {
            this.file = file;
            this.base = base;
        }

        @Override
        public Mapping map(long offset, long length, boolean writable) throws ErrnoException {
            // Device-readable buffers are granted read-only: a writable mapping of them fails (vm-memory #231).
            Arena arena = Arena.ofShared();
            try {
                GrantMapping mapping = file.map(base + offset, length, writable ? XenIo.PROT_WRITE : XenIo.PROT_READ,
                        arena);
                mapping.arena = arena;
                return mapping;
            } catch (ErrnoException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }

        @Override
        public void release() {
            file.release();
        }
    }
}
