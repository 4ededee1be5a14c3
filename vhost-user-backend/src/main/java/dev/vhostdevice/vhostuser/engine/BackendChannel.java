package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.protocol.BackendRequest;
import dev.vhostdevice.vhostuser.protocol.MessageChannel;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The back-end → front-end socket from SET_BACKEND_REQ_FD. Requests are serialised (one at a time, item 78)
 * and sent without NEED_REPLY, so the worker never blocks on the front-end's answer (NEED_REPLY is optional).
 */
final class BackendChannel implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(BackendChannel.class);

    private final MessageChannel channel;

    BackendChannel(Linux linux, int socket) {
        this.channel = new MessageChannel(linux, socket);
    }

    synchronized boolean send(BackendRequest request) {
        try {
            channel.request(request.code(), 0, 0);
            return true;
        } catch (ErrnoException e) {
            LOG.error("back-end channel: {} failed: {}", request, e.getMessage());
            return false;
        }
    }

    @Override
    public synchronized void close() {
        channel.close();
    }
}
