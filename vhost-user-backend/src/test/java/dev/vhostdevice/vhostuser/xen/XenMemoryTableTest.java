package dev.vhostdevice.vhostuser.xen;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.SET_MEM_TABLE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Xen memory tables the back-end must refuse cleanly: a failure reply, nothing mapped, the connection serving. */
class XenMemoryTableTest {
    static final long ALL_BUT_XEN = ~ProtocolFeature.XEN_MMAP.mask();
    @TempDir
    Path dir;
    FakeXen xen;
    VhostUserServer server;
    TestFrontend fe;

    @BeforeEach
    void start() throws Exception {
        xen = new FakeXen(XenBridgeContract.DOMID, 64, XenBridgeContract.BASE_GFN);
        server = VhostUserServer.start(dir.resolve("x.sock"), EchoDevice::new, Linux.system(), MemoryMapper.system(),
                ServerOptions.DEFAULTS.withXen(xen));
        fe = TestFrontend.connect(server.socketPath());
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        xen.close();
    }

    /** One 40-byte region: gpa, size, user address, mmap offset, flags, domid. */
    private static byte[] xenTable(long gpa, long size, long offset, int flags, int domid) {
        ByteBuffer b = Msg.le(8 + 40).putInt(1).putInt(0);
        b.putLong(gpa).putLong(size).putLong(XenBridgeSimulator.BRIDGE_VA).putLong(offset).putInt(flags).putInt(domid);
        return b.array();
    }

    private long table(byte[] payload, int fd) throws Exception {
        return fe.call(SET_MEM_TABLE, MessageHeader.NEED_REPLY, payload, fd).u64();
    }

    @Test
    void fortyByteEntriesNeedXenMmapAckedAndThirtyTwoAlwaysWork() throws Exception {
        fe.negotiate(true, ALL_BUT_XEN, 0);
        assertNotEquals(0, table(xenTable(0, 0x10000, 0, 0, 0), xen.ramFd()), "not acked: refused, not misread");
        assertEquals(0, table(Msg.memTable(new Msg.Region(0, 0x10000, XenBridgeSimulator.BRIDGE_VA, 0)), xen.ramFd()));
    }

    @Test
    void withXenMmapAckedBothEntrySizesAreRead() throws Exception {
        fe.negotiate(true, ~0L, 0);
        assertTrue(ProtocolFeature.XEN_MMAP.isIn(fe.ackedProtocolFeatures()));
        // QEMU 10.0.2 acks XEN_MMAP and sends 32-byte entries.
        assertEquals(0, table(Msg.memTable(new Msg.Region(0, 0x10000, XenBridgeSimulator.BRIDGE_VA, 0)), xen.ramFd()));
        assertEquals(0, table(xenTable(0, 0x10000, 0, 0, 0), xen.ramFd()), "a UNIX region in the Xen layout");
        ByteBuffer neither = Msg.le(8 + 36).putInt(1).putInt(0);
        assertNotEquals(0, fe.call(SET_MEM_TABLE, MessageHeader.NEED_REPLY, neither.array(), xen.ramFd()).u64());
    }

    @Test
    void invalidRegionsAreRefusedWithNothingMappedAndTheConnectionGoesOn() throws Exception {
        fe.negotiate(true, ~0L, 0);
        long gpa = XenBridgeSimulator.FOREIGN_RAM_GPA;
        long ram = xen.ramBytes();
        for (int flags : new int[] {0x3, 0x8, 0x9, 0x10, 0x100, 0xB}) {
            assertNotEquals(0, table(xenTable(gpa, ram, 0, flags, XenBridgeContract.DOMID), xen.privcmdFd()),
                    "flags 0x" + Integer.toHexString(flags));
        }
        assertNotEquals(0, table(xenTable(gpa, ram, 0x1000, 0x1, XenBridgeContract.DOMID), xen.privcmdFd()),
                "FOREIGN with an mmap offset");
        assertNotEquals(0, table(xenTable(gpa, ram, 0, 0x1, 0x10005), xen.privcmdFd()), "a domid above 16 bits");
        assertNotEquals(0, table(xenTable(gpa, ram + FakeXen.PAGE, 0, 0x1, XenBridgeContract.DOMID), xen.privcmdFd()),
                "one frame the hypervisor refuses fails the region");
        assertNotEquals(0, table(xenTable(gpa, ram, 0, 0x1, XenBridgeContract.DOMID), xen.ramFd()),
                "FOREIGN over an fd that is not privcmd: the ioctl fails, the fd is not mapped as plain memory");
        assertNotEquals(0, table(xenTable(gpa, ram, 0, 0x1, XenBridgeContract.DOMID + 1), xen.privcmdFd()),
                "another domain's frames");
        assertEquals(List.of(), xen.grantMmaps());
        assertEquals(0, xen.liveGrantMaps());
        assertEquals(0, table(xenTable(gpa, ram, 0, 0x1, XenBridgeContract.DOMID), xen.privcmdFd()),
                "and a valid FOREIGN table is then accepted");
    }

    @Test
    void aGrantRefTheGuestDidNotGrantFailsItsRegion() throws Exception {
        fe.negotiate(true, ~0L, 0);
        long grant = dev.vhostdevice.virtqueue.memory.XenIoctls.GRANT_ADDRESS_BIT;
        assertNotEquals(0, table(xenTable(grant, FakeXen.PAGE, 0, 0x2, XenBridgeContract.DOMID), xen.gntdevFd()));
        xen.grant(0, FakeXen.PAGE, false);
        assertEquals(0, table(xenTable(grant, FakeXen.PAGE, 0, 0x2, XenBridgeContract.DOMID), xen.gntdevFd()));
        assertEquals(1, xen.liveGrantMaps(), "a GRANT region is mapped in advance");
        assertEquals(0, table(xenTable(grant, 16 * FakeXen.PAGE, 0, 0xA, XenBridgeContract.DOMID), xen.gntdevFd()));
        assertEquals(0, xen.liveGrantMaps(), "a NO_ADVANCE_MAP region maps nothing; the replaced table was unmapped");
    }
}
