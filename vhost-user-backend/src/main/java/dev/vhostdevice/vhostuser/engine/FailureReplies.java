package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.ProtocolFeature.LOG_SHMFD;
import static dev.vhostdevice.vhostuser.protocol.ProtocolFeature.REPLY_ACK;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.Payload;
import dev.vhostdevice.vhostuser.protocol.PayloadCodec;
import dev.vhostdevice.virtqueue.memory.ErrnoException;

/**
 * The answer to a refused request, so the front-end never waits for a reply that does not come and the stream
 * stays in step: the request's own failure form where it always has a reply, else a non-zero ack when REPLY_ACK
 * is negotiated and NEED_REPLY set, else nothing.
 */
final class FailureReplies {
    /** SET_DEVICE_STATE_FD: error (bits 0-7) and no fd (bit 8). */
    static final long DEVICE_STATE_ERROR_NO_FD = 0x101;

    private FailureReplies() {
    }

    static void send(VhostUserSession session, FrontendRequest request, MessageHeader header) throws ErrnoException {
        int code = request.code();
        switch (request) {
            // Requests with a value reply: 0 is the defined "nothing" (no queues, no slots, no features).
            case GET_FEATURES, GET_PROTOCOL_FEATURES, GET_QUEUE_NUM, GET_MAX_MEM_SLOTS, GET_STATUS ->
                    session.sendU64(code, 0);
            case GET_VRING_BASE -> {
                int index = PayloadCodec.decodeVringIndex(session.channel().body(), header.size());
                PayloadCodec.encodeVringState(session.channel().replyBody(), index, 0);
                session.channel().reply(code, PayloadCodec.VRING_STATE_SIZE, -1);
            }
            // Spec: the error reply of GET_CONFIG has a zero-length payload.
            case GET_CONFIG, GET_SHMEM_CONFIG -> session.channel().reply(code, 0, -1);
            // mmap_size 0 and no fd: "not supported".
            case GET_INFLIGHT_FD -> {
                PayloadCodec.encodeInflight(session.channel().replyBody(), new Payload.Inflight(0, 0, 0, 0));
                session.channel().reply(code, PayloadCodec.INFLIGHT_SIZE, -1);
            }
            case SET_DEVICE_STATE_FD -> session.sendU64(code, DEVICE_STATE_ERROR_NO_FD);
            case CHECK_DEVICE_STATE, IOTLB_MSG, POSTCOPY_ADVISE, POSTCOPY_END, GET_SHARED_OBJECT ->
                    session.sendU64(code, 1);
            case CREATE_CRYPTO_SESSION -> session.sendU64(code, -1);
            case SET_LOG_BASE -> {
                // Under LOG_SHMFD SET_LOG_BASE always has a reply; otherwise only a requested ack.
                if (session.protocolAcked(LOG_SHMFD) || header.needsReply() && session.protocolAcked(REPLY_ACK)) {
                    session.sendU64(code, 1);
                }
            }
            default -> {
                if (header.needsReply() && session.protocolAcked(REPLY_ACK)) {
                    session.sendU64(code, 1);
                }
            }
        }
    }
}
