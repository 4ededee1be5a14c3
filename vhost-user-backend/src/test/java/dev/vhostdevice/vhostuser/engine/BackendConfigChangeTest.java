package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.engine.FrontendSteps.F30;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.VERSION_1;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.memoryTable;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.negotiate;
import static dev.vhostdevice.vhostuser.engine.FrontendSteps.startRing;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.GuestFixture;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BACKEND_CONFIG_CHANGE_MSG on the SET_BACKEND_REQ_FD channel: sent when the device calls notifyConfigChanged and
 * when a queue breaks (DEVICE_NEEDS_RESET); with NEED_REPLY only under REPLY_ACK, whose ack the worker takes when
 * it comes, serving kicks meanwhile; never without CONFIG.
 */
class BackendConfigChangeTest {
    private static final long CHANNEL = ProtocolFeature.maskOf(ProtocolFeature.BACKEND_REQ, ProtocolFeature.CONFIG);

    /** Echoes, and announces a config change for every chain whose first byte is 'N'. */
    static final class AnnouncingDevice extends EchoDevice {
        private DeviceContext context;
        private final dev.vhostdevice.virtqueue.Chain peek = new dev.vhostdevice.virtqueue.Chain();

        @Override
        public void attach(DeviceContext context) {
            this.context = context;
        }

        @Override
        public void handleQueue(DeviceQueue queue) {
            byte[] first = new byte[1];
            while (queue.pop(peek)) {
                peek.reader().read(first, 0, 1);
                queue.complete(peek);
                if (first[0] == 'N') {
                    context.notifyConfigChanged();
                }
            }
        }
    }

    @TempDir
    Path dir;
    VhostUserServer server;
    GuestFixture guest;
    MiniFrontend fe;
    final Linux linux = Linux.system();
    final Arena arena = Arena.ofShared();
    final MemorySegment buffer = arena.allocate(64, 8);
    final ReceivedFds fds = new ReceivedFds();
    int frontendEnd = -1;

