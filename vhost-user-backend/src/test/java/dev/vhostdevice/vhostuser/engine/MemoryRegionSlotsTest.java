package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.F30;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.startRing;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * CONFIGURE_MEM_SLOTS (vhost-user-protocol.md §4.2): GET_MAX_MEM_SLOTS, ADD_MEM_REG while a ring runs,
 * REM_MEM_REG of a buffer region, of the region the rings live in (the ring waits for it to come back, as QEMU
 * removes and re-adds a changed region), of an unknown region, and the slot limit.
 */
class MemoryRegionSlotsTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.CONFIGURE_MEM_SLOTS,
            ProtocolFeature.REPLY_ACK, ProtocolFeature.STATUS);
    private static final long EXTRA_GPA = GuestFixture.RAM_SIZE; // right after the fixture's RAM
    private static final long EXTRA_SIZE = 64 * 1024;
    private static final long EXTRA_UVA = 0x7e00_0000_0000L;

    @TempDir
    Path dir;
    VhostUserServer server;
    GuestFixture guest;
    MiniFrontend fe;
    final Linux linux = Linux.system();
    final Arena arena = Arena.ofShared();
    int availIdx;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), EchoDevice::new);
        guest = new GuestFixture();
        fe = new MiniFrontend(server.socketPath());
        negotiate(fe, PROTOCOL, VERSION_1 | F30);
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        guest.close();
        arena.close();
    }

    private static byte[] region(long gpa, long size, long uva, long offset) {
        return le(40).putLong(0).putLong(gpa).putLong(size).putLong(uva).putLong(offset).array();
    }

    private long addFixtureRam() throws Exception {
        return fe.ack(ADD_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0), 0), guest.memfd);
    }

    private void startRunningRing() throws Exception {
        startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
        assertEquals(0, fe.ack(SET_VRING_ENABLE, vringState(0, 1)));
    }

    /** Publishes one chain (descriptors 0 and 1): {@code length} readable bytes at readGpa, writable at writeGpa. */
    private void publish(long readGpa, long writeGpa, int length) throws Exception {
        MemorySegment ram = guest.ram;
        long desc = guest.ring.descGpa;
        ram.set(U64, desc, readGpa);
        ram.set(U32, desc + 8, length);
        ram.set(U16, desc + 12, (short) 1);
        ram.set(U16, desc + 14, (short) 1);
        ram.set(U64, desc + 16, writeGpa);
        ram.set(U32, desc + 24, length);
        ram.set(U16, desc + 28, (short) 2);
        ram.set(U16, desc + 30, (short) 0);
        ram.set(U16, guest.ring.availGpa + 4 + 2L * (availIdx % GuestFixture.RING_SIZE), (short) 0);
        availIdx++;
        ram.set(U16, guest.ring.availGpa + 2, (short) availIdx);
        guest.kick();
    }

    @Test
    void getMaxMemSlotsAnswersTheSlotLimit() throws Exception {
        assertEquals(VhostUserSession.MAX_MEM_SLOTS, fe.getU64(GET_MAX_MEM_SLOTS));
    }

    @Test
    void aRegionAddedWhileTheRingRunsCarriesBuffersAndRemovingItRefusesThem() throws Exception {
        assertEquals(0, addFixtureRam());
        startRunningRing();
        publish(0x5000, 0x5100, 4);
        guest.awaitUsed(1);

        int extraFd = MemoryMapper.system().createMemoryFile("test-extra-region", EXTRA_SIZE + 4096);
        try {
            // mmap_offset 4096: the region starts one page into its file.
            MemorySegment extra = MemoryMapper.system().map(extraFd, 4096, EXTRA_SIZE, arena);
            assertEquals(0, fe.ack(ADD_MEM_REG, region(EXTRA_GPA, EXTRA_SIZE, EXTRA_UVA, 4096), extraFd));
            extra.asSlice(0, 4).copyFrom(MemorySegment.ofArray(new byte[] {1, 2, 3, 4}));
            publish(EXTRA_GPA, EXTRA_GPA + 0x100, 4);
            guest.awaitUsed(2);
            assertEquals(4, guest.ring.usedLen(1));
            assertArrayEquals(new byte[] {4, 3, 2, 1}, extra.asSlice(0x100, 4).toArray(ValueLayout.JAVA_BYTE),
                    "the device wrote into the added region");

            // REM_MEM_REG matches GPA, user address and size; mmap_offset is ignored.
            assertEquals(0, fe.ack(REM_MEM_REG, region(EXTRA_GPA, EXTRA_SIZE, EXTRA_UVA, 0)));
            publish(EXTRA_GPA, EXTRA_GPA + 0x200, 4);
            guest.awaitUsed(3);
            assertEquals(0, guest.ring.usedLen(2), "a buffer in the removed region is refused (0 bytes)");
            assertEquals(0, extra.get(ValueLayout.JAVA_BYTE, 0x200));
        } finally {
            linux.close(extraFd);
        }
    }

    @Test
    void removingAnUnknownRegionFails() throws Exception {
        assertEquals(0, addFixtureRam());
        assertNotEquals(0, fe.ack(REM_MEM_REG, region(EXTRA_GPA, EXTRA_SIZE, EXTRA_UVA, 0)));
        assertNotEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0) + 4096, 0)),
                "the user address must match too");
        assertNotEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE / 2, guest.uva(0), 0)),
                "and the size");
        assertEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0), 0)));
        assertNotEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0), 0)), "removed already");
    }

    @Test
    void removingTheRingsRegionParksTheRingUntilItIsAddedBack() throws Exception {
        assertEquals(0, addFixtureRam());
        startRunningRing();
        publish(0x5000, 0x5100, 4);
        guest.awaitUsed(1);

        assertEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0), 0)));
        publish(0x5000, 0x5100, 4);
        Thread.sleep(100);
        assertEquals(1, guest.ring.usedIdx(), "no ring in guest memory: nothing processed, nothing written");
        assertEquals(0, fe.getU64(GET_STATUS) & VirtioFeatures.STATUS_DEVICE_NEEDS_RESET, "parked, not broken");

        assertEquals(0, addFixtureRam()); // QEMU's remove-then-add of a changed region
        guest.awaitUsed(2);
        assertEquals(2, guest.ring.usedIdx(), "the kick sent while parked is not lost");
        publish(0x5000, 0x5100, 4);
        guest.awaitUsed(3);
        assertEquals(3, fe.call(GET_VRING_BASE, vringState(0, 0)).u32(4));
    }

    // A parked ring is started: a new base for it is refused whole, and it resumes where it was.
    @Test
    void aParkedRingRefusesANewBaseAndResumesWhereItWas() throws Exception {
        assertEquals(0, addFixtureRam());
        startRunningRing();
        publish(0x5000, 0x5100, 4);
        guest.awaitUsed(1);
        assertEquals(0, fe.ack(SET_VRING_ENABLE, vringState(0, 0)));
        assertEquals(0, fe.ack(REM_MEM_REG, region(0, GuestFixture.RAM_SIZE, guest.uva(0), 0)));

        assertNotEquals(0, fe.ack(SET_VRING_BASE, vringState(0, 7)), "parked: refused");

        assertEquals(0, addFixtureRam());
        assertEquals(0, fe.ack(SET_VRING_ENABLE, vringState(0, 1)));
        publish(0x5000, 0x5100, 4);
        guest.awaitUsed(2);
        assertEquals(2, fe.call(GET_VRING_BASE, vringState(0, 0)).u32(4), "resumed at its own position, not 7");
    }

    @Test
    void addMemRegBeyondTheSlotLimitFails() throws Exception {
        int slots = VhostUserSession.MAX_MEM_SLOTS;
        long page = 4096;
        int fd = MemoryMapper.system().createMemoryFile("test-slots", page * (slots + 1));
        try {
            for (int i = 0; i < slots; i++) {
                assertEquals(0, fe.ack(ADD_MEM_REG, region(i * page, page, 0x1000_0000L + i * page, i * page), fd),
                        "slot " + i);
            }
            assertNotEquals(0, fe.ack(ADD_MEM_REG, region(slots * page, page, 0x1000_0000L + slots * page,
                    slots * page), fd), "slot " + slots + " is beyond the limit");
            assertEquals(0, fe.ack(REM_MEM_REG, region(0, page, 0x1000_0000L, 0)));
            assertEquals(0, fe.ack(ADD_MEM_REG, region(slots * page, page, 0x1000_0000L + slots * page, slots * page),
                    fd), "a freed slot can be used again");
        } finally {
            linux.close(fd);
        }
    }

    @Test
    void anOverlappingRegionIsRefused() throws Exception {
        assertEquals(0, addFixtureRam());
        int fd = MemoryMapper.system().createMemoryFile("test-overlap", EXTRA_SIZE);
        try {
            assertNotEquals(0, fe.ack(ADD_MEM_REG, region(GuestFixture.RAM_SIZE - 4096, EXTRA_SIZE, EXTRA_UVA, 0), fd));
            assertNotEquals(0, fe.ack(ADD_MEM_REG, region(EXTRA_GPA, 0, EXTRA_UVA, 0), fd), "zero size");
        } finally {
            linux.close(fd);
        }
    }
}
