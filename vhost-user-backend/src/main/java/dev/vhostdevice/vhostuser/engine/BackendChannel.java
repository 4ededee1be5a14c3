package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageChannel;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.PayloadCodec;
import dev.vhostdevice.vhostuser.protocol.ProtocolException;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end → front-end socket from SET_BACKEND_REQ_FD. Requests are serialised, one outstanding at a time
 * (conformance item 78). With REPLY_ACK negotiated a request carries NEED_REPLY and waits for the front-end's
 * u64 ack (spec §2.2), at most {@link #REPLY_TIMEOUT_MILLIS}: a front-end that does not answer in time has lost
 * step with us, so the channel is abandoned rather than misreading a late ack as the next request's.
 */
final class BackendChannel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BackendChannel.class);
    /** How long a request waits for the front-end's ack (QEMU answers from its main loop at once). */
    static final int REPLY_TIMEOUT_MILLIS = 2_000;
    private static final int POLLIN = 1;

    private final Linux linux;
    private final MessageChannel channel;
    private boolean abandoned;

    BackendChannel(Linux linux, int socket) {
        this.linux = linux;
        this.channel = new MessageChannel(linux, socket);
    }

    /**
     * Sends {@code request} (no payload); with {@code needReply} waits for the ack. True if it was sent and, when
     * asked, acked with 0.
     */
    synchronized boolean send(BackendRequest request, boolean needReply) {
        if (abandoned) {
            LOG.warn("back-end channel: {} not sent, the channel was abandoned", request);
            return false;
        }
        try {
            channel.request(request.code(), needReply ? MessageHeader.NEED_REPLY : 0, 0);
            return !needReply || awaitAck(request);
        } catch (ErrnoException | ProtocolException e) {
            LOG.error("back-end channel: {} failed: {}", request, e.getMessage());
            abandoned = true;
            return false;
        }
    }

    private boolean awaitAck(BackendRequest request) throws ErrnoException, ProtocolException {
        if (!linux.poll(channel.socket(), POLLIN, REPLY_TIMEOUT_MILLIS)) {
            LOG.error("back-end channel: no ack to {} within {} ms; channel abandoned", request, REPLY_TIMEOUT_MILLIS);
            abandoned = true;
            return false;
        }
        MessageHeader reply = channel.read();
        channel.fds().closeAll(linux);
        if (reply == null) {
            LOG.error("back-end channel: front-end closed the channel instead of acking {}", request);
            abandoned = true;
            return false;
        }
        if (reply.request() != request.code() || !reply.isReply() || reply.size() != PayloadCodec.U64_SIZE) {
            LOG.error("back-end channel: expected a u64 ack to {}, got request {} flags 0x{} size {}; channel abandoned",
                    request, reply.request(), Integer.toHexString(reply.flags()), reply.size());
            abandoned = true;
            return false;
        }
        long value = channel.body().get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (value != 0) {
            LOG.error("back-end channel: front-end failed {} (ack {})", request, value);
            return false;
        }
        return true;
    }

    @Override
    public synchronized void close() {
        channel.close();
    }
}
