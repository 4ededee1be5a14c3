package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_LOG_ALL;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.Fds;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.frontend.RingLayout;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** Dirty logging and the inflight buffer (spec §4.3, §4.5; checklist 21, 61-67). */
class LogInflightConformanceTest extends ConformanceBase {
    static final long LOG = ProtocolFeature.LOG_SHMFD.mask();
    static final long INFLIGHT = ProtocolFeature.INFLIGHT_SHMFD.mask();
    static final int LOG_BYTES = 4096; // covers 128 MiB of GPA space

    private final MemoryMapper mapper = MemoryMapper.system();

    /** A log memfd mapped here too, so the test reads the bits the back-end sets. */
    record Log(int fd, GuestMemory view) implements AutoCloseable {
        boolean page(long gpa) {
            long page = gpa / 4096;
            byte b = view.region(0).segment().get(ValueLayout.JAVA_BYTE, page / 8);
            return (b & (1 << (page % 8))) != 0;
        }

        void clear() {
            view.region(0).segment().fill((byte) 0);
        }

        boolean any() {
            MemorySegment s = view.region(0).segment();
            for (long i = 0; i < s.byteSize(); i++) {
                if (s.get(ValueLayout.JAVA_BYTE, i) != 0) {
                    return true;
                }
            }
            return false;
        }

        @Override
        public void close() {
            view.close();
            Linux.system().close(fd);
        }
    }

    static Log newLog() throws Exception {
        MemoryMapper mapper = MemoryMapper.system();
        int fd = mapper.createMemoryFile("dirty-log", LOG_BYTES);
        return new Log(fd, GuestMemory.builder(mapper).mapFile(0, LOG_BYTES, fd, 0).build());
    }

    // §7 #21 / §2.1 SET_LOG_BASE: with LOG_SHMFD it always gets a reply (a u64), NEED_REPLY or not.
    @Test
    void setLogBaseAlwaysGetsAReply() throws Exception {
        negotiateWithReplyAck(LOG);
        try (Log log = newLog()) {
            Reply r = fe.setLogBase(log.fd(), LOG_BYTES, 0);
            assertEquals(SET_LOG_BASE.code(), r.request());
            assertEquals(0, r.u64());
        }
    }

    // §7 #61 + #65 / §4.3: with LOG_ALL acked each page the back-end writes is marked, and the log fd signalled.
    @Test
    void withLogAllEveryWrittenPageIsMarkedAndTheLogFdSignalled() throws Exception {
        long features = negotiateWithReplyAck(LOG);
        try (Log log = newLog()) {
            FrontendQueue q = runningQueue(0);
            fe.setLogBase(log.fd(), LOG_BYTES, 0);
            fe.setLogFd(q.errFd()); // any eventfd will do
            fe.setFeatures(features | F_LOG_ALL);
            long out = fe.ram().allocate(8192, 4096) + 4096; // a page of its own
            long in = fe.ram().allocate(16, 8);
            q.driver().write(in, "dirty".getBytes());
            q.post(dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable(in, 5),
                    dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable(out, 16));
            q.kick();
            assertEquals("ytrid", q.awaitUsed(WAIT).text());
            assertTrue(Fds.awaitEventfd(q.errFd(), WAIT) > 0, "log fd signalled");
            assertTrue(log.page(out), "the written buffer's page is dirty");
            assertTrue(!log.page(out + 4096) && !log.page(out - 4096), "neighbouring pages are not");
        }
    }

    // §7 #62 / §4.3: used-ring writes of a ring with VHOST_VRING_F_LOG are logged at log_guest_addr + offset.
    @Test
    void usedRingWritesAreLoggedAtLogGuestAddr() throws Exception {
        long features = negotiateWithReplyAck(LOG);
        try (Log log = newLog()) {
            FrontendQueue q = runningQueue(0);
            long logGuestAddr = 0x40_0000; // 4 MiB: outside RAM, as log_guest_addr may be
            fe.request(SET_VRING_ADDR, Msg.vringAddr(0, 1, q.descUva(), q.usedUva(), q.availUva(), logGuestAddr));
            fe.setLogBase(log.fd(), LOG_BYTES, 0);
            fe.setFeatures(features | F_LOG_ALL);
            roundTrip(q, "logged");
            assertTrue(log.page(logGuestAddr), "used ring logged at log_guest_addr");
        }
    }

