package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageChannel;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.PayloadCodec;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
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
    private static final int ACK_SIZE = MessageHeader.SIZE + PayloadCodec.U64_SIZE;

    private final Linux linux;
    private final MessageChannel channel;
    private final Arena arena = Arena.ofShared();
    /** The ack is read here, not through {@link MessageChannel#read}, which would block on a partial message. */
    private final MemorySegment ack = arena.allocate(ACK_SIZE, 8);
    private final ReceivedFds ackFds = new ReceivedFds();
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
        } catch (ErrnoException e) {
            LOG.error("back-end channel: {} failed: {}", request, e.getMessage());
            abandoned = true;
            return false;
        }
    }

    /**
     * Reads the u64 ack. The whole read, not just its first byte, is bounded by {@link #REPLY_TIMEOUT_MILLIS}: a
     * front-end that sends part of an ack and stops must not hold the sending thread (usually the worker).
     */
    private boolean awaitAck(BackendRequest request) throws ErrnoException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REPLY_TIMEOUT_MILLIS);
        int got = 0;
        while (got < ACK_SIZE) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0 || !linux.poll(channel.socket(), Linux.POLLIN, (int) left)) {
                LOG.error("back-end channel: no complete ack to {} within {} ms ({} of {} bytes); channel abandoned",
                        request, REPLY_TIMEOUT_MILLIS, got, ACK_SIZE);
                abandoned = true;
                return false;
            }
            int n = linux.receive(channel.socket(), ack.asSlice(got), ACK_SIZE - got, ackFds);
            ackFds.closeAll(linux); // an ack carries no fds
            if (n == 0) {
                LOG.error("back-end channel: front-end closed the channel instead of acking {}", request);
                abandoned = true;
                return false;
            }
            int before = got;
            got += n;
            // Check the header as soon as it is complete: a bigger reply would otherwise be read only in part.
            if (before < MessageHeader.SIZE && got >= MessageHeader.SIZE) {
                MessageHeader reply = PayloadCodec.decodeHeader(ack);
                if (reply.request() != request.code() || !reply.isReply() || reply.size() != PayloadCodec.U64_SIZE
                        || reply.version() != MessageHeader.VERSION || reply.hasReservedFlags()) {
                    LOG.error("back-end channel: expected a u64 ack to {}, got request {} flags 0x{} size {}; "
                            + "channel abandoned", request, reply.request(), Integer.toHexString(reply.flags()), reply.size());
                    abandoned = true;
                    return false;
                }
            }
        }
        long value = ack.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), MessageHeader.SIZE);
        if (value != 0) {
            LOG.error("back-end channel: front-end failed {} (ack {})", request, value);
            return false;
        }
        return true;
    }

    @Override
    public synchronized void close() {
        abandoned = true; // nothing is sent on a closed channel
        channel.close();
        arena.close();
    }
}
