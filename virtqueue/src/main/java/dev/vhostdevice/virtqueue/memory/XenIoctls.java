package dev.vhostdevice.virtqueue.memory;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.StructLayout;

/**
 * The Linux uapi of {@code xen/privcmd.h} and {@code xen/gntdev.h} this project uses: ioctl numbers and argument
 * layouts (LP64; x86_64 and arm64 share the generic {@code _IOC} encoding). Values: xen.md §2.5 and its appendix,
 * checked there against the headers.
 */
public final class XenIoctls {
    /** Xen frames and grants are 4 KiB whatever the host's page size. */
    public static final long XEN_PAGE_SIZE = 4096;
    public static final int XEN_PAGE_SHIFT = 12;
    /** Bit 63 marks a grant address: {@code 1<<63 | gref<<12 | offset in page} (Linux grant-dma-ops). */
    public static final long GRANT_ADDRESS_BIT = 1L << 63;

    public static final int IOC_NONE = 0;
    public static final int IOC_WRITE = 1;
    public static final int IOC_READ = 2;

    /** {@code struct privcmd_mmapbatch_v2}: num u32, dom u16, addr, arr (gfns), err (per-frame int). */
    public static final StructLayout MMAPBATCH_V2 = MemoryLayout.structLayout(
            JAVA_INT.withName("num"), JAVA_SHORT.withName("dom"), MemoryLayout.paddingLayout(2),
            JAVA_LONG.withName("addr"), JAVA_LONG.withName("arr"), JAVA_LONG.withName("err"));
    /** {@code struct ioctl_gntdev_grant_ref}: domid u32, ref u32. */
    public static final StructLayout GRANT_REF = MemoryLayout.structLayout(
            JAVA_INT.withName("domid"), JAVA_INT.withName("ref"));
    /** {@code struct ioctl_gntdev_map_grant_ref} header: count u32, pad, index u64 (out); then count refs. */
    public static final StructLayout MAP_GRANT_REF = MemoryLayout.structLayout(
            JAVA_INT.withName("count"), JAVA_INT.withName("pad"), JAVA_LONG.withName("index"),
            GRANT_REF.withName("refs"));
    /** {@code struct ioctl_gntdev_unmap_grant_ref}: index u64, count u32, pad. */
    public static final StructLayout UNMAP_GRANT_REF = MemoryLayout.structLayout(
            JAVA_LONG.withName("index"), JAVA_INT.withName("count"), JAVA_INT.withName("pad"));

    public static final long MMAPBATCH_V2_NUM = 0;
    public static final long MMAPBATCH_V2_DOM = 4;
    public static final long MMAPBATCH_V2_ADDR = 8;
    public static final long MMAPBATCH_V2_ARR = 16;
    public static final long MMAPBATCH_V2_ERR = 24;
    public static final long MAP_GRANT_REF_COUNT = 0;
    public static final long MAP_GRANT_REF_INDEX = 8;
    /** Where the refs start; one {@link #GRANT_REF} per page. */
    public static final long MAP_GRANT_REF_REFS = 16;
    public static final long UNMAP_GRANT_REF_INDEX = 0;
    public static final long UNMAP_GRANT_REF_COUNT = 8;

    /** {@code IOCTL_PRIVCMD_MMAPBATCH_V2}: {@code _IOC(_IOC_NONE, 'P', 4, 32)}. */
    public static final long IOCTL_PRIVCMD_MMAPBATCH_V2 = ioc(IOC_NONE, 'P', 4, MMAPBATCH_V2.byteSize());
    /** {@code IOCTL_GNTDEV_MAP_GRANT_REF}: {@code _IOC(_IOC_NONE, 'G', 0, 24)} (the size names one ref). */
    public static final long IOCTL_GNTDEV_MAP_GRANT_REF = ioc(IOC_NONE, 'G', 0, MAP_GRANT_REF.byteSize());
    /** {@code IOCTL_GNTDEV_UNMAP_GRANT_REF}: {@code _IOC(_IOC_NONE, 'G', 1, 16)}. */
    public static final long IOCTL_GNTDEV_UNMAP_GRANT_REF = ioc(IOC_NONE, 'G', 1, UNMAP_GRANT_REF.byteSize());

    private XenIoctls() {
    }

    /** Linux's generic {@code _IOC(dir, type, nr, size)}: {@code dir<<30 | size<<16 | type<<8 | nr}. */
    public static long ioc(int dir, char type, int nr, long size) {
        return ((long) dir << 30) | (size << 16) | ((long) type << 8) | nr;
    }

    /** Bytes of a MAP_GRANT_REF argument for {@code count} refs. */
    public static long mapGrantRefBytes(int count) {
        return MAP_GRANT_REF_REFS + GRANT_REF.byteSize() * count;
    }

    /** The grant ref of a grant address. */
    public static long grantRef(long grantAddress) {
        return (grantAddress & ~GRANT_ADDRESS_BIT) >>> XEN_PAGE_SHIFT;
    }
}
