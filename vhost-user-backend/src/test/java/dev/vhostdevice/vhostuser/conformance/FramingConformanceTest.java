package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import org.junit.jupiter.api.Test;

/** Framing and fd rules (spec §1.2, §1.4, §4.4; checklist 1-13). */
class FramingConformanceTest extends ConformanceBase {

    // §7 #1 / §1.2: only version 1 is accepted; another version closes the connection.
    @Test
    void aVersionOtherThanOneClosesTheConnection() throws Exception {
        fe.sendMessage(GET_FEATURES.code(), 2, Msg.EMPTY);
        assertTrue(fe.awaitClosedByPeer(WAIT));
    }

    // §7 #1 / §1.2: reserved flag bits (4-31) close the connection.
    @Test
    void reservedFlagBitsCloseTheConnection() throws Exception {
        fe.sendMessage(GET_FEATURES.code(), MessageHeader.VERSION | 0x100, Msg.EMPTY);
        assertTrue(fe.awaitClosedByPeer(WAIT));
    }

    // §7 #3: a request with the REPLY bit set is rejected.
    @Test
    void aRequestWithTheReplyFlagIsRejected() throws Exception {
        fe.sendMessage(GET_FEATURES.code(), MessageHeader.VERSION | MessageHeader.REPLY, Msg.EMPTY);
        assertTrue(fe.awaitClosedByPeer(WAIT));
    }

    // §7 #5 / §1.2: a header announcing more than 4096 payload bytes is rejected without desynchronising (close).
    @Test
    void anOversizedPayloadClosesTheConnection() throws Exception {
        fe.sendRaw(Msg.le(12).putInt(SET_FEATURES.code()).putInt(1).putInt(MessageHeader.MAX_PAYLOAD + 1).array());
        assertTrue(fe.awaitClosedByPeer(WAIT));
    }

    // §7 #6: an unknown request code gets a failure ack (REPLY_ACK + NEED_REPLY) and the connection stays.
    @Test
    void anUnknownRequestGetsAFailureAckAndTheConnectionStays() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        fe.sendMessage(99, MessageHeader.VERSION | MessageHeader.NEED_REPLY, new byte[8]);
        Reply r = fe.read();
        assertEquals(99, r.request());
        assertNotEquals(0, r.u64());
        assertNotEquals(0, fe.getFeatures());
    }

    // §7 #7: a fixed-size request with a wrong payload length is rejected.
    @Test
    void aFixedSizeRequestWithTheWrongLengthIsRejected() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertNotEquals(0, fe.ack(SET_VRING_NUM, new byte[4]));
        assertNotEquals(0, fe.ack(SET_FEATURES, new byte[12]));
        assertNotEquals(0, fe.ack(SET_VRING_ADDR, new byte[32]));
        assertNotEquals(0, fe.getFeatures(), "connection stays");
    }

    // §7 #8 / §4.2: SET_MEM_TABLE with nregions != fd count, or size != 8 + 32n, is rejected.
    @Test
    void setMemTableWithMismatchedFdsOrSizeIsRejected() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        int fd = fe.ram().fd();
        byte[] one = fe.ram().memTable();
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, one), "no fd");
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, one, fd, fd), "two fds for one region");
        byte[] truncated = java.util.Arrays.copyOf(one, one.length - 8);
        assertNotEquals(0, fe.ack(SET_MEM_TABLE, truncated, fd), "size != 8 + 32n");
        assertEquals(0, fe.ack(SET_MEM_TABLE, one, fd), "the well-formed table is accepted");
    }

    // §7 #9 / §1.4: KICK/CALL/ERR carry exactly one fd unless bit 8 (NOFD) is set, and then none.
    @Test
    void vringFdMessagesCarryOneFdUnlessNofdIsSet() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        int eventfd = fe.queue(0, 16).callFd();
        assertNotEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0)), "bit 8 clear, no fd");
        assertNotEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0 | Msg.NOFD), eventfd), "NOFD with an fd");
        assertNotEquals(0, fe.ack(SET_VRING_ERR, Msg.u64(0), eventfd, eventfd), "two fds");
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0 | Msg.NOFD)), "NOFD without an fd");
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0), eventfd), "one fd");
    }

    // §7 #10: the vring index is bits 0-7; an index beyond the device's queues is rejected without a crash.
    @Test
    void anOutOfRangeVringIndexIsRejected() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        int eventfd = fe.queue(0, 16).callFd();
        assertNotEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(200), eventfd));
        assertNotEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(2, 16)));
        assertNotEquals(0, fe.ack(SET_VRING_ENABLE, Msg.vringState(255, 1)));
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(1), eventfd), "index 1 exists");
    }

    // §7 #12 / §1.4: every fd attached to a message that does not use it is closed (no leak after many).
    @Test
    void fdsOnMessagesThatDoNotUseThemAreClosed() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        dev.vhostdevice.virtqueue.memory.MemoryMapper mapper = dev.vhostdevice.virtqueue.memory.MemoryMapper.system();
        int probe = mapper.createMemoryFile("stray-fd-probe", 4096);
        try {
            for (int i = 0; i < 300; i++) {
                fe.call(GET_FEATURES, Msg.EMPTY, probe);
                fe.ack(SET_OWNER, Msg.EMPTY, probe, probe);
                fe.ack(SET_VRING_NUM, Msg.vringState(0, 16), probe);
            }
            fe.sync(); // the back-end closes a message's fds after its reply: the next request orders that
            assertEquals(1, openFdsNamed("stray-fd-probe"), "every copy the back-end received was closed");
        } finally {
            mapper.close(probe);
        }
    }

    // §7 #13: peer EOF is a disconnect: rings stop, and the next front-end is served.
    @Test
    void peerEofStopsTheRingsAndTheServerServesTheNextFrontend() throws Exception {
        negotiateWithReplyAck(0);
        var q = runningQueue(0);
        roundTrip(q, "before");
        ProbeDevice first = device();
        fe.close();
        awaitTrue(() -> server.connectionsServed() == 1 && !server.isConnected(), "the session to end");
        assertTrue(first.stops.get() > 0, "the running ring was stopped");
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT);
        assertNotEquals(0, fe.getFeatures());
        assertEquals(2, devices.size());
    }

    // §7 #13: EOF in the middle of a payload is a disconnect too.
    @Test
    void eofInsideAPayloadIsADisconnect() throws Exception {
        fe.sendRaw(Msg.le(16).putInt(SET_FEATURES.code()).putInt(1).putInt(8).putInt(0).array());
        fe.close();
        fe = null;
        awaitTrue(() -> server.connectionsServed() == 1 && !server.isConnected(), "the session to end");
        try (TestFrontend next = TestFrontend.connect(server.socketPath())) {
            assertNotEquals(0, next.getFeatures());
        }
    }
}
