package dev.vhostdevice.vhostuser.xen;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import dev.vhostdevice.virtqueue.memory.XenIo;
import dev.vhostdevice.virtqueue.memory.XenIoctls;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A fake hypervisor behind the {@link XenIo} seam: one domain's RAM in a memory file, a grant table over its
 * pages, and the privcmd and gntdev ioctls emulated on top with real mappings of that file (so what the
 * back-end writes through a foreign or grant mapping is what the simulated guest reads). The fds it hands the
 * front-end to pass are small memory files named {@code fake-xen-privcmd} and {@code fake-xen-gntdev}; a call
 * on any other fd fails with EBADF, as on an fd that is not the device.
 *
 * <p>It refuses what Xen refuses: another domain, an ungranted ref, a writable mapping of a read-only grant, an
 * unknown index. It counts live grant mappings and records every grant mapping's protection.
 */
public final class FakeXen implements XenIo, AutoCloseable {
    public static final long PAGE = XenIoctls.XEN_PAGE_SIZE;
    private static final int PROT_NONE = 0;
    private static final int MAP_SHARED = 1;
    private static final int MAP_PRIVATE = 2;
    private static final int MAP_FIXED = 0x10;
    private static final int MAP_ANONYMOUS = 0x20;
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle MMAP = LINKER.downcallHandle(LINKER.defaultLookup().find("mmap").orElseThrow(),
            FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));

    /** One MAP_GRANT_REF: its refs, and where it is mmapped (0 when not). */
    private record GrantMap(long firstRef, int count, long[] mmapped) {}

    /** One gntdev mmap, as the back-end asked for it. */
    public record GrantMmap(long firstRef, int count, int prot) {
        public boolean readOnly() {
            return prot == PROT_READ;
        }

        public boolean writeOnly() {
            return prot == PROT_WRITE;
        }
    }

    private final int domid;
    private final long ramBytes;
    private final long baseGfn;
    private final int ramFd;
    private final int privcmdFd;
    private final int gntdevFd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment ram;
    private final BitSet granted = new BitSet();
    private final BitSet readOnly = new BitSet();
    private final Set<Long> refusedRefs = ConcurrentHashMap.newKeySet();
    private final Map<Long, GrantMap> byIndex = new ConcurrentHashMap<>();
    private final AtomicInteger liveGrantMaps = new AtomicInteger();
    private final AtomicInteger liveGrantMmaps = new AtomicInteger();
    private final List<Long> mappedFrames = new ArrayList<>();
    private final List<Integer> batchDomains = new ArrayList<>();
    private final List<GrantMmap> grantMmaps = new ArrayList<>();
    private final List<String> violations = new ArrayList<>();
    private volatile boolean devicesPresent = true;
    private volatile long pageSize = PAGE;
    private long nextIndex;

    /** {@code pages} pages of RAM for domain {@code domid}; frame {@code baseGfn} is RAM page 0 in foreign mode. */
    public FakeXen(int domid, long pages, long baseGfn) throws ErrnoException {
        MemoryMapper files = MemoryMapper.system();
        this.domid = domid;
        this.ramBytes = pages * PAGE;
        this.baseGfn = baseGfn;
        this.ramFd = files.createMemoryFile("fake-xen-ram", ramBytes);
        this.privcmdFd = files.createMemoryFile("fake-xen-privcmd", PAGE);
        this.gntdevFd = files.createMemoryFile("fake-xen-gntdev", PAGE);
        this.ram = files.map(ramFd, 0, ramBytes, arena);
    }

    public int domid() {
        return domid;
    }

    /** The guest's view of its RAM. */
    public MemorySegment ram() {
        return ram;
    }

    public long ramBytes() {
        return ramBytes;
    }

    public long baseGfn() {
        return baseGfn;
    }

    /** The RAM's own memory file: what a QEMU-style front-end passes (a plain shared-memory region). */
    public int ramFd() {
        return ramFd;
    }

    /** The fd the bridge would open on /dev/xen/privcmd, to pass with a FOREIGN region. */
    public int privcmdFd() {
        return privcmdFd;
    }

    /** The fd the bridge would open on /dev/xen/gntdev, to pass with a GRANT region. */
    public int gntdevFd() {
        return gntdevFd;
    }

    /** The guest grants the pages of RAM bytes [offset, offset + length): read-only for device-readable data. */
    public synchronized void grant(long offset, long length, boolean asReadOnly) {
        for (long page = offset / PAGE; page <= (offset + Math.max(length, 1) - 1) / PAGE; page++) {
            granted.set((int) page);
            readOnly.set((int) page, asReadOnly);
        }
    }

    /** Grant ref {@code ref} is refused from now on (a guest that revoked it). */
    public void refuse(long ref) {
        refusedRefs.add(ref);
    }

    /** Makes the host look like one without /dev/xen. */
    public void removeDevices() {
        devicesPresent = false;
    }

    /** Makes the host look like one whose pages are {@code bytes} long (an arm64 kernel with 16 or 64 KiB pages). */
    public void setPageSize(long bytes) {
        pageSize = bytes;
    }

    /** MAP_GRANT_REF calls not yet undone by UNMAP_GRANT_REF. */
    public int liveGrantMaps() {
        return liveGrantMaps.get();
    }

    /** gntdev mmaps not yet munmapped. */
    public int liveGrantMmaps() {
        return liveGrantMmaps.get();
    }

    public synchronized List<Long> mappedFrames() {
        return List.copyOf(mappedFrames);
    }

    public synchronized List<Integer> batchDomains() {
        return List.copyOf(batchDomains);
    }

    public synchronized List<GrantMmap> grantMmaps() {
        return List.copyOf(grantMmaps);
    }

    /** Things a real gntdev would not have let pass cleanly (an UNMAP while still mmapped). */
    public synchronized List<String> violations() {
        return List.copyOf(violations);
    }

    private enum Device { PRIVCMD, GNTDEV }

    private Device device(int fd) throws ErrnoException {
        String target;
        try {
            target = Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException e) {
            throw new ErrnoException("fake xen: fd " + fd, Errno.EBADF);
        }
        if (target.contains("fake-xen-privcmd")) {
            return Device.PRIVCMD;
        }
        if (target.contains("fake-xen-gntdev")) {
            return Device.GNTDEV;
        }
        throw new ErrnoException("fake xen: fd " + fd + " is " + target + ", not a Xen device", Errno.ENOTTY);
    }

    private static long mmapRaw(long address, long length, int prot, int flags, int fd, long offset)
            throws ErrnoException {
        try {
            MemorySegment at = (MemorySegment) MMAP.invokeExact(MemorySegment.ofAddress(address), length, prot,
                    flags, fd, offset);
            if (at.address() == -1L) {
                throw new ErrnoException("fake xen: mmap", Errno.ENOMEM);
            }
            return at.address();
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Override
    public boolean devicesPresent() {
        return devicesPresent;
    }

    @Override
    public long pageSize() {
        return pageSize;
    }

    @Override
    public long mmap(long length, int prot, int fd, long offset) throws ErrnoException {
        Device device = device(fd);
        if (device == Device.PRIVCMD) {
            // An empty special mapping: touching it before MMAPBATCH faults (here: PROT_NONE).
            return mmapRaw(0, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        }
        GrantMap map = byIndex.get(offset);
        if (map == null || length != map.count * PAGE) {
            throw new ErrnoException("fake gntdev mmap at index " + offset, Errno.EINVAL);
        }
        synchronized (this) {
            for (int i = 0; i < map.count; i++) {
                if ((prot & PROT_WRITE) != 0 && readOnly.get((int) (map.firstRef + i))) {
                    throw new ErrnoException("fake gntdev: writable mapping of read-only grant 0x"
                            + Long.toHexString(map.firstRef + i), Errno.EPERM);
                }
            }
            grantMmaps.add(new GrantMmap(map.firstRef, map.count, prot));
        }
        long address = mmapRaw(0, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        for (int i = 0; i < map.count; i++) {
            // Grant ref g is RAM page g: the guest grants pages of its own memory.
            mmapRaw(address + i * PAGE, PAGE, prot, MAP_SHARED | MAP_FIXED, ramFd, (map.firstRef + i) * PAGE);
        }
        map.mmapped[0] = address;
        liveGrantMmaps.incrementAndGet();
        return address;
    }

    @Override
    public void munmap(long address, long length) {
        for (GrantMap map : byIndex.values()) {
            if (map.mmapped[0] == address) {
                map.mmapped[0] = 0;
                liveGrantMmaps.decrementAndGet();
            }
        }
        XenIo.system().munmap(address, length);
    }

    @Override
    public void ioctl(int fd, long request, MemorySegment arg, String what) throws ErrnoException {
        Device device = device(fd);
        if (device == Device.PRIVCMD && request == XenIoctls.IOCTL_PRIVCMD_MMAPBATCH_V2) {
            mmapBatch(arg, what);
        } else if (device == Device.GNTDEV && request == XenIoctls.IOCTL_GNTDEV_MAP_GRANT_REF) {
            mapGrantRef(arg, what);
        } else if (device == Device.GNTDEV && request == XenIoctls.IOCTL_GNTDEV_UNMAP_GRANT_REF) {
            unmapGrantRef(arg, what);
        } else {
            throw new ErrnoException(what, Errno.ENOTTY);
        }
    }

    private void mmapBatch(MemorySegment arg, String what) throws ErrnoException {
        int num = arg.get(JAVA_INT, XenIoctls.MMAPBATCH_V2_NUM);
        int dom = Short.toUnsignedInt(arg.get(JAVA_SHORT, XenIoctls.MMAPBATCH_V2_DOM));
        long address = arg.get(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ADDR);
        MemorySegment gfns = MemorySegment.ofAddress(arg.get(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ARR))
                .reinterpret(8L * num);
        MemorySegment errors = MemorySegment.ofAddress(arg.get(JAVA_LONG, XenIoctls.MMAPBATCH_V2_ERR))
                .reinterpret(4L * num);
        synchronized (this) {
            batchDomains.add(dom);
        }
        if (dom != domid) {
            throw new ErrnoException(what, 3 /* ESRCH: no such domain */);
        }
        for (int i = 0; i < num; i++) {
            long gfn = gfns.getAtIndex(JAVA_LONG, i);
            long page = gfn - baseGfn;
            if (page < 0 || page >= ramBytes / PAGE) {
                errors.setAtIndex(JAVA_INT, i, -Errno.EFAULT);
                continue;
            }
            mmapRaw(address + i * PAGE, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, ramFd, page * PAGE);
            errors.setAtIndex(JAVA_INT, i, 0);
            synchronized (this) {
                mappedFrames.add(gfn);
            }
        }
    }

    private void mapGrantRef(MemorySegment arg, String what) throws ErrnoException {
        int count = arg.get(JAVA_INT, XenIoctls.MAP_GRANT_REF_COUNT);
        MemorySegment refs = arg.reinterpret(XenIoctls.mapGrantRefBytes(count));
        long first = Integer.toUnsignedLong(refs.get(JAVA_INT, XenIoctls.MAP_GRANT_REF_REFS + 4));
        synchronized (this) {
            for (int i = 0; i < count; i++) {
                long at = XenIoctls.MAP_GRANT_REF_REFS + 8L * i;
                int dom = refs.get(JAVA_INT, at);
                long ref = Integer.toUnsignedLong(refs.get(JAVA_INT, at + 4));
                if (dom != domid || ref != first + i || ref >= ramBytes / PAGE || !granted.get((int) ref)
                        || refusedRefs.contains(ref)) {
                    throw new ErrnoException(what + " (ref 0x" + Long.toHexString(ref) + " of domain " + dom + ")",
                            Errno.EINVAL);
                }
            }
            long index = nextIndex;
            nextIndex += count * PAGE;
            byIndex.put(index, new GrantMap(first, count, new long[1]));
            arg.set(JAVA_LONG, XenIoctls.MAP_GRANT_REF_INDEX, index);
        }
        liveGrantMaps.incrementAndGet();
    }

    private void unmapGrantRef(MemorySegment arg, String what) throws ErrnoException {
        long index = arg.get(JAVA_LONG, XenIoctls.UNMAP_GRANT_REF_INDEX);
        int count = arg.get(JAVA_INT, XenIoctls.UNMAP_GRANT_REF_COUNT);
        GrantMap map = byIndex.get(index);
        if (map == null || map.count != count) {
            throw new ErrnoException(what + " of index " + index, Errno.EINVAL);
        }
        if (map.mmapped[0] != 0) {
            synchronized (this) {
                violations.add("UNMAP_GRANT_REF of refs 0x" + Long.toHexString(map.firstRef) + " while mmapped");
            }
        }
        byIndex.remove(index);
        liveGrantMaps.decrementAndGet();
    }

    @Override
    public int dup(int fd) throws ErrnoException {
        return XenIo.system().dup(fd);
    }

    @Override
    public void close(int fd) {
        XenIo.system().close(fd);
    }

    @Override
    public void close() {
        arena.close();
        MemoryMapper.system().close(ramFd);
        MemoryMapper.system().close(privcmdFd);
        MemoryMapper.system().close(gntdevFd);
    }
}
