package dev.vhostdevice.vhostuser.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class PayloadCodecTest {
    private static Payload decode(FrontendRequest request, byte[] body) throws ProtocolException {
        return PayloadCodec.decode(request, MemorySegment.ofArray(body), body.length, RegionLayout.STANDARD);
    }

    @Test
    void vringAddressIsIndexFlagsDescUsedAvailLog() throws Exception {
        byte[] body = MiniFrontend.le(40).putInt(1).putInt(1).putLong(0x10).putLong(0x20).putLong(0x30).putLong(0x40).array();
        Payload.VringAddress a = assertInstanceOf(Payload.VringAddress.class, decode(FrontendRequest.SET_VRING_ADDR, body));
        assertEquals(new Payload.VringAddress(1, 1, 0x10, 0x20, 0x30, 0x40), a);
        assertTrue(a.logUsed());
    }

    @Test
    void vringFdTakesTheIndexFromBits0To7AndNoFdFromBit8() throws Exception {
        Payload.VringFd fd = (Payload.VringFd) decode(FrontendRequest.SET_VRING_CALL, MiniFrontend.u64(0x1_03));
        assertEquals(new Payload.VringFd(3, true), fd);
        assertFalse(((Payload.VringFd) decode(FrontendRequest.SET_VRING_KICK, MiniFrontend.u64(0xFF00_0002L))).noFd());
    }

    @Test
    void memoryTableSizeMustMatchItsRegionCount() {
        byte[] oneRegionClaimingTwo = MiniFrontend.le(40).putInt(2).putInt(0).putLong(0).putLong(4096).putLong(0).putLong(0).array();
        ProtocolException e = assertThrows(ProtocolException.class, () -> decode(FrontendRequest.SET_MEM_TABLE, oneRegionClaimingTwo));
        assertFalse(e.isFraming(), "a semantic error: refused, connection kept");
        byte[] zeroRegions = MiniFrontend.le(8).putInt(0).putInt(0).array();
        assertThrows(ProtocolException.class, () -> decode(FrontendRequest.SET_MEM_TABLE, zeroRegions));
    }

    @Test
    void fixedSizeRequestsRejectAnyOtherSize() {
        assertThrows(ProtocolException.class, () -> decode(FrontendRequest.SET_FEATURES, new byte[7]));
        assertThrows(ProtocolException.class, () -> decode(FrontendRequest.GET_FEATURES, new byte[8]));
        assertThrows(ProtocolException.class, () -> decode(FrontendRequest.SET_VRING_ADDR, new byte[32]));
    }

    @Test
    void configPayloadMustHoldExactlyItsSize() throws Exception {
        byte[] ok = MiniFrontend.le(14).putInt(4).putInt(2).putInt(0).put((byte) 7).put((byte) 8).array();
        Payload.Config c = (Payload.Config) decode(FrontendRequest.SET_CONFIG, ok);
        assertEquals(4, c.offset());
        assertEquals(2, c.data().length);
        byte[] lying = MiniFrontend.le(14).putInt(4).putInt(3).putInt(0).put((byte) 7).put((byte) 8).array();
        assertThrows(ProtocolException.class, () -> decode(FrontendRequest.SET_CONFIG, lying));
    }

    @Test
    void xenRegionsAreFortyBytesWithFlagsAndDomain() throws Exception {
        byte[] body = MiniFrontend.le(48).putLong(0).putLong(0x1000).putLong(0x2000).putLong(0x3000).putLong(0)
                .putInt(1).putInt(7).array();
        Payload.SingleRegion r = (Payload.SingleRegion) PayloadCodec.decode(FrontendRequest.ADD_MEM_REG,
                MemorySegment.ofArray(body), 48, RegionLayout.XEN);
        assertEquals(new Payload.MemoryRegion(0x1000, 0x2000, 0x3000, 0, 1, 7), r.region());
    }

    /** A SET_MEM_TABLE body of {@code count} entries of {@code entry} bytes; region i at GPA i * 0x10000. */
    private static byte[] table(int count, int entry) {
        java.nio.ByteBuffer b = MiniFrontend.le(8 + count * entry).putInt(count).putInt(0);
        for (int i = 0; i < count; i++) {
            b.putLong(i * 0x10000L).putLong(0x1000).putLong(0x7f00_0000_0000L + i * 0x10000L).putLong(0);
            if (entry == 40) {
                b.putInt(0xA).putInt(5);
            }
        }
        return b.array();
    }

    private static Payload.MemoryTable decodeTable(byte[] body, RegionLayout negotiated) throws ProtocolException {
        return (Payload.MemoryTable) PayloadCodec.decode(FrontendRequest.SET_MEM_TABLE, MemorySegment.ofArray(body),
                body.length, negotiated);
    }

    @Test
    void theEntrySizeIsReadFromTheMessageAndTheAckSaysWhichSizesAreAcceptable() throws Exception {
        for (int count : new int[] {1, 8, 13, 19, 32}) {
            // XEN_MMAP acked: the bridge's 40-byte entries and QEMU 10.0.2's 32-byte ones are both read.
            Payload.MemoryTable xen = decodeTable(table(count, 40), RegionLayout.XEN);
            assertEquals(count, xen.regions().size());
            assertEquals(new Payload.MemoryRegion(0, 0x1000, 0x7f00_0000_0000L, 0, 0xA, 5), xen.regions().getFirst());
            Payload.MemoryTable acked32 = decodeTable(table(count, 32), RegionLayout.XEN);
            assertEquals(new Payload.MemoryRegion((count - 1) * 0x10000L, 0x1000, 0x7f00_0000_0000L
                    + (count - 1) * 0x10000L, 0), acked32.regions().getLast());
            // Not acked: 32 bytes only; 40-byte entries are refused, not misread as 32-byte ones.
            assertEquals(count, decodeTable(table(count, 32), RegionLayout.STANDARD).regions().size());
            ProtocolException e = assertThrows(ProtocolException.class,
                    () -> decodeTable(table(count, 40), RegionLayout.STANDARD));
            assertFalse(e.isFraming(), "a failure reply, the connection goes on");
        }
        assertThrows(ProtocolException.class, () -> decodeTable(table(33, 32), RegionLayout.XEN), "33 regions");
        byte[] neither = java.util.Arrays.copyOf(table(2, 40), 8 + 2 * 36);
        ProtocolException e = assertThrows(ProtocolException.class, () -> decodeTable(neither, RegionLayout.XEN));
        assertTrue(e.getMessage().contains("fits neither"), e.getMessage());
    }

    @Test
    void singleRegionsTakeTheirLayoutFromThePayloadSizeToo() throws Exception {
        byte[] standard = MiniFrontend.le(40).putLong(0).putLong(0x1000).putLong(0x2000).putLong(0x3000).putLong(0).array();
        Payload.SingleRegion r = (Payload.SingleRegion) PayloadCodec.decode(FrontendRequest.ADD_MEM_REG,
                MemorySegment.ofArray(standard), 40, RegionLayout.XEN);
        assertEquals(new Payload.MemoryRegion(0x1000, 0x2000, 0x3000, 0), r.region());
        byte[] xen = new byte[48];
        assertThrows(ProtocolException.class, () -> PayloadCodec.decode(FrontendRequest.REM_MEM_REG,
                MemorySegment.ofArray(xen), 48, RegionLayout.STANDARD));
    }

    @Test
    void requestCodesMatchTheSpec() {
        assertEquals(FrontendRequest.SET_VRING_ENABLE, FrontendRequest.of(18));
        assertEquals(FrontendRequest.CHECK_DEVICE_STATE, FrontendRequest.of(43));
        assertEquals(null, FrontendRequest.of(45));
        assertEquals(19, ProtocolFeature.DEVICE_STATE.bit());
        assertEquals(17, ProtocolFeature.XEN_MMAP.bit());
    }
}