    // §7 #63 / §4.3: after SET_FEATURES without LOG_ALL no further bits are set.
    @Test
    void afterSetFeaturesWithoutLogAllNothingIsLogged() throws Exception {
        long features = negotiateWithReplyAck(LOG);
        try (Log log = newLog()) {
            FrontendQueue q = runningQueue(0);
            fe.setLogBase(log.fd(), LOG_BYTES, 0);
            fe.setFeatures(features | F_LOG_ALL);
            roundTrip(q, "on");
            assertTrue(log.any());
            fe.setFeatures(features);
            log.clear();
            roundTrip(q, "off");
            assertTrue(!log.any(), "logging stopped with LOG_ALL cleared");
        }
    }

    // §7 #64 / §4.3: a second SET_LOG_BASE switches to the new log.
    @Test
    void aSecondSetLogBaseSwitchesToTheNewLog() throws Exception {
        long features = negotiateWithReplyAck(LOG);
        try (Log first = newLog(); Log second = newLog()) {
            FrontendQueue q = runningQueue(0);
            fe.setLogBase(first.fd(), LOG_BYTES, 0);
            fe.setFeatures(features | F_LOG_ALL);
            roundTrip(q, "one");
            fe.setLogBase(second.fd(), LOG_BYTES, 0);
            first.clear();
            roundTrip(q, "two");
            assertTrue(second.any(), "the new log is written");
            assertTrue(!first.any(), "the old one is not");
        }
    }

