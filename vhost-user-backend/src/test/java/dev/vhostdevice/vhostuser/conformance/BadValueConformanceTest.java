package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * One front-end-controlled bad value per test: the defined answer (failure ack, failure reply form, or close),
 * then proof that the connection keeps serving and that every fd the message carried was closed.
 */
class BadValueConformanceTest extends ConformanceBase {
    static final long CONFIG = ProtocolFeature.CONFIG.mask();
    static final long LOG = ProtocolFeature.LOG_SHMFD.mask();
    static final long INFLIGHT = ProtocolFeature.INFLIGHT_SHMFD.mask();
    static final long SLOTS = ProtocolFeature.CONFIGURE_MEM_SLOTS.mask();
    static final long STATUS = ProtocolFeature.STATUS.mask();
    static final long DEVICE_STATE = ProtocolFeature.DEVICE_STATE.mask();
    /** Memfd name of the fds sent here, so each copy still open in this process can be counted. */
    static final String PROBE = "bad-value-probe";
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemoryMapper mapper = MemoryMapper.system();
    private final Linux linux = Linux.system();
    private int probe = -1;

    @Override
    boolean withState() {
        return true;
    }

    @AfterEach
    void closeProbe() {
        if (probe >= 0) {
            linux.close(probe);
        }
    }

    /** A named memfd of {@code size} bytes: the test's own copy is the one expected to stay open. */
    private int probe(long size) throws Exception {
        probe = mapper.createMemoryFile(PROBE, size);
        return probe;
    }

    /** After a barrier (the back-end closes a message's fds once it is handled): only the test's copy is open. */
    private void assertProbeFdsClosed() throws Exception {
        fe.sync();
        assertEquals(1, openFdsNamed(PROBE), "every copy of the probe fd the back-end received was closed");
    }

    private void assertServes(String why) throws Exception {
        assertNotEquals(0, fe.getFeatures(), "the connection still serves after " + why);
    }

    // ---------------------------------------------------------------------------------------- fds