    @BeforeEach
    void start() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), AnnouncingDevice::new);
        guest = new GuestFixture();
        fe = new MiniFrontend(server.socketPath());
    }

    @AfterEach
    void stop() {
        fe.close();
        server.close();
        guest.close();
        linux.close(frontendEnd);
        fds.closeAll(linux);
        arena.close();
    }

    private void setUp(long protocol) throws Exception {
        negotiate(fe, protocol, VERSION_1 | F30);
        int[] pair = linux.socketPair();
        frontendEnd = pair[0];
        try {
            fe.send(SET_BACKEND_REQ_FD, new byte[0], pair[1]);
        } finally {
            linux.close(pair[1]);
        }
        memoryTable(fe, guest);
        startRing(fe, guest, 0, guest.ring, 0, guest.kick, guest.call);
        fe.send(SET_VRING_ENABLE, vringState(0, 1));
    }

    /** Reads one back-end request header (request, flags, size), or null if none comes within 1 s. */
    private int[] readBackendRequest() throws Exception {
        if (!linux.poll(frontendEnd, 1, 1000)) {
            return null;
        }
        int got = 0;
        while (got < MessageHeader.SIZE) {
            int n = linux.receive(frontendEnd, buffer.asSlice(got), MessageHeader.SIZE - got, fds);
            assertTrue(n > 0, "back-end channel closed");
            got += n;
        }
        return new int[] {buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 0), buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 4),
                buffer.get(ValueLayout.JAVA_INT_UNALIGNED, 8)};
    }

    private void ack(int request, long value) throws Exception {
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 0, request);
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 4, MessageHeader.VERSION | MessageHeader.REPLY);
        buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
        buffer.set(ValueLayout.JAVA_LONG_UNALIGNED, 12, value);
        assertEquals(20, linux.send(frontendEnd, buffer, 20, new int[0], 0));
    }

    private void announce(int expectedUsed) throws Exception {
        guest.ring.add(new byte[] {'N'}, 4);
        guest.kick();
        guest.awaitUsed(expectedUsed);
        assertEquals(expectedUsed, guest.ring.usedIdx());
    }

    /** Posts an announcing chain and a plain one behind it, kicks once; returns the announcement's header. */
    private int[] announceWithAChainBehind() throws Exception {
        guest.ring.add(new byte[] {'N'}, 4);
        guest.ring.add(new byte[] {'x'}, 4);
        guest.kick();
        int[] header = readBackendRequest();
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), header[0]);
        return header;
    }

    @Test
    void withoutReplyAckTheMessageHasNoNeedReply() throws Exception {
        setUp(CHANNEL);
        announce(1);
        int[] header = readBackendRequest();
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), header[0]);
        assertEquals(MessageHeader.VERSION, header[1], "no NEED_REPLY without REPLY_ACK");
        assertEquals(0, header[2], "no payload");
        announce(2);
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), readBackendRequest()[0]);
    }

    // The worker never waits for an ack: a front-end that delays it still gets every kick served meanwhile, and
    // the next back-end request waits for the ack (one outstanding at a time), then goes out by itself.
    @Test
    void withReplyAckKicksAreServedWhileTheFrontendDelaysItsAck() throws Exception {
        setUp(CHANNEL | ProtocolFeature.REPLY_ACK.mask());
        int[] header = announceWithAChainBehind();
        assertEquals(MessageHeader.VERSION | MessageHeader.NEED_REPLY, header[1]);
        guest.awaitUsed(2); // the chain behind the announcement, with the ack outstanding
        announce(3); // a second change while the first ack is outstanding: queued, not sent
        for (int used = 4; used <= 20; used++) {
            guest.ring.add(new byte[] {'x'}, 4);
            guest.kick();
            guest.awaitUsed(used);
        }
        assertFalse(linux.poll(frontendEnd, 1, 300), "one request outstanding at a time");

        ack(header[0], 0);

        header = readBackendRequest();
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), header[0], "the queued change follows the ack");
        assertEquals(MessageHeader.VERSION | MessageHeader.NEED_REPLY, header[1]);
        ack(header[0], 0);
        announce(21);
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), readBackendRequest()[0]);
    }

    @Test
    void aFrontendThatNeverAcksHoldsNoKickAndLosesTheChannelAfterTheTimeout() throws Exception {
        setUp(CHANNEL | ProtocolFeature.REPLY_ACK.mask());
        announce(1);
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), readBackendRequest()[0]);
        long started = System.nanoTime();
        guest.ring.add(new byte[] {'x'}, 4);
        guest.kick();
        guest.awaitUsed(2);
        assertTrue(System.nanoTime() - started < BackendChannel.REPLY_TIMEOUT_MILLIS * 1_000_000L,
                "served before the ack timeout, not after it");
        Thread.sleep(BackendChannel.REPLY_TIMEOUT_MILLIS + 200);
        announce(3); // past the deadline: the channel is abandoned instead
        assertEquals(null, readBackendRequest(), "nothing more on an abandoned channel");
        ack(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), 0); // too late: ignored
        announce(4);
        assertEquals(null, readBackendRequest());
        assertTrue(fe.getU64(GET_FEATURES) != 0, "the control connection is unaffected");
    }

    @Test
    void aFrontendThatSendsHalfAnAckAndStopsHoldsNoKickAndLosesTheChannel() throws Exception {
        assertTimeoutPreemptively(Duration.ofSeconds(15), () -> {
            setUp(CHANNEL | ProtocolFeature.REPLY_ACK.mask());
            int[] header = announceWithAChainBehind();
            long started = System.nanoTime();
            buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 0, header[0]);
            buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 4, MessageHeader.VERSION | MessageHeader.REPLY);
            buffer.set(ValueLayout.JAVA_INT_UNALIGNED, 8, 8);
            assertEquals(14, linux.send(frontendEnd, buffer, 14, new int[0], 0), "header and 2 of 8 ack bytes");
            guest.awaitUsed(2);
            assertTrue(System.nanoTime() - started < BackendChannel.REPLY_TIMEOUT_MILLIS * 1_000_000L,
                    "the worker is not held by the partial ack");
            Thread.sleep(BackendChannel.REPLY_TIMEOUT_MILLIS + 200);
            announce(3);
            assertEquals(null, readBackendRequest(), "nothing more on an abandoned channel");
            assertTrue(fe.getU64(GET_FEATURES) != 0, "the control connection is unaffected");
        });
    }

    // A front-end that hangs up its end of the channel: the hung-up socket is dropped from the worker's watch
    // (it would stay readable for ever) and the rings go on.
    @Test
    void aFrontendThatHangsUpTheChannelLeavesTheRingsServed() throws Exception {
        setUp(CHANNEL | ProtocolFeature.REPLY_ACK.mask());
        announce(1);
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), readBackendRequest()[0]);
        linux.close(frontendEnd);
        frontendEnd = -1;
        for (int used = 2; used <= 10; used++) {
            announce(used);
        }
        assertTrue(fe.getU64(GET_FEATURES) != 0, "the control connection is unaffected");
    }

    @Test
    void aBrokenQueueSetsNeedsResetAndAnnouncesAConfigChange() throws Exception {
        setUp(CHANNEL | ProtocolFeature.STATUS.mask());
        guest.ram.set(ValueLayout.JAVA_SHORT_UNALIGNED, guest.ring.availGpa + 2, (short) 100); // avail idx runs away
        guest.kick();
        int[] header = readBackendRequest();
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), header[0]);
        assertEquals(0x40, fe.getU64(GET_STATUS) & 0x40, "DEVICE_NEEDS_RESET");
    }

    @Test
    void withoutConfigNothingIsSent() throws Exception {
        setUp(ProtocolFeature.BACKEND_REQ.mask());
        announce(1);
        assertFalse(linux.poll(frontendEnd, 1, 300), "CONFIG_CHANGE_MSG needs CONFIG negotiated");
    }
}
