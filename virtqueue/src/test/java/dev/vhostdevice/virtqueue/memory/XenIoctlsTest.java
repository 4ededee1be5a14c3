package dev.vhostdevice.virtqueue.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemoryLayout.PathElement;
import org.junit.jupiter.api.Test;

/** The Xen uapi numbers and layouts, pinned to the values compiled from the Linux headers (xen.md §3.3). */
class XenIoctlsTest {
    @Test
    void ioctlNumbersAreTheKernels() {
        assertEquals(0x00205004L, XenIoctls.IOCTL_PRIVCMD_MMAPBATCH_V2);
        assertEquals(0x00184700L, XenIoctls.IOCTL_GNTDEV_MAP_GRANT_REF);
        assertEquals(0x00104701L, XenIoctls.IOCTL_GNTDEV_UNMAP_GRANT_REF);
        // The encoder itself, on the other privcmd numbers of the appendix.
        assertEquals(0x00205007L, XenIoctls.ioc(XenIoctls.IOC_NONE, 'P', 7, 32));
        assertEquals(0x00105005L, XenIoctls.ioc(XenIoctls.IOC_NONE, 'P', 5, 16));
        assertEquals(0x40185008L, XenIoctls.ioc(XenIoctls.IOC_WRITE, 'P', 8, 24));
        assertEquals(0x40305009L, XenIoctls.ioc(XenIoctls.IOC_WRITE, 'P', 9, 48));
    }

    @Test
    void structLayoutsMatchTheHeaders() {
        assertEquals(32, XenIoctls.MMAPBATCH_V2.byteSize());
        assertEquals(XenIoctls.MMAPBATCH_V2_NUM, XenIoctls.MMAPBATCH_V2.byteOffset(PathElement.groupElement("num")));
        assertEquals(XenIoctls.MMAPBATCH_V2_DOM, XenIoctls.MMAPBATCH_V2.byteOffset(PathElement.groupElement("dom")));
        assertEquals(XenIoctls.MMAPBATCH_V2_ADDR, XenIoctls.MMAPBATCH_V2.byteOffset(PathElement.groupElement("addr")));
        assertEquals(XenIoctls.MMAPBATCH_V2_ARR, XenIoctls.MMAPBATCH_V2.byteOffset(PathElement.groupElement("arr")));
        assertEquals(XenIoctls.MMAPBATCH_V2_ERR, XenIoctls.MMAPBATCH_V2.byteOffset(PathElement.groupElement("err")));
        assertEquals(24, XenIoctls.MAP_GRANT_REF.byteSize());
        assertEquals(XenIoctls.MAP_GRANT_REF_INDEX, XenIoctls.MAP_GRANT_REF.byteOffset(PathElement.groupElement("index")));
        assertEquals(XenIoctls.MAP_GRANT_REF_REFS, XenIoctls.MAP_GRANT_REF.byteOffset(PathElement.groupElement("refs")));
        assertEquals(16 + 8 * 3, XenIoctls.mapGrantRefBytes(3));
        assertEquals(16, XenIoctls.UNMAP_GRANT_REF.byteSize());
        assertEquals(XenIoctls.UNMAP_GRANT_REF_COUNT, XenIoctls.UNMAP_GRANT_REF.byteOffset(PathElement.groupElement("count")));
    }

    @Test
    void grantAddressesCarryBit63AndTheRefAbovePageOffset() {
        assertEquals(0x1234, XenIoctls.grantRef(1L << 63 | 0x1234L << 12 | 0x10));
    }

    @Test
    void onlyTheFourValidFlagSetsAreAccepted() {
        assertEquals(MappingKind.SHARED_FD, MappingKind.ofXenFlags(0x0));
        assertEquals(MappingKind.XEN_FOREIGN, MappingKind.ofXenFlags(0x1));
        assertEquals(MappingKind.XEN_GRANT, MappingKind.ofXenFlags(0x2));
        assertEquals(MappingKind.XEN_GRANT_PER_ACCESS, MappingKind.ofXenFlags(0xA));
        assertEquals(MappingKind.XEN_GRANT_PER_ACCESS, MappingKind.ofXenFlags(0x102), "the spec text's bit 8");
        for (int invalid : new int[] {0x3, 0x8, 0x9, 0x10, 0x100, 0xB, 0x80000000}) {
            assertThrows(IllegalArgumentException.class, () -> MappingKind.ofXenFlags(invalid), "0x" + Integer.toHexString(invalid));
        }
    }
}
