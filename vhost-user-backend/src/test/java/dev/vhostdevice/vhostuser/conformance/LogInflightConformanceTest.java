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
