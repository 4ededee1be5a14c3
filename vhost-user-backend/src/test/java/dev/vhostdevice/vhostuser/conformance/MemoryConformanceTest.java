package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_VERSION_1;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.vhostdevice.vhostuser.engine.VhostUserSession;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import org.junit.jupiter.api.Test;

/** The memory table, regions and address translation (spec §4.2; checklist 52-59, 11). */
class MemoryConformanceTest extends ConformanceBase {
    static final long SLOTS = ProtocolFeature.CONFIGURE_MEM_SLOTS.mask();

    // §7 #54 / QEMU -m 4G (qemu-guest-testing.md §8.1): two regions of one memfd, the second at GPA 4 GiB with
    // mmap_offset != 0; rings and buffers in the second region are served from the right file bytes.
    @Test
    void twoRegionsOfOneMemfdWithMmapOffsetServeRingsAndBuffersInTheUpperRegion() throws Exception {
        try (GuestRam ram = GuestRam.splitLikeQ35(1 << 20)) {
            fe.useRam(ram);
            negotiateWithReplyAck(0);
            FrontendQueue q = fe.queue(0, 16, 1);
            fe.startQueue(0, 16, 0);
            fe.setVringEnable(0, true);
            roundTrip(q, "above 4G");
            fe.close();
            fe = null;
        }
    }

    // §7 #54: a region whose file offset is not 0 maps data at that offset (even the first region).
    @Test
    void aRegionWithANonZeroMmapOffsetMapsTheFileAtThatOffset() throws Exception {
        try (GuestRam ram = GuestRam.builder().fileOffset(64 * 1024).region(0, 1 << 20).build()) {
            fe.useRam(ram);
            negotiateWithReplyAck(0);
            FrontendQueue q = runningQueue(0);
            roundTrip(q, "offset");
            fe.close();
            fe = null;
        }
    }

    // §7 #55 / §4.2 "range lookups are half-open; a buffer crossing a region boundary must be split": a buffer
    // spanning two GPA-adjacent regions is served correctly.
    @Test
    void aBufferSpanningTwoAdjacentRegionsIsSplitAndServed() throws Exception {
        try (GuestRam ram = GuestRam.builder().region(0, 1 << 20).region(1 << 20, 1 << 20).build()) {
            fe.useRam(ram);
            negotiateWithReplyAck(0);
            FrontendQueue q = runningQueue(0);
            long across = (1 << 20) - 8;
            q.driver().write(across, "0123456789abcdef".getBytes());
            long out = ram.allocate(16, 8);
            q.post(Buffer.readable(across, 16), Buffer.writable(out, 16));
            q.kick();
            assertEquals("fedcba9876543210", q.awaitUsed(WAIT).text());
            fe.close();
            fe = null;
        }
    }

