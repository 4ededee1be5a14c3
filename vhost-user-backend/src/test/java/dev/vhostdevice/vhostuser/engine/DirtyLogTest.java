package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.LOG_ALL;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.memoryTable;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
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
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SET_LOG_BASE / SET_LOG_FD and VHOST_F_LOG_ALL (vhost-user-protocol.md §4.3): with logging on, a completed
 * request leaves exactly the pages of the buffers the device wrote, plus the used ring's pages at
 * log_guest_addr when the ring has VHOST_VRING_F_LOG; with LOG_ALL off nothing is logged.
 */
class DirtyLogTest {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final long PROTOCOL = ProtocolFeature.maskOf(ProtocolFeature.LOG_SHMFD, ProtocolFeature.REPLY_ACK);
    private static final int VHOST_VRING_F_LOG = 1;
    private static final long LOG_BYTES = 4096; // covers 128 MiB of guest-physical space
    /** Used-ring writes are logged here, away from the ring's own GPA, so the test can tell them apart. */
    private static final long LOG_GUEST_ADDR = 0x40_000;
    private static final long READ_GPA = 0x5000;
    private static final long WRITE_GPA = 0x6FF0; // 32 bytes: crosses into page 7

    @TempDir
    Path dir;
    VhostUserServer server;
    GuestFixture guest;
    MiniFrontend fe;
    final Linux linux = Linux.system();
    final Arena arena = Arena.ofShared();
    int logFd;
    MemorySegment log;
    int logEventFd;
    int availIdx;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), EchoDevice::new);
        guest = new GuestFixture();
        fe = new MiniFrontend(server.socketPath());
        logFd = MemoryMapper.system().createMemoryFile("test-dirty-log", LOG_BYTES);
        log = MemoryMapper.system().map(logFd, 0, LOG_BYTES, arena);
        logEventFd = linux.eventfd();
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        guest.close();
        linux.close(logFd);
        linux.close(logEventFd);
        arena.close();
    }

    private static byte[] vringAddr(GuestFixture guest, int flags, long logGuestAddr) {
        return le(40).putInt(0).putInt(flags).putLong(guest.uva(guest.ring.descGpa)).putLong(guest.uva(guest.ring.usedGpa))
                .putLong(guest.uva(guest.ring.availGpa)).putLong(logGuestAddr).array();
    }

    private void startLoggedRing(int flags) throws Exception {
        memoryTable(fe, guest);
        fe.send(SET_VRING_NUM, vringState(0, GuestFixture.RING_SIZE));
        fe.send(SET_VRING_BASE, vringState(0, 0));
        assertEquals(0, fe.ack(SET_VRING_ADDR, vringAddr(guest, flags, LOG_GUEST_ADDR)));
        fe.send(SET_VRING_CALL, u64(0), guest.call);
        fe.send(SET_VRING_KICK, u64(0), guest.kick);
    }

    private MiniFrontend.Reply setLogBase(int fd) throws Exception {
        return fe.call(SET_LOG_BASE, 0, le(16).putLong(LOG_BYTES).putLong(0).array(), fd);
    }

    /** One chain: 32 readable bytes on page 5, 32 writable bytes across pages 6 and 7; waits for completion. */
    private void request() throws Exception {
        MemorySegment ram = guest.ram;
        long desc = guest.ring.descGpa;
        ram.asSlice(READ_GPA, 32).fill((byte) 7);
        ram.set(U64, desc, READ_GPA);
        ram.set(U32, desc + 8, 32);
        ram.set(U16, desc + 12, (short) 1); // NEXT
        ram.set(U16, desc + 14, (short) 1);
        ram.set(U64, desc + 16, WRITE_GPA);
        ram.set(U32, desc + 24, 32);
        ram.set(U16, desc + 28, (short) 2); // WRITE
        ram.set(U16, desc + 30, (short) 0);
        long avail = guest.ring.availGpa;
        ram.set(U16, avail + 4 + 2L * (availIdx % GuestFixture.RING_SIZE), (short) 0);
        availIdx++;
        ram.set(U16, avail + 2, (short) availIdx);
        guest.kick();
        guest.awaitUsed(availIdx);
        assertEquals(availIdx, guest.ring.usedIdx());
        assertEquals(32, guest.ring.usedLen(availIdx - 1), "the device wrote 32 bytes");
    }

    private Set<Long> loggedPages() {
        Set<Long> pages = new TreeSet<>();
        for (long bit = 0; bit < LOG_BYTES * 8; bit++) {
            if ((log.get(ValueLayout.JAVA_BYTE, bit / 8) & (1 << (bit % 8))) != 0) {
                pages.add(bit);
            }
        }
        return pages;
    }

    @Test
    void setLogBaseAlwaysRepliesWithAU64ZeroUnderLogShmfd() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1 | LOG_ALL);
        MiniFrontend.Reply reply = setLogBase(logFd); // no NEED_REPLY: the reply comes anyway
        assertEquals(SET_LOG_BASE.code(), reply.request());
        assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, reply.flags());
        assertEquals(0, reply.u64());
        reply = fe.call(SET_LOG_BASE, MessageHeader.NEED_REPLY, le(16).putLong(LOG_BYTES).putLong(0).array(), logFd);
        assertEquals(0, reply.u64(), "exactly one reply with NEED_REPLY too");
        assertEquals(GET_FEATURES.code(), fe.call(GET_FEATURES, new byte[0]).request(), "the stream is in step");
    }

    @Test
    void aBadLogAreaGetsAFailureReplyAndTheConnectionStays() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1 | LOG_ALL);
        MiniFrontend.Reply reply = fe.call(SET_LOG_BASE, 0, le(16).putLong(LOG_BYTES * 4).putLong(0).array(), logFd);
        assertEquals(SET_LOG_BASE.code(), reply.request());
        assertNotEquals(0, reply.u64(), "a log larger than its file is refused");
        assertNotEquals(0, fe.getU64(GET_FEATURES));
    }

    @Test
    void withLogAllTheWrittenBufferPagesAndTheUsedRingAtLogGuestAddrAreLoggedAndNothingElse() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1 | LOG_ALL);
        assertEquals(0, setLogBase(logFd).u64());
        assertEquals(0, fe.ack(SET_LOG_FD, new byte[0], logEventFd));
        startLoggedRing(VHOST_VRING_F_LOG);
        request();
        long logPage = LOG_GUEST_ADDR / 4096;
        assertEquals(Set.of(WRITE_GPA / 4096, WRITE_GPA / 4096 + 1, logPage), loggedPages(),
                "written pages 6 and 7, and the used ring's page at log_guest_addr; not the readable page 5, "
                        + "not the ring's own GPA");
        assertTrue(linux.readEventfd(logEventFd) > 0, "the log eventfd was signalled");

        // Logging off (QEMU re-sends SET_FEATURES without LOG_ALL after migration): nothing more is marked.
        assertEquals(0, fe.ack(SET_FEATURES, u64(VERSION_1)), "acked: logging is off before the next request");
        log.fill((byte) 0);
        request();
        assertEquals(Set.of(), loggedPages());
        assertEquals(0, linux.readEventfd(logEventFd), "no log signal without logging");
    }

    @Test
    void withoutTheRingLogFlagOnlyBuffersAreLogged() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1 | LOG_ALL);
        assertEquals(0, setLogBase(logFd).u64());
        startLoggedRing(0);
        request();
        assertEquals(Set.of(WRITE_GPA / 4096, WRITE_GPA / 4096 + 1), loggedPages());
    }

    @Test
    void withoutLogAllNothingIsLogged() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1);
        assertEquals(0, setLogBase(logFd).u64());
        startLoggedRing(VHOST_VRING_F_LOG);
        request();
        assertEquals(Set.of(), loggedPages());
    }

    @Test
    void aSecondLogBaseSwapsTheLog() throws Exception {
        negotiate(fe, PROTOCOL, VERSION_1 | LOG_ALL);
        assertEquals(0, setLogBase(logFd).u64());
        startLoggedRing(VHOST_VRING_F_LOG);
        request();
        int secondFd = MemoryMapper.system().createMemoryFile("test-dirty-log-2", LOG_BYTES);
        try {
            MemorySegment second = MemoryMapper.system().map(secondFd, 0, LOG_BYTES, arena);
            assertEquals(0, setLogBase(secondFd).u64());
            log.fill((byte) 0);
            request();
            assertEquals(Set.of(), loggedPages(), "the old log is no longer written");
            assertEquals(0b1100_0000, second.get(ValueLayout.JAVA_BYTE, 0) & 0xFF, "pages 6 and 7 in the new log");
            assertEquals(1, second.get(ValueLayout.JAVA_BYTE, LOG_GUEST_ADDR / 4096 / 8) & 0xFF);
        } finally {
            linux.close(secondFd);
        }
    }
}