    // §7 #66 / §4.5: GET_INFLIGHT_FD returns an fd plus mmap_size >= num_queues x per-queue size, zero-filled.
    @Test
    void getInflightFdReturnsAZeroFilledBufferLargeEnoughForEveryQueue() throws Exception {
        negotiateWithReplyAck(INFLIGHT);
        Reply r = fe.getInflightFd(2, 64);
        long size = r.u64(0);
        assertTrue(size >= 2L * (16 + 16 * 64), "mmap_size " + size);
        assertEquals(0, r.u64(8), "mmap_offset");
        assertTrue(r.fd() >= 0, "an fd came with the reply");
        assertTrue(mapper.fileSize(r.fd()) >= size);
        try (GuestMemory view = GuestMemory.builder(mapper).mapFile(0, size, r.fd(), 0).build()) {
            MemorySegment s = view.region(0).segment();
            for (long i = 0; i < size; i++) {
                assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i));
            }
        }
    }

    // §7 #67 / §4.5: after a back-end dies with requests in flight, the next back-end given the same inflight
    // buffer (SET_INFLIGHT_FD before the rings start) resubmits them, and nothing is lost or done twice.
    @Test
    void requestsInFlightWhenTheBackendDiedAreResubmittedByTheNextOne() throws Exception {
        try (GuestRam ram = GuestRam.single(1 << 20)) {
            fe.useRam(ram);
            long features = negotiateWithReplyAck(INFLIGHT);
            Reply inflight = fe.getInflightFd(2, 16);
            int inflightFd = inflight.fd();
            long size = inflight.u64(0);
            fe.setInflightFd(inflightFd, size, 0, 2, 16);
            FrontendQueue q = runningQueue(0);
            roundTrip(q, "done");
            device().hold = true;
            device().crashOnStop = true;
            q.post("lost1", 16);
            q.post("lost2", 16);
            q.kick();
            awaitTrue(() -> device().held.get() == 2, "two requests in flight");
            // The front-end keeps the inflight fd and guest RAM across the back-end's death.
            TestFrontend old = fe;
            FrontendQueue oldQ = q;
            fe = TestFrontend.connect(server.socketPath()).timeout(WAIT); // queued until the old session ends
            // Simulate the crash: the old connection goes away without GET_VRING_BASE.
            int dupInflight = dup(inflightFd);
            int kick = dup(oldQ.kickFd());
            old.close();
            try {
                fe.useRam(ram);
                fe.setProtocolFeatures(REPLY_ACK | INFLIGHT);
                fe.setOwner();
                fe.setFeatures(features);
                fe.setMemTable();
                fe.setInflightFd(dupInflight, size, 0, 2, 16);
                FrontendQueue nq = fe.queue(0, 16);
                // same rings as before: the guest did not notice the back-end restart
                fe.request(SET_VRING_NUM, Msg.vringState(0, 16));
                fe.request(SET_VRING_BASE, Msg.vringState(0, oldQ.usedIdx()));
                fe.request(SET_VRING_ADDR, Msg.vringAddr(0, 0, oldQ.descUva(), oldQ.usedUva(), oldQ.availUva(), 0));
                fe.setVringKick(0, kick);
                fe.setVringCall(0, nq.callFd());
                fe.setVringEnable(0, true);
                oldQ.awaitUsedIdx(3, WAIT);
                assertEquals(2, device().handled.get(), "the new device handled exactly the two lost requests");
                assertEquals(3, oldQ.usedIdx());
            } finally {
                Linux.system().close(dupInflight);
                Linux.system().close(kick);
            }
        }
    }

    // packed-ring.md §5.4: the same on a packed ring, from the descriptors copied into the packed region. The
    // held buffers' ring slots are scribbled over (as used descriptors of other buffers would overwrite them) and
    // the front-end restores a stale base: only the region can bring them back, and it does, in fetch order.
    @Test
    void packedRequestsInFlightWhenTheBackendDiedAreResubmittedInOrderFromTheRegion() throws Exception {
        try (GuestRam ram = GuestRam.single(1 << 20)) {
            fe.close();
            fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED).useRam(ram);
            long features = negotiateWithReplyAck(INFLIGHT);
            Reply inflight = fe.getInflightFd(2, 16);
            long size = inflight.u64(0);
            assertTrue(size >= 2L * (32 + 32 * 16), "room for two packed regions: mmap_size " + size);
            PackedCrash crash = crashWithTwoHeld(ram, features, inflight.fd(), size);
            try {
                FrontendQueue oldQ = crash.queue();
                scribble(ram, oldQ, 2, 6); // slots 2..5 held lost1 and lost2
                restart(ram, features, crash, RingLayout.PACKED.baseAfter(1, 2, 16));
                assertEquals("1tsol", oldQ.awaitUsed(WAIT).text(), "the first fetched first");
                assertEquals("2tsol", oldQ.awaitUsed(WAIT).text());
                assertEquals(2, device().handled.get(), "the new device handled exactly the two lost requests");
                assertEquals(RingLayout.PACKED.baseAfter(3, 2, 16), fe.getVringBase(0), "avail resumed past them");
            } finally {
                crash.close();
            }
        }
    }

    // A hostile front-end's packed region: every entry claims to be in flight with nonsense lists, counts, ids and
    // counters. The new back-end drops what does not hold together, serves on and keeps the connection.
    @Test
    void aGarbagePackedRegionIsSurvivedAndTheConnectionServesOn() throws Exception {
        try (GuestRam ram = GuestRam.single(1 << 20)) {
            fe.close();
            fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED).useRam(ram);
            long features = negotiateWithReplyAck(INFLIGHT);
            Reply inflight = fe.getInflightFd(2, 16);
            long size = inflight.u64(0);
            PackedCrash crash = crashWithTwoHeld(ram, features, inflight.fd(), size);
            try (GuestMemory view = GuestMemory.builder(mapper).mapFile(0, size, crash.inflightFd(), 0).build()) {
                MemorySegment region = view.region(0).segment();
                java.util.Random random = new java.util.Random(14);
                for (int e = 0; e < 16; e++) {
                    long at = 32 + 32L * e;
                    region.set(ValueLayout.JAVA_BYTE, at, (byte) 1);
                    region.set(U16, at + 2, (short) random.nextInt(1 << 16)); // next
                    region.set(U16, at + 4, (short) random.nextInt(1 << 16)); // last
                    region.set(U16, at + 6, (short) (e % 3 == 0 ? 1 : random.nextInt(1 << 16))); // num
                    region.set(U64, at + 8, random.nextLong()); // counter
                    region.set(U16, at + 16, (short) (e % 2)); // ids in flight twice
                    region.set(U16, at + 18, (short) random.nextInt(1 << 16)); // flags
                    region.set(ValueLayout.JAVA_INT_UNALIGNED, at + 20, random.nextInt());
                    region.set(U64, at + 24, random.nextLong());
                }
                region.set(U16, 12, (short) 0xFFFF); // free_head
                region.set(U16, 14, (short) 0xFFFF); // old_free_head
                restart(ram, features, crash, RingLayout.PACKED.baseAfter(1, 2, 16));
                // Nothing in the region holds together: the held requests are fetched again from the ring.
                FrontendQueue oldQ = crash.queue();
                assertEquals("1tsol", oldQ.awaitUsed(WAIT).text());
                assertEquals("2tsol", oldQ.awaitUsed(WAIT).text());
                assertEquals(2, device().handled.get());
                assertNotEquals(0, fe.getFeatures(), "the connection stays");
            } finally {
                crash.close();
            }
        }
    }

    // A buffer of only the split layout's size (the least SET_INFLIGHT_FD takes) has no room for packed regions:
    // the packed ring runs untracked (logged), and serves.
    @Test
    void aPackedRingWithABufferTooSmallForPackedRegionsRunsUntracked() throws Exception {
        fe.close();
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED);
        negotiateWithReplyAck(INFLIGHT);
        long splitSize = 2 * ((16L * 16 + 2 + 63) & ~63L);
        int fd = mapper.createSealedMemoryFile("split-sized-inflight", splitSize);
        try {
            fe.setInflightFd(fd, splitSize, 0, 2, 16);
            FrontendQueue q = runningQueue(0);
            roundTrip(q, "untracked");
            try (GuestMemory view = GuestMemory.builder(mapper).mapFile(0, splitSize, fd, 0).build()) {
                MemorySegment s = view.region(0).segment();
                for (long i = 0; i < splitSize; i++) {
                    assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "nothing written at " + i);
                }
            }
        } finally {
            Linux.system().close(fd);
        }
    }

    private static final ValueLayout.OfShort U16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 =
            ValueLayout.JAVA_LONG_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    /** The old connection's queue and the fds the front-end keeps across the back-end's death. */
    record PackedCrash(FrontendQueue queue, int inflightFd, long size, int kick) implements AutoCloseable {
        @Override
        public void close() {
            Linux.system().close(inflightFd);
            Linux.system().close(kick);
        }
    }

    /** A packed ring with one round trip done, then two requests held when the back-end goes away. */
    private PackedCrash crashWithTwoHeld(GuestRam ram, long features, int inflightFd, long size) throws Exception {
        fe.setInflightFd(inflightFd, size, 0, 2, 16);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "done");
        device().hold = true;
        device().crashOnStop = true;
        q.post("lost1", 16);
        q.post("lost2", 16);
        q.kick();
        awaitTrue(() -> device().held.get() == 2, "two requests in flight");
        TestFrontend old = fe;
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT).layout(RingLayout.PACKED);
        PackedCrash crash = new PackedCrash(q, dup(inflightFd), size, dup(q.kickFd()));
        old.close();
        return crash;
    }

    /** The next back-end: same RAM, rings and inflight buffer, the base {@code base} (stale after a crash). */
    private void restart(GuestRam ram, long features, PackedCrash crash, int base) throws Exception {
        FrontendQueue oldQ = crash.queue();
        fe.useRam(ram);
        fe.setProtocolFeatures(REPLY_ACK | INFLIGHT);
        fe.setOwner();
        fe.setFeatures(features);
        fe.setMemTable();
        fe.setInflightFd(crash.inflightFd(), crash.size(), 0, 2, 16);
        FrontendQueue nq = fe.queue(0, 16);
        fe.request(SET_VRING_NUM, Msg.vringState(0, 16));
        fe.request(SET_VRING_BASE, Msg.vringState(0, base));
        fe.request(SET_VRING_ADDR, Msg.vringAddr(0, 0, oldQ.descUva(), oldQ.usedUva(), oldQ.availUva(), 0));
        fe.setVringKick(0, crash.kick());
        fe.setVringCall(0, nq.callFd());
        fe.setVringEnable(0, true);
    }

    /** Overwrites ring slots [from, to) with descriptors that are neither available nor used for this lap. */
    private static void scribble(GuestRam ram, FrontendQueue q, int from, int to) {
        MemorySegment ring = ram.memory().slice(q.descGpa(), 16L * q.size());
        for (int slot = from; slot < to; slot++) {
            ring.asSlice(16L * slot, 16).fill((byte) 0x5A);
            ring.set(U16, 16L * slot + 14, (short) 0);
        }
    }

    private static int dup(int fd) throws Exception {
        // dup(2) without a native binding: pass the fd to ourselves over a socketpair.
        Linux linux = Linux.system();
        int[] pair = linux.socketPair();
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment b = arena.allocate(1);
            linux.send(pair[0], b, 1, new int[] {fd}, 1);
            dev.vhostdevice.vhostuser.sys.ReceivedFds got = new dev.vhostdevice.vhostuser.sys.ReceivedFds();
            linux.receive(pair[1], b, 1, got);
            return got.take(0);
        } finally {
            linux.close(pair[0]);
            linux.close(pair[1]);
        }
    }
}
