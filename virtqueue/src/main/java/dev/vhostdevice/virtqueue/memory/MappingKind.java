package dev.vhostdevice.virtqueue.memory;

/**
 * How an fd-backed region of guest memory is mapped. The Xen kinds come from the XEN_MMAP region flags
 * (xen.md §2.3): UNIX {@code 0x0}, FOREIGN {@code 0x1}, GRANT {@code 0x2}, GRANT | NO_ADVANCE_MAP {@code 0xA}.
 */
public enum MappingKind {
    /** The fd (memfd, hugetlbfs) mapped with plain mmap: QEMU, and Xen's UNIX regions. */
    SHARED_FD,
    /** {@code /dev/xen/privcmd}: the region's guest frames of domain {@code domid}, mapped once. */
    XEN_FOREIGN,
    /** {@code /dev/xen/gntdev}: a run of consecutive grant refs, mapped once. */
    XEN_GRANT,
    /** {@code /dev/xen/gntdev}, NO_ADVANCE_MAP: each buffer is mapped when the device uses it, then unmapped. */
    XEN_GRANT_PER_ACCESS;

    public static final int XEN_MMAP_FLAG_FOREIGN = 0x1;
    public static final int XEN_MMAP_FLAG_GRANT = 0x2;
    /** NO_ADVANCE_MAP as the bridge and rust-vmm send it; the spec text says bit 8. */
    public static final int XEN_MMAP_FLAG_NO_ADVANCE_MAP = 0x8;
    /** NO_ADVANCE_MAP as the vhost-user spec text defines it (bit 8): accepted as an alias. */
    public static final int XEN_MMAP_FLAG_NO_ADVANCE_MAP_SPEC_TEXT = 0x100;

    /** The kind of a region with these xen_mmap_flags; {@link IllegalArgumentException} for an invalid set. */
    public static MappingKind ofXenFlags(int flags) {
        return switch (flags) {
            case 0 -> SHARED_FD;
            case XEN_MMAP_FLAG_FOREIGN -> XEN_FOREIGN;
            case XEN_MMAP_FLAG_GRANT -> XEN_GRANT;
            case XEN_MMAP_FLAG_GRANT | XEN_MMAP_FLAG_NO_ADVANCE_MAP,
                 XEN_MMAP_FLAG_GRANT | XEN_MMAP_FLAG_NO_ADVANCE_MAP_SPEC_TEXT -> XEN_GRANT_PER_ACCESS;
            default -> throw new IllegalArgumentException("invalid xen_mmap_flags 0x" + Integer.toHexString(flags)
                    + " (valid: 0x0 unix, 0x1 foreign, 0x2 grant, 0xa grant without advance mapping)");
        };
    }

    public boolean isXen() {
        return this != SHARED_FD;
    }
}
