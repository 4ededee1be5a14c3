package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageChannel;
import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.protocol.PayloadCodec;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end → front-end socket from SET_BACKEND_REQ_FD. Requests are serialised, one outstanding at a time
 * (conformance item 78). With REPLY_ACK negotiated a request carries NEED_REPLY and the front-end answers with a
 * u64 ack (spec §2.2).
 *
 * <p>Nothing here waits: requests usually come from the worker (a device's config change, a broken queue), and
 * no kick may queue behind a front-end's ack. The socket is non-blocking and watched by the session's worker;
 * the ack is taken in {@link #readable} when it arrives, and requests raised meanwhile wait in a queue (a
 * request already waiting is not queued twice: these requests carry no payload). A front-end that leaves an ack
 * outstanding longer than {@link #REPLY_TIMEOUT_MILLIS} has lost step with us: at the next request or late ack
 * the channel is abandoned rather than a late ack misread as the next request's.
 */
final class BackendChannel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BackendChannel.class);
    /** How long an ack may be outstanding (QEMU answers from its main loop at once). */
    static final int REPLY_TIMEOUT_MILLIS = 2_000;
    private static final int ACK_SIZE = MessageHeader.SIZE + PayloadCodec.U64_SIZE;

    private final Linux linux;
    private final MessageChannel channel;
    private final Worker worker;
    private final Arena arena = Arena.ofShared();
    /** The ack is assembled here from however many reads it takes (never through a blocking read). */
    private final MemorySegment ack = arena.allocate(ACK_SIZE, 8);
    private final ReceivedFds ackFds = new ReceivedFds();
    private final ArrayDeque<Queued> waiting = new ArrayDeque<>();
    /** The request whose ack is outstanding, or null. */
    private BackendRequest awaiting;
    private long ackDeadline;
    private int ackBytes;
    private boolean abandoned;
    private boolean closed;

    private record Queued(BackendRequest request, boolean needReply) {
    }

    /** Takes {@code socket}; the worker watches it (token kind {@link Worker#KIND_BACKEND}) until close. */
    BackendChannel(Linux linux, int socket, Worker worker) throws ErrnoException {
        this.linux = linux;
        this.channel = new MessageChannel(linux, socket);
        this.worker = worker;
        try {
            linux.setNonBlocking(socket);
            worker.watch(socket, Worker.KIND_BACKEND, 0, Linux.EPOLLIN);
        } catch (ErrnoException e) {
            close();
            throw e;
        }
    }

    /**
     * Sends {@code request} (no payload), with NEED_REPLY if {@code needReply}, or queues it behind the
     * outstanding ack. Never waits. False if the channel is abandoned (nothing will be sent on it any more).
     */
    synchronized boolean send(BackendRequest request, boolean needReply) {
        if (abandoned) {
            LOG.warn("back-end channel: {} not sent, the channel was abandoned", request);
            return false;
        }
        if (awaiting != null) {
            if (System.nanoTime() - ackDeadline > 0) {
                abandon("no complete ack to " + awaiting + " within " + REPLY_TIMEOUT_MILLIS + " ms (" + ackBytes
                        + " of " + ACK_SIZE + " bytes)");
                return false;
            }
            Queued next = new Queued(request, needReply);
            if (!waiting.contains(next)) {
                waiting.add(next);
            }
            return true;
        }
        return write(request, needReply);
    }

    private boolean write(BackendRequest request, boolean needReply) {
        try {
            // A 12-byte message: only a front-end that stopped reading fills the socket (EAGAIN, lost step).
            channel.request(request.code(), needReply ? MessageHeader.NEED_REPLY : 0, 0);
        } catch (ErrnoException e) {
            abandon(request + " failed: " + e.getMessage());
            return false;
        }
        if (needReply) {
            awaiting = request;
            ackBytes = 0;
            ackDeadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(REPLY_TIMEOUT_MILLIS);
        }
        return true;
    }

    /** On the worker: the socket is readable (or hung up). Takes what there is of the ack, never waiting. */
    synchronized void readable() {
        if (abandoned) {
            return;
        }
        try {
            while (true) {
                int n = linux.receive(channel.socket(), ack.asSlice(ackBytes), ACK_SIZE - ackBytes, ackFds);
                ackFds.closeAll(linux); // an ack carries no fds
                if (n == 0) {
                    abandon("the front-end closed the channel" + (awaiting != null ? " instead of acking " + awaiting : ""));
                    return;
                }
                if (awaiting == null) {
                    abandon(n + " unexpected byte(s) from the front-end with no request outstanding");
                    return;
                }
                if (!took(n)) {
                    return;
                }
            }
        } catch (ErrnoException e) {
            if (e.errno() != Errno.EAGAIN) {
                abandon("reading the ack failed: " + e.getMessage());
            }
        }
    }

    /** Counts {@code n} more ack bytes; true to read on (the ack was complete and the next request sent). */
    private boolean took(int n) {
        int before = ackBytes;
        ackBytes += n;
        // Check the header as soon as it is complete: a bigger reply would otherwise be read only in part.
        if (before < MessageHeader.SIZE && ackBytes >= MessageHeader.SIZE) {
            MessageHeader reply = PayloadCodec.decodeHeader(ack);
            if (reply.request() != awaiting.code() || !reply.isReply() || reply.size() != PayloadCodec.U64_SIZE
                    || reply.version() != MessageHeader.VERSION || reply.hasReservedFlags()) {
                abandon("expected a u64 ack to " + awaiting + ", got request " + reply.request() + " flags 0x"
                        + Integer.toHexString(reply.flags()) + " size " + reply.size());
                return false;
            }
        }
        if (ackBytes < ACK_SIZE) {
            return true;
        }
        if (System.nanoTime() - ackDeadline > 0) {
            abandon("the ack to " + awaiting + " came after " + REPLY_TIMEOUT_MILLIS + " ms");
            return false;
        }
        long value = PayloadCodec.decodeU64(ack.asSlice(MessageHeader.SIZE));
        if (value != 0) {
            LOG.error("back-end channel: front-end failed {} (ack {})", awaiting, value);
        }
        awaiting = null;
        ackBytes = 0;
        Queued next;
        while (awaiting == null && !abandoned && (next = waiting.poll()) != null) {
            write(next.request(), next.needReply());
        }
        return !abandoned;
    }

    /** Whether an ack is outstanding (for tests and diagnostics). */
    synchronized boolean awaitingAck() {
        return awaiting != null;
    }

    private void abandon(String why) {
        LOG.error("back-end channel: {}; channel abandoned", why);
        abandoned = true;
        awaiting = null;
        waiting.clear();
        worker.unwatch(channel.socket()); // a hung-up socket stays readable for ever
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        abandoned = true; // nothing is sent on a closed channel
        channel.close(); // leaves the worker's epoll set with it (maybe closed already: no epoll_ctl here)
        arena.close();
    }
}