    // §7 #52 / §4.2: SET_MEM_TABLE fully replaces the table: an address valid only in the old one is rejected.
    @Test
    void setMemTableFullyReplacesTheTable() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        Msg.Region r = fe.ram().region(0);
        long moved = 0x10_0000_0000L;
        fe.request(SET_MEM_TABLE, Msg.memTable(new Msg.Region(r.gpa(), r.size(), r.uva() + moved, 0)), fe.ram().fd());
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), q.usedUva(), q.availUva(), 0)),
                "the old user addresses are gone");
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva() + moved, q.usedUva() + moved,
                q.availUva() + moved, 0)));
    }

    // §7 #53 / §8 #10: SET_MEM_TABLE while rings run: processing continues through the new table.
    @Test
    void aNewMemoryTableWhileRingsRunKeepsThemRunning() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "before");
        int changes = device().memoryChanges.get();
        Msg.Region r = fe.ram().region(0);
        fe.request(SET_MEM_TABLE, Msg.memTable(new Msg.Region(r.gpa(), r.size(), r.uva() + 0x1000_0000L, 0)),
                fe.ram().fd());
        assertEquals(changes + 1, device().memoryChanges.get(), "the device was told, before the ack");
        roundTrip(q, "after");
    }

    // §7 #56: regions of zero size, or whose address + size overflows, are rejected.
    @Test
    void zeroSizedAndOverflowingRegionsAreRejected() throws Exception {
        negotiateWithReplyAck(0);
        int fd = fe.ram().fd();
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(0, 0, 0x7000_0000L, 0)), fd));
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(-4096L, 8192, 0x7000_0000L, 0)), fd));
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(0, 8192, -4096L, 0)), fd));
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(0, 1 << 21, 0x7000_0000L, 0)), fd),
                "larger than the file");
    }

    // §7 #57 / §1.4: ADD_MEM_REG carries exactly one fd.
    @Test
    void addMemRegRequiresExactlyOneFd() throws Exception {
        negotiateWithReplyAck(SLOTS);
        Msg.Region r = fe.ram().region(0);
        int fd = fe.ram().fd();
        assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(r)), "no fd");
        assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(r), fd, fd), "two fds");
    }

    // QEMU with CONFIGURE_MEM_SLOTS (qemu-guest-testing.md §8.3): ADD_MEM_REG per region instead of SET_MEM_TABLE
    // builds the same table; rings in both regions run.
    @Test
    void addMemRegPerRegionBuildsATableRingsRunOn() throws Exception {
        try (GuestRam ram = GuestRam.splitLikeQ35(1 << 20)) {
            fe.useRam(ram);
            fe.setProtocolFeatures(REPLY_ACK | SLOTS);
            fe.setOwner();
            fe.setFeatures(fe.getFeatures() & (F_VERSION_1 | F_PROTOCOL_FEATURES));
            for (Msg.Region r : ram.regions()) {
                fe.addMemReg(r, ram.fd());
            }
            FrontendQueue q0 = fe.queue(0, 16, 0);
            FrontendQueue q1 = fe.queue(1, 16, 1);
            runningQueue(0);
            runningQueue(1);
            roundTrip(q0, "low");
            roundTrip(q1, "high");
            fe.close();
            fe = null;
        }
    }

    // §7 #57 / §4.2: REM_MEM_REG matches GPA + UVA + size and ignores mmap_offset.
    @Test
    void remMemRegMatchesGpaUserAddressAndSizeIgnoringMmapOffset() throws Exception {
        negotiateWithReplyAck(SLOTS);
        Msg.Region r = new Msg.Region(0x4000_0000L, 1 << 16, 0x6000_0000_0000L, 1 << 16);
        fe.addMemReg(r, fe.ram().fd());
        assertEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(new Msg.Region(r.gpa(), r.size(), r.uva(), 0))));
    }

    // §7 #58: REM_MEM_REG of a region that does not exist reports an error.
    @Test
    void remMemRegOfARegionThatDoesNotExistFails() throws Exception {
        negotiateWithReplyAck(SLOTS);
        Msg.Region r = fe.ram().region(0);
        assertNotEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(new Msg.Region(r.gpa(), r.size(), r.uva() + 4096, 0))),
                "user address differs");
        assertNotEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(new Msg.Region(r.gpa(), r.size() / 2, r.uva(), 0))),
                "size differs");
        assertEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(r)));
        assertNotEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(r)), "already removed");
    }

    // §7 #11 / §1.4: REM_MEM_REG with one fd is accepted (old front-ends) and the fd closed unused; two are refused.
    @Test
    void remMemRegWithOneFdIsAcceptedAndTheFdClosed() throws Exception {
        negotiateWithReplyAck(SLOTS);
        int fd = fe.ram().fd();
        MemoryMapper mapper = MemoryMapper.system();
        int probe = mapper.createMemoryFile("rem-mem-reg-probe", 4096);
        try {
            Msg.Region r = new Msg.Region(0x4000_0000L, 1 << 16, 0x6000_0000_0000L, 0);
            for (int i = 0; i < 50; i++) {
                fe.addMemReg(r, fd);
                assertEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(r), probe));
            }
            fe.sync(); // the back-end closes a message's fds after its reply: the next request orders that
            assertEquals(1, openFdsNamed("rem-mem-reg-probe"), "only the test's own copy is open");
            fe.addMemReg(r, fd);
            assertNotEquals(0, fe.ack(REM_MEM_REG, Msg.singleRegion(r), probe, probe));
            fe.sync();
            assertEquals(1, openFdsNamed("rem-mem-reg-probe"));
        } finally {
            mapper.close(probe);
        }
    }

    // §7 #59: ADD_MEM_REG beyond GET_MAX_MEM_SLOTS is rejected.
    @Test
    void addMemRegBeyondMaxMemSlotsIsRejected() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK | SLOTS);
        int slots = (int) fe.getMaxMemSlots();
        assertEquals(VhostUserSession.MAX_MEM_SLOTS, slots);
        MemoryMapper mapper = MemoryMapper.system();
        int fd = mapper.createMemoryFile("slots", 4096L * (slots + 1));
        try {
            for (int i = 0; i < slots; i++) {
                fe.addMemReg(new Msg.Region(4096L * i, 4096, 0x5000_0000_0000L + 4096L * i, 4096L * i), fd);
            }
            long i = slots;
            assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(new Msg.Region(4096L * i, 4096,
                    0x5000_0000_0000L + 4096L * i, 4096L * i)), fd));
        } finally {
            mapper.close(fd);
        }
    }

    // §7 #59 companion / §4.2: an added region overlapping an existing one is rejected.
    @Test
    void addMemRegOverlappingAnExistingRegionIsRejected() throws Exception {
        negotiateWithReplyAck(SLOTS);
        Msg.Region r = fe.ram().region(0);
        assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(new Msg.Region(r.gpa() + 4096, 4096,
                0x6000_0000_0000L, 0)), fe.ram().fd()));
    }
}