    // §1.4 "Per-message fd cap" (8): a message with 9-16 fds is refused, every fd closed, the connection stays.
    @Test
    void moreThanEightFdsInOneMessageAreRefusedAndAllClosed() throws Exception {
        negotiateWithReplyAck(0);
        int fd = probe(4096);
        for (int n = 9; n <= 16; n++) {
            int[] fds = new int[n];
            Arrays.fill(fds, fd);
            assertNotEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0), fds), n + " fds");
            assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(java.util.Collections.nCopies(n,
                    new Msg.Region(0, 4096, 0x7000_0000L, 0))), fds), n + " regions with " + n + " fds");
        }
        assertProbeFdsClosed();
        roundTrip(runningQueue(0), "after too many fds");
    }

    // ---------------------------------------------------------------------------------------- rings

    // §2.1 SET_VRING_ENABLE (num 0/1) and §6.1 step 4: num = 2 is refused; the ring still works afterwards.
    @Test
    void setVringEnableWithAValueOtherThanZeroOrOneIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.startQueue(0, 16, 0);
        assertNotEquals(0, fe.ack(SET_VRING_ENABLE, Msg.vringState(0, 2)));
        q.post("not yet", 64);
        q.kick();
        assertNull(pollUsed(q), "num = 2 did not enable the ring");
        fe.setVringEnable(0, true);
        assertEquals("tey ton", q.awaitUsed(WAIT).text());
    }

    private FrontendQueue.Completion pollUsed(FrontendQueue q) {
        try {
            return q.awaitUsed(QUIET);
        } catch (AssertionError none) {
            return null;
        }
    }

    // §2.1 SET_VRING_KICK + §4.1 Start ("With NOFD on the kick, the back-end polls"): polling is not supported,
    // so a NOFD kick is refused and a later kick fd starts the ring.
    @Test
    void aNofdKickIsRefusedBecausePollingIsNotSupported() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        fe.setVringBase(0, 0);
        fe.setVringAddr(q);
        assertNotEquals(0, fe.ack(SET_VRING_KICK, Msg.u64(0 | Msg.NOFD)));
        fe.setVringKick(0, q.kickFd());
        fe.setVringCall(0, q.callFd());
        fe.setVringEnable(0, true);
        roundTrip(q, "kick fd after NOFD");
    }

    // §1.3 split vring base: bits 16-31 of num are reserved 0; a base above 0xFFFF is refused.
    @Test
    void setVringBaseAboveSixteenBitsIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        fe.setVringNum(0, 16);
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 0x1_0000)));
        assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, -1)));
        roundTrip(runningQueue(0), "base 0 after a refused base");
    }

    // §7 #10 / §2.1: an index beyond the device's queues is refused on SET_VRING_BASE and SET_VRING_ADDR; GET_VRING_BASE
    // answers with its own reply form (index echoed, num 0) so the front-end is not left waiting.
    @Test
    void anOutOfRangeVringIndexIsRefusedOnBaseAddressAndGetBase() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        for (int index : new int[] {2, 255, 0x1_0000, -1}) {
            assertNotEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(index, 0)), "SET_VRING_BASE " + index);
            assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(index, 0, q.descUva(), q.usedUva(),
                    q.availUva(), 0)), "SET_VRING_ADDR " + index);
            Reply r = fe.call(GET_VRING_BASE, Msg.vringState(index, 0));
            assertEquals(8, r.body().length, "GET_VRING_BASE " + index + " answers a vring state");
            assertEquals(index, r.u32(0));
            assertEquals(0, r.u32(4));
        }
        roundTrip(runningQueue(0), "out-of-range indices");
    }

    // §1.3 vring address (flags bit 0 = VHOST_VRING_F_LOG only) / §6.1 step 4: unknown flags are refused.
    @Test
    void setVringAddrWithUnknownFlagsIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        for (int flags : new int[] {0x2, 0x8000_0000, 0x3}) {
            assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, flags, q.descUva(), q.usedUva(),
                    q.availUva(), 0)), "flags 0x" + Integer.toHexString(flags));
        }
        roundTrip(runningQueue(0), "unknown flags");
    }

    // §4.2 "Range lookups are half-open" / §7 #44: a ring that starts inside a region but runs past its end is refused.
    @Test
    void setVringAddrWithARingStraddlingTheRegionEndIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = fe.queue(0, 16);
        fe.setVringNum(0, 16);
        Msg.Region r = fe.ram().region(0);
        long end = r.uva() + r.size();
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, end - 128, q.usedUva(), q.availUva(), 0)),
                "descriptor table (256 bytes) straddles the end");
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), end - 4, q.availUva(), 0)),
                "used ring straddles the end");
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), q.usedUva(), end - 2, 0)),
                "available ring straddles the end");
        roundTrip(runningQueue(0), "straddling rings");
    }

    // §4.1 "On-the-fly changes" (SET_VRING_ADDR for the logging flag): while the ring runs, new ring addresses are
    // refused and the ring keeps running on the old ones; the same addresses are accepted.
    @Test
    void setVringAddrMovingTheRingsWhileTheRingRunsIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "before");
        long moved = fe.ram().allocate(4096, 4096);
        long movedUva = fe.ram().uva(moved);
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, movedUva, q.usedUva(), q.availUva(), 0)));
        roundTrip(q, "still on the old rings");
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), q.usedUva(), q.availUva(), 0)),
                "the same addresses are fine");
        roundTrip(q, "after");
    }

    // ---------------------------------------------------------------------------------------- config

    // §2.1 GET_CONFIG (error: zero-length payload) / §7 #23: size 0, a size beyond the config space or an offset near
    // 2^32 (no 32-bit wrap) each get the error form, and the connection stays.
    @Test
    void getConfigWithAZeroOversizedOrWrappingWindowGetsTheZeroLengthError() throws Exception {
        negotiateWithReplyAck(CONFIG);
        assertNull(fe.getConfig(0, 0), "size 0");
        assertNull(fe.getConfig(0, 256), "size above the config space");
        assertNull(fe.getConfig(0, 4000), "size above any config space");
        assertNull(fe.getConfig(0xFFFF_FFFC, 8), "offset + size wraps 32 bits");
        assertNull(fe.getConfig(0xFFFF_FFFF, 1), "offset 2^32 - 1");
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, fe.getConfig(0, 8));
    }

    // §2.1 SET_CONFIG ("must check flags"; §1.3 config space: flags 0 or 1) and ranges: bad flags, size 0, an
    // oversized or wrapping window are refused and change nothing.
    @Test
    void setConfigWithBadFlagsOrABadWindowIsRefused() throws Exception {
        negotiateWithReplyAck(CONFIG);
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(6, 2, new byte[] {9, 9})), "flags 2");
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(6, 0x8000_0000, new byte[] {9, 9})), "flags 2^31");
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(0, 1, new byte[0])), "size 0");
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(0, 1, new byte[300])), "size above the config space");
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(0xFFFF_FFFE, 1, new byte[] {9, 9, 9, 9})),
                "offset + size wraps 32 bits");
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, fe.getConfig(0, 8), "nothing written");
    }

    // ---------------------------------------------------------------------------------------- log

    // §2.1 SET_LOG_BASE ("always a reply" with LOG_SHMFD) / §6.1 step 4 (log: size != 0): mmap_size 0, a negative
    // or unaligned offset, an area beyond the file and a missing fd each get a non-zero reply; fds are closed.
    @Test
    void setLogBaseWithABadAreaOrNoFdGetsAFailureReply() throws Exception {
        negotiateWithReplyAck(LOG);
        int fd = probe(4096);
        long[][] bad = {{0, 0}, {4096, -4096}, {4096, 4}, {4096, 4096}, {1L << 40, 0}, {-4096, 0}};
        for (long[] area : bad) {
            Reply r = fe.call(SET_LOG_BASE, Msg.logArea(area[0], area[1]), fd);
            assertNotEquals(0, r.u64(), "size 0x" + Long.toHexString(area[0]) + " offset 0x" + Long.toHexString(area[1]));
        }
        assertNotEquals(0, fe.call(SET_LOG_BASE, Msg.logArea(4096, 0)).u64(), "no fd");
        assertProbeFdsClosed();
        assertEquals(0, fe.call(SET_LOG_BASE, Msg.logArea(4096, 0), fd).u64(), "a good area is taken");
    }

    // §1.4 fd table (SET_LOG_FD: 1 fd) / §2.1: SET_LOG_FD without an fd is refused.
    @Test
    void setLogFdWithoutAnFdIsRefused() throws Exception {
        negotiateWithReplyAck(LOG);
        assertNotEquals(0, fe.ack(SET_LOG_FD, Msg.EMPTY));
        assertServes("SET_LOG_FD without fd");
        FrontendQueue q = fe.queue(0, 16);
        assertEquals(0, fe.ack(SET_LOG_FD, Msg.EMPTY, q.errFd()));
    }

    // ---------------------------------------------------------------------------------------- inflight

    // §4.5 "mmap_size = 0 and no fd means not supported" / §6.1 step 4 (inflight: num_queues != 0): GET_INFLIGHT_FD
    // for 0 queues (or a bad queue size) answers mmap_size 0 without an fd.
    @Test
    void getInflightFdForZeroQueuesAnswersSizeZeroWithoutAnFd() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        for (int[] p : new int[][] {{0, 16}, {2, 0}, {2, 3}, {0xFFFF, 0x8000 * 2 - 1}}) {
            Reply r = fe.getInflightFd(p[0], p[1]);
            assertEquals(24, r.body().length);
            assertEquals(0, r.u64(0), "mmap_size for " + p[0] + " queues of " + p[1]);
            assertEquals(-1, r.fd(), "no fd");
        }
        Reply good = fe.getInflightFd(2, 16);
        assertTrue(good.u64(0) > 0 && good.fd() >= 0);
    }

    // §2.1 SET_INFLIGHT_FD / §6.1 step 4: mmap_size below the need, num_queues or queue_size 0 or not a ring size,
    // a negative offset, a window beyond the file and a missing fd are each refused; fds are closed.
    @Test
    void setInflightFdWithBadParametersOrNoFdIsRefused() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        long need = fe.getInflightFd(2, 16).u64(0);
        // The least taken is the split layout's (libvhost-user's stride), so a buffer handed out before packed
        // regions existed still works; GET_INFLIGHT_FD hands out more when packed rings are offered.
        long splitNeed = 2 * ((16L * 16 + 2 + 63) & ~63L);
        assertTrue(need >= splitNeed);
        int fd = probe(1 << 16);
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(splitNeed - 1, 0, 2, 16), fd), "mmap_size too small");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(0, 0, 2, 16), fd), "mmap_size 0");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 0, 0, 16), fd), "0 queues");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 0, 2, 0), fd), "queue size 0");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 0, 2, 3), fd), "queue size 3");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, -4096, 2, 16), fd), "negative offset");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 1L << 40, 2, 16), fd), "beyond the file");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 0, 2, 16)), "no fd");
        assertProbeFdsClosed();
        assertEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(need, 0, 2, 16), fd), "good parameters are taken");
        roundTrip(runningQueue(0), "refused inflight buffers");
    }

    /** GET_INFLIGHT_FD(2, 16), the buffer mapped here so the test can write hostile contents. */
    private record Inflight(int fd, long size, GuestMemory view) implements AutoCloseable {
        MemorySegment queue0() {
            return view.region(0).segment();
        }

        @Override
        public void close() {
            view.close();
        }
    }

    private Inflight inflightBuffer() throws Exception {
        Reply r = fe.getInflightFd(2, 16);
        long size = r.u64(0);
        return new Inflight(r.fd(), size, GuestMemory.builder(mapper).mapFile(0, size, r.fd(), 0).build());
    }

    /** Queue 0's region header as a previous back-end of this layout would have left it. */
    private static void header(MemorySegment q, int lastBatchHead, int usedIdx) {
        q.set(U16, 8, (short) 1);
        q.set(U16, 10, (short) 16);
        q.set(U16, 12, (short) lastBatchHead);
        q.set(U16, 14, (short) usedIdx);
    }

    private static void inFlight(MemorySegment q, int head, long counter) {
        q.set(ValueLayout.JAVA_BYTE, 16 + 16L * head, (byte) 1);
        q.set(U64, 16 + 16L * head + 8, counter);
    }

    // §4.5 "On reconnect" (clear inflight along the last batch): a last_batch_head >= desc_num is ignored; the ring
    // starts and serves, the worker survives.
    @Test
    void anInflightLastBatchHeadBeyondDescNumIsIgnoredAndTheRingStarts() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        try (Inflight b = inflightBuffer()) {
            header(b.queue0(), 0xFFFF, 9); // used_idx != used->idx: the repair path reads last_batch_head
            fe.setInflightFd(b.fd(), b.size(), 0, 2, 16);
            FrontendQueue q = runningQueue(0);
            roundTrip(q, "after a hostile last batch");
            roundTrip(runningQueue(1), "the other queue");
        }
    }

    // §4.5 split queue region (one DescStateSplit per descriptor of the ring): an entry for a head >= the ring size
    // cannot be a request of this ring; it is not resubmitted and not counted, so the ring serves from avail 0.
    @Test
    void anInflightEntryForAHeadBeyondTheRingSizeIsNotResubmitted() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        try (Inflight b = inflightBuffer()) {
            header(b.queue0(), 0, 0);
            inFlight(b.queue0(), 12, 1);
            fe.setInflightFd(b.fd(), b.size(), 0, 2, 16);
            FrontendQueue q = fe.startQueue(0, 8, 0); // ring of 8 in a buffer of 16 per queue
            fe.setVringEnable(0, true);
            roundTrip(q, "head 12 is not on a ring of 8");
            assertEquals(1, device().handled.get(), "nothing but the front-end's request was handled");
            roundTrip(runningQueue(1), "the other queue");
        }
    }

    // §4.5 "resubmit every desc with inflight = 1 in ascending counter order" (counter u64): huge counters (top
    // bits set) keep their order and do not throw; the ring resubmits both and keeps serving.
    @Test
    void hugeInflightCountersAreResubmittedInAscendingOrder() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        try (Inflight b = inflightBuffer()) {
            FrontendQueue q = fe.queue(0, 16);
            int first = q.post("first", 64);
            int second = q.post("second", 64);
            header(b.queue0(), 0, 0);
            inFlight(b.queue0(), first, 0xC000_0000_0000_0000L); // the later submission (unsigned)
            inFlight(b.queue0(), second, 1L << 62);
            fe.setInflightFd(b.fd(), b.size(), 0, 2, 16);
            fe.startQueue(0, 16, 0);
            fe.setVringEnable(0, true);
            FrontendQueue.Completion c1 = q.awaitUsed(WAIT);
            FrontendQueue.Completion c2 = q.awaitUsed(WAIT);
            assertEquals(second, c1.head(), "the smaller counter is resubmitted first");
            assertEquals(first, c2.head());
            roundTrip(q, "after resubmission");
            roundTrip(runningQueue(1), "the other queue");
        }
    }

    // ---------------------------------------------------------------------------------------- memory

    // §1.3 single region (ADD/REM_MEM_REG: 40 bytes) / §7 #7: any other payload size is refused, its fd closed.
    @Test
    void addAndRemMemRegWithAPayloadOtherThanFortyBytesAreRefused() throws Exception {
        negotiateWithReplyAck(SLOTS);
        int fd = probe(1 << 16);
        byte[] region = Msg.singleRegion(new Msg.Region(0x1000_0000L, 4096, 0x7100_0000_0000L, 0));
        for (int size : new int[] {0, 32, 39, 41, 48}) {
            byte[] payload = Arrays.copyOf(region, size);
            assertNotEquals(0, fe.ack(ADD_MEM_REG, payload, fd), "ADD_MEM_REG of " + size + " bytes");
            assertNotEquals(0, fe.ack(REM_MEM_REG, payload), "REM_MEM_REG of " + size + " bytes");
        }
        assertProbeFdsClosed();
        roundTrip(runningQueue(0), "bad region payloads");
    }

    // §4.2 "Validation worth doing" / §7 #56: ADD_MEM_REG of a zero-size region, or one whose GPA, UVA or file
    // offset + size wraps, is refused; its fd is closed.
    @Test
    void addMemRegOfAZeroSizeOrWrappingRegionIsRefused() throws Exception {
        negotiateWithReplyAck(SLOTS);
        int fd = probe(1 << 16);
        long gpa = 0x1000_0000L;
        long uva = 0x7100_0000_0000L;
        Msg.Region[] bad = {
            new Msg.Region(gpa, 0, uva, 0),
            new Msg.Region(-4096L, 8192, uva, 0),
            new Msg.Region(gpa, 8192, -4096L, 0),
            new Msg.Region(gpa, 8192, uva, -4096L),
            new Msg.Region(gpa, -4096L, uva, 0),
        };
        for (Msg.Region r : bad) {
            assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(r), fd), r.toString());
        }
        assertProbeFdsClosed();
        roundTrip(runningQueue(0), "bad regions");
    }

    // §4.2 "Validation worth doing" (padding zero; no overflow of offset + size): SET_MEM_TABLE with a wrapping
    // mmap_offset is refused, its fd closed, and the old table stays in force.
    @Test
    void setMemTableWithAWrappingMmapOffsetIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        int fd = probe(1 << 16);
        Msg.Region r = fe.ram().region(0);
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(r.gpa(), 8192, r.uva(), -4096L)), fd));
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, Msg.memTable(new Msg.Region(r.gpa(), 8192, r.uva(),
                Long.MAX_VALUE - 4095)), fd));
        assertProbeFdsClosed();
        roundTrip(q, "the old table is still in force");
    }

    // §1.3 memory table (nregions u32, padding u32) / §4.2 "Validation worth doing" (padding zero): a table with
    // non-zero padding is refused, its fd closed.
    @Test
    void setMemTableWithNonZeroPaddingIsRefused() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        int fd = probe(1 << 16);
        Msg.Region r = fe.ram().region(0);
        byte[] table = Msg.memTable(new Msg.Region(r.gpa(), 8192, r.uva(), 0));
        table[4] = 1;
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, table, fd));
        assertProbeFdsClosed();
        roundTrip(q, "the old table is still in force");
    }

    // ---------------------------------------------------------------------------------------- status, state

    // §4.7 SET_STATUS ("the u64 carries the virtio status byte"): a value above 0xFF is refused and GET_STATUS is
    // unchanged.
    @Test
    void setStatusAboveOneByteIsRefused() throws Exception {
        negotiateWithReplyAck(STATUS);
        fe.setStatus(1);
        assertNotEquals(0, fe.ack(SET_STATUS, Msg.u64(0x100)));
        assertNotEquals(0, fe.ack(SET_STATUS, Msg.u64(0x1_0000_0001L)));
        assertEquals(1, fe.getStatus());
    }

    // §2.1 SET_DEVICE_STATE_FD (1 fd) / §4.6 step 3: without an fd the reply is an error with no fd (0x101).
    @Test
    void setDeviceStateFdWithoutAnFdGetsAnErrorAndNoFd() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE);
        Reply r = fe.call(SET_DEVICE_STATE_FD, Msg.deviceStateTransfer(0, 0));
        assertNotEquals(0, r.u64() & 0xFF, "error");
        assertEquals(-1, r.fd());
        assertServes("SET_DEVICE_STATE_FD without fd");
    }

    // §4.6 (one transfer at a time; "never an error together with an fd"): a second SET_DEVICE_STATE_FD while a
    // transfer runs is refused, its fd closed, and the running transfer completes undisturbed.
    @Test
    void setDeviceStateFdWhileATransferRunsIsRefusedAndTheFirstCompletes() throws Exception {
        negotiateWithReplyAck(DEVICE_STATE | CONFIG);
        int[] first = linux.socketPair();
        int[] second = linux.socketPair();
        try {
            assertEquals(0, fe.setDeviceStateFd(1, 0, first[1]).u64() & 0xFF);
            linux.close(first[1]);
            first[1] = -1;
            String secondLink = Files.readSymbolicLink(Path.of("/proc/self/fd/" + second[1])).toString();
            Reply refused = fe.setDeviceStateFd(0, 0, second[1]);
            assertNotEquals(0, refused.u64() & 0xFF, "a second transfer while one runs");
            assertEquals(-1, refused.fd());
            fe.sync();
            assertEquals(1, openFdsNamed(secondLink), "the refused transfer's fd was closed");
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment data = arena.allocate(8);
                MemorySegment.copy(new byte[] {8, 7, 6, 5, 4, 3, 2, 1}, 0, data, ValueLayout.JAVA_BYTE, 0, 8);
                linux.write(first[0], data, 8);
            }
            linux.close(first[0]);
            first[0] = -1;
            assertEquals(0, fe.checkDeviceState(), "the first transfer completed");
            assertArrayEquals(new byte[] {8, 7, 6, 5, 4, 3, 2, 1}, fe.getConfig(0, 8));
        } finally {
            for (int fd : new int[] {first[0], first[1], second[0], second[1]}) {
                linux.close(fd);
            }
        }
    }
}
