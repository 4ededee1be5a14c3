package dev.vhostdevice.vhostuser.conformance;

import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_PROTOCOL_FEATURES;
import static dev.vhostdevice.vhostuser.frontend.TestFrontend.F_VERSION_1;
import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.engine.VhostUserSession;
import dev.vhostdevice.vhostuser.frontend.Msg;
import dev.vhostdevice.vhostuser.frontend.Reply;
import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import org.junit.jupiter.api.Test;

/** Feature and protocol-feature negotiation, REPLY_ACK and reply framing (spec §2.1, §3, §4.4; checklist 14-34). */
class NegotiationConformanceTest extends ConformanceBase {

    // §7 #14: GET_FEATURES is answered with a u64 at any point, including before SET_OWNER.
    @Test
    void getFeaturesIsAnsweredBeforeSetOwner() throws Exception {
        long features = fe.getFeatures();
        assertTrue((features & F_PROTOCOL_FEATURES) != 0 && (features & F_VERSION_1) != 0 && (features & 1) != 0,
                "device bits plus VERSION_1 and bit 30: 0x" + Long.toHexString(features));
    }

    // §7 #2 / §1.2: a reply repeats the request code, has version 1 and REPLY, not NEED_REPLY, and the exact size.
    @Test
    void replyRepeatsTheRequestCodeWithVersionOneReplyFlagAndExactSize() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK | ProtocolFeature.MQ.mask());
        for (FrontendRequest r : new FrontendRequest[] {GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM}) {
            Reply reply = fe.call(r, MessageHeader.NEED_REPLY, Msg.EMPTY);
            assertEquals(r.code(), reply.request());
            assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, reply.flags(), r + " reply flags");
            assertEquals(8, reply.body().length);
        }
        Reply ack = fe.call(SET_OWNER, MessageHeader.NEED_REPLY, Msg.EMPTY);
        assertEquals(MessageHeader.VERSION | MessageHeader.REPLY, ack.flags());
        assertEquals(8, ack.body().length);
    }

    // §7 #15 / §3.2: GET/SET_PROTOCOL_FEATURES work before SET_FEATURES when bit 30 was offered.
    @Test
    void protocolFeaturesAreNegotiatedBeforeSetFeatures() throws Exception {
        long offered = fe.getProtocolFeatures();
        assertTrue(ProtocolFeature.REPLY_ACK.isIn(offered) && ProtocolFeature.MQ.isIn(offered));
        fe.setProtocolFeatures(REPLY_ACK);
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY), "REPLY_ACK in force before any SET_FEATURES");
    }

    // §7 #32 (engine policy, as rust-vmm): SET_FEATURES with bits never offered is rejected.
    @Test
    void setFeaturesWithBitsNeverOfferedIsRejected() throws Exception {
        long offered = fe.getFeatures();
        fe.setProtocolFeatures(REPLY_ACK);
        assertNotEquals(0, fe.ack(SET_FEATURES, Msg.u64(offered | (1L << 50))));
        assertEquals(0, fe.ack(SET_FEATURES, Msg.u64(offered & (F_VERSION_1 | F_PROTOCOL_FEATURES))));
    }

    // §3.2 "the back-end must use only the acked subset": acking protocol bits never offered is refused, and
    // the earlier negotiation stays in force.
    @Test
    void setProtocolFeaturesWithBitsNeverOfferedIsRejectedAndTheOldSetStays() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertNotEquals(0, fe.ack(SET_PROTOCOL_FEATURES, Msg.u64(REPLY_ACK | (1L << 40))));
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY), "REPLY_ACK still negotiated");
    }

    // §7 #33: GET_QUEUE_NUM returns the maximum number of queues (MQ).
    @Test
    void getQueueNumReturnsTheDeviceQueueCount() throws Exception {
        fe.setProtocolFeatures(ProtocolFeature.MQ.mask());
        assertEquals(2, fe.getQueueNum());
    }

    // §7 #33: GET_MAX_MEM_SLOTS returns the slot limit (CONFIGURE_MEM_SLOTS).
    @Test
    void getMaxMemSlotsReturnsTheSlotLimit() throws Exception {
        fe.setProtocolFeatures(ProtocolFeature.CONFIGURE_MEM_SLOTS.mask());
        assertEquals(VhostUserSession.MAX_MEM_SLOTS, fe.getMaxMemSlots());
    }

    // §7 #29 / §2.1 Gate column: ack-type requests whose protocol feature was not acked are refused.
    @Test
    void ackTypeRequestsAreRefusedWhenTheirProtocolFeatureWasNotAcked() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        int eventfd = fe.queue(0, 16).callFd();
        assertNotEquals(0, fe.ack(RESET_DEVICE, Msg.EMPTY), "RESET_DEVICE");
        assertNotEquals(0, fe.ack(SET_STATUS, Msg.u64(1)), "STATUS");
        assertNotEquals(0, fe.ack(SET_CONFIG, Msg.configWrite(4, 0, new byte[] {9})), "CONFIG");
        assertNotEquals(0, fe.ack(ADD_MEM_REG, Msg.singleRegion(fe.ram().region(0)), fe.ram().fd()), "MEM_SLOTS");
        assertNotEquals(0, fe.ack(SET_BACKEND_REQ_FD, Msg.EMPTY, eventfd), "BACKEND_REQ");
        assertNotEquals(0, fe.ack(SET_LOG_FD, Msg.EMPTY, eventfd), "LOG_SHMFD");
        assertNotEquals(0, fe.ack(SET_INFLIGHT_FD, Msg.inflight(4096, 0, 1, 16), fe.ram().fd()), "INFLIGHT");
    }

    // §7 #29 with §7 #23 / §2.1: gated requests that always reply answer in their failure form.
    @Test
    void replyTypeRequestsAnswerInTheirFailureFormWhenTheirProtocolFeatureWasNotAcked() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertEquals(0, fe.call(GET_CONFIG, Msg.configRead(0, 4)).body().length, "GET_CONFIG: zero-length payload");
        Reply inflight = fe.getInflightFd(1, 16);
        assertEquals(0, inflight.u64(0), "GET_INFLIGHT_FD: mmap_size 0 means unsupported");
        assertEquals(-1, inflight.fd(), "and no fd");
    }

    // §7 #28: SET_VRING_ENABLE is refused when bit 30 was not negotiated in SET_FEATURES.
    @Test
    void setVringEnableWithoutProtocolFeaturesBitIsRefused() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        fe.setFeatures(F_VERSION_1);
        assertNotEquals(0, fe.ack(SET_VRING_ENABLE, Msg.vringState(0, 1)));
    }

    // §7 #18: without REPLY_ACK, NEED_REPLY never produces an unsolicited ack (the stream stays in step).
    @Test
    void needReplyWithoutReplyAckProducesNoAck() throws Exception {
        fe.send(SET_OWNER, MessageHeader.NEED_REPLY, Msg.EMPTY);
        fe.send(SET_VRING_NUM, MessageHeader.NEED_REPLY, Msg.vringState(0, 0)); // a failing one too
        assertEquals(GET_FEATURES.code(), fe.call(GET_FEATURES, Msg.EMPTY).request());
    }

    // §7 #16 / §4.4: with REPLY_ACK and NEED_REPLY, every successful ack-type request is answered with u64 0.
    @Test
    void everySuccessfulAckTypeRequestIsAckedWithZero() throws Exception {
        long offered = fe.getFeatures();
        fe.setProtocolFeatures(REPLY_ACK);
        var q = fe.queue(0, 16);
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY));
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0), q.maskedCallFd()), "CALL before SET_FEATURES");
        assertEquals(0, fe.ack(SET_VRING_ERR, Msg.u64(0), q.errFd()));
        assertEquals(0, fe.ack(SET_FEATURES, Msg.u64(offered & (F_VERSION_1 | F_PROTOCOL_FEATURES))));
        assertEquals(0, fe.ack(SET_MEM_TABLE, fe.ram().memTable(), fe.ram().memTableFds()));
        assertEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 16)));
        assertEquals(0, fe.ack(SET_VRING_BASE, Msg.vringState(0, 0)));
        assertEquals(0, fe.ack(SET_VRING_ADDR, Msg.vringAddr(0, 0, q.descUva(), q.usedUva(), q.availUva(), 0)));
        assertEquals(0, fe.ack(SET_VRING_KICK, Msg.u64(0), q.kickFd()));
        assertEquals(0, fe.ack(SET_VRING_CALL, Msg.u64(0), q.callFd()));
        assertEquals(0, fe.ack(SET_VRING_ENABLE, Msg.vringState(0, 1)));
        assertEquals(0, fe.ack(SET_VRING_ENABLE, Msg.vringState(0, 0)));
    }

    // §7 #17: with REPLY_ACK and NEED_REPLY a failing request gets a non-zero u64, and the connection stays.
    @Test
    void aFailingRequestGetsANonZeroAckAndTheConnectionStays() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertNotEquals(0, fe.ack(SET_VRING_NUM, Msg.vringState(0, 0)));
        assertNotEquals(0, fe.getFeatures());
    }

    // §7 #19 / §2.1: a request with its own reply gets exactly one reply even with NEED_REPLY set.
    @Test
    void requestsWithTheirOwnReplyGetExactlyOneReplyEvenWithNeedReply() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK | ProtocolFeature.MQ.mask());
        fe.send(GET_FEATURES, MessageHeader.NEED_REPLY, Msg.EMPTY);
        fe.send(GET_VRING_BASE, MessageHeader.NEED_REPLY, Msg.vringState(1, 0));
        fe.send(GET_QUEUE_NUM, MessageHeader.NEED_REPLY, Msg.EMPTY);
        assertEquals(GET_FEATURES.code(), fe.read().request());
        assertEquals(GET_VRING_BASE.code(), fe.read().request());
        Reply third = fe.read();
        assertEquals(GET_QUEUE_NUM.code(), third.request(), "no second (ack) reply in between");
        assertEquals(2, third.u64());
    }

    // §7 #20 / §1.1: replies come in request order; GET_FEATURES after pipelined messages acts as a barrier.
    @Test
    void repliesComeInRequestOrderAndGetFeaturesIsABarrier() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        for (int i = 0; i < 20; i++) {
            fe.send(SET_VRING_NUM, MessageHeader.NEED_REPLY, Msg.vringState(i % 2, i % 2 == 0 ? 16 : 3));
        }
        fe.send(GET_FEATURES, Msg.EMPTY);
        for (int i = 0; i < 20; i++) {
            Reply r = fe.read();
            assertEquals(SET_VRING_NUM.code(), r.request());
            assertEquals(i % 2 == 0, r.u64() == 0, "reply " + i + " answers request " + i);
        }
        assertEquals(GET_FEATURES.code(), fe.read().request());
    }

    // §7 #34 / §3.2: protocol features survive RESET_DEVICE (REPLY_ACK still active afterwards).
    @Test
    void protocolFeaturesSurviveResetDevice() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK | ProtocolFeature.RESET_DEVICE.mask());
        assertEquals(0, fe.ack(RESET_DEVICE, Msg.EMPTY));
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY), "REPLY_ACK still in force");
        assertEquals(1, device().resets.get(), "the device was reset");
    }

    // §7 #72 / §4.7: RESET_OWNER does not drop negotiated protocol features.
    @Test
    void resetOwnerKeepsProtocolFeatures() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertEquals(0, fe.ack(RESET_OWNER, Msg.EMPTY));
        assertEquals(0, fe.ack(SET_OWNER, Msg.EMPTY), "REPLY_ACK still in force");
    }

    // §7 #30 / §3.2: INBAND_NOTIFICATIONS without BACKEND_REQ + REPLY_ACK is an error; this engine never offers
    // INBAND_NOTIFICATIONS, so acking it is refused like any bit never offered.
    @Test
    void inbandNotificationsWithoutItsCompanionsIsNotAccepted() throws Exception {
        fe.setProtocolFeatures(REPLY_ACK);
        assertNotEquals(0, fe.ack(SET_PROTOCOL_FEATURES, Msg.u64(REPLY_ACK | ProtocolFeature.INBAND_NOTIFICATIONS.mask())));
        assertNotEquals(0, fe.ack(VRING_KICK, Msg.vringState(0, 0)), "VRING_KICK stays gated");
    }
}
