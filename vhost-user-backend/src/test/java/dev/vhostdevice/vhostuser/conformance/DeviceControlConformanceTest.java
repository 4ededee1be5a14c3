package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.frontend.BackendPeer;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** Config space, status, resets, reconnect and the back-end channel (spec §2.1-2.2, §4.7; checklist 23-24, 71-77). */
class DeviceControlConformanceTest extends ConformanceBase {
    static final long CONFIG = ProtocolFeature.CONFIG.mask();
    static final long STATUS = ProtocolFeature.STATUS.mask();
    static final long BACKEND_REQ = ProtocolFeature.BACKEND_REQ.mask();
    static final long RESET = ProtocolFeature.RESET_DEVICE.mask();

    // §7 #23 / §2.1 GET_CONFIG: success = 12 + requested size with the device's bytes; error = zero-length payload.
    @Test
    void getConfigAnswersTheRequestedWindowOrAZeroLengthError() throws Exception {
        negotiateWithReplyAck(CONFIG);
        Reply ok = fe.call(GET_CONFIG, Msg.configRead(2, 4));
        assertEquals(16, ok.body().length);
        assertEquals(2, ok.u32(0));
        assertEquals(4, ok.u32(4));
        assertEquals(0x06050403, ok.u32(12));
        assertNull(fe.getConfig(6, 4), "beyond the config space: zero-length payload");
    }

    // §7 #24 / §2.1 SET_CONFIG: a write to a read-only field without the migration flag is refused; with it, taken.
    @Test
    void setConfigOfAReadOnlyFieldIsRefusedUnlessItIsAMigrationRestore() throws Exception {
        negotiateWithReplyAck(CONFIG);
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(0, 0, new byte[] {9, 9})));
        assertEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(6, 0, new byte[] {7, 7})), "writable field");
        assertEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(0, 1, new byte[] {9, 9})), "migration restore");
        assertArrayEquals(new byte[] {9, 9, 3, 4, 5, 6, 7, 7}, fe.getConfig(0, 8));
    }

    // §7 #73 / §4.7: GET_STATUS reflects the last SET_STATUS; SET_STATUS 0 resets the device.
    @Test
    void getStatusReflectsTheLastSetStatusAndZeroResetsTheDevice() throws Exception {
        negotiateWithReplyAck(STATUS);
        int s = VirtioFeatures.STATUS_ACKNOWLEDGE | VirtioFeatures.STATUS_DRIVER | VirtioFeatures.STATUS_FEATURES_OK;
        fe.setStatus(s);
        assertEquals(s, fe.getStatus());
        fe.setStatus(s | VirtioFeatures.STATUS_DRIVER_OK);
        assertEquals(s | VirtioFeatures.STATUS_DRIVER_OK, fe.getStatus());
        fe.setStatus(0);
        assertEquals(0, fe.getStatus());
        assertEquals(1, device().resets.get());
    }

    // §7 #71 / §4.7: RESET_DEVICE disables every ring and resets the device; it can be set up again on the same
    // connection.
    @Test
    void resetDeviceStopsEveryRingAndTheDeviceCanBeSetUpAgain() throws Exception {
        long features = negotiateWithReplyAck(RESET);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "first life");
        fe.resetDevice();
        assertEquals(1, device().resets.get());
        q.post("after reset", 16);
        q.kick();
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(1, q.usedIdx(), "rings disabled and stopped");
        q.relayout(16);
        fe.setFeatures(features);
        fe.setMemTable();
        fe.startQueue(0, 16, 0);
        fe.setVringEnable(0, true);
        roundTrip(q, "second life");
    }

    // §4.7 RESET_OWNER (deprecated): "ignore it or disable rings"; this engine disables them.
    @Test
    void resetOwnerDisablesTheRings() throws Exception {
        negotiateWithReplyAck(0);
        FrontendQueue q = runningQueue(0);
        roundTrip(q, "owned");
        fe.resetOwner();
        q.post("orphan", 16);
        q.kick();
        fe.sync();
        Thread.sleep(QUIET.toMillis());
        assertEquals(1, q.usedIdx());
    }

    // §4.1 / §8 (reconnect): a new connection starts from fresh state: new device, nothing negotiated.
    @Test
    void aReconnectingFrontendStartsFromFreshState() throws Exception {
        negotiateWithReplyAck(0);
        roundTrip(runningQueue(0), "old");
        fe.close();
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT);
        fe.send(SET_OWNER, MessageHeader.NEED_REPLY, Msg.EMPTY);
        assertEquals(GET_FEATURES.code(), fe.call(GET_FEATURES, Msg.EMPTY).request(), "REPLY_ACK not carried over");
        assertEquals(2, devices.size());
        assertEquals(0, device().handled.get());
        negotiateWithReplyAck(0);
        roundTrip(runningQueue(0), "new");
    }

    // §7 #74: a new SET_BACKEND_REQ_FD replaces the channel and closes the previous one.
    @Test
    void aNewBackendChannelReplacesAndClosesThePreviousOne() throws Exception {
        negotiateWithReplyAck(BACKEND_REQ);
        BackendPeer first = fe.setBackendReqFd();
        fe.setBackendReqFd();
        assertTrue(first.awaitClosedByBackend(WAIT), "the back-end closed its end of the first channel");
    }

    // §7 #77 + #75 / §2.2: CONFIG_CHANGE_MSG goes out on the back-end channel when CONFIG is negotiated, with no
    // NEED_REPLY unless REPLY_ACK (this engine never waits on the front-end: no NEED_REPLY at all).
    @Test
    void configChangeIsSentOnTheBackendChannelWithConfigNegotiated() throws Exception {
        negotiateWithReplyAck(BACKEND_REQ | CONFIG);
        BackendPeer peer = fe.setBackendReqFd();
        FrontendQueue q = runningQueue(0);
        q.post("config-change", 16);
        q.kick();
        q.awaitUsed(WAIT);
        Reply msg = peer.await(WAIT);
        assertEquals(BackendRequest.BACKEND_CONFIG_CHANGE_MSG.code(), msg.request());
        assertEquals(MessageHeader.VERSION, msg.flags() & ~MessageHeader.NEED_REPLY);
        assertEquals(0, msg.body().length);
        assertEquals(0, msg.fds().length, "no fds without BACKEND_SEND_FD");
    }

    // §7 #77: without CONFIG negotiated no CONFIG_CHANGE_MSG is sent. (The device raises the change before it
    // completes the chain, so once the used entry is visible any message would already be in the socket.)
    @Test
    void noConfigChangeIsSentWithoutConfigNegotiated() throws Exception {
        negotiateWithReplyAck(BACKEND_REQ);
        BackendPeer peer = fe.setBackendReqFd();
        FrontendQueue q = runningQueue(0);
        q.post("config-change", 16);
        q.kick();
        q.awaitUsed(WAIT);
        assertNull(peer.poll(Duration.ofMillis(50)));
    }
}
