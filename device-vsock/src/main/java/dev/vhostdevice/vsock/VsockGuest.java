package dev.vhostdevice.vsock;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One guest of the daemon, for its whole life (across front-end reconnects): its settings, the hybrid-vsock
 * listener on its uds-path (bound at start-up, so host programs can connect before the guest boots), the inbox
 * its siblings write to and the eventfd that wakes whichever device serves it now.
 */
final class VsockGuest implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(VsockGuest.class);

    final VmConfig config;
    final SiblingGroups siblings;
    final HostSockets sockets;
    final Linux linux;
    final int listenFd;
    /** Written by siblings (a packet arrived, a slot freed); watched by the current device. */
    final int wakeFd;
    final SiblingInbox inbox;
    private final AtomicInteger devices = new AtomicInteger();
    /** A device serves this guest now (its front-end is connected): siblings may send to it. */
    private volatile boolean served;

    VsockGuest(VmConfig config, SiblingGroups siblings, HostSockets sockets, Linux linux) throws IOException {
        this.config = config;
        this.siblings = siblings;
        this.sockets = sockets;
        this.linux = linux;
        Path uds = config.udsPath();
        if (Files.exists(uds, LinkOption.NOFOLLOW_LINKS)) {
            if (Files.isDirectory(uds) || Files.isRegularFile(uds, LinkOption.NOFOLLOW_LINKS)) {
                throw new IOException("uds-path " + uds + " exists and is not a socket");
            }
            Files.delete(uds); // a stale socket of an earlier run, as upstream does
        }
        this.listenFd = sockets.listen(uds, HostSockets.SOCK_STREAM, 128);
        int wake;
        try {
            wake = linux.eventfd();
        } catch (ErrnoException e) {
            sockets.close(listenFd);
            throw e;
        }
        this.wakeFd = wake;
        this.inbox = new SiblingInbox(this::wake);
    }

    long cid() {
        return config.guestCid();
    }

    void wake() {
        try {
            linux.writeEventfd(wakeFd, 1);
        } catch (ErrnoException e) {
            LOG.warn("guest {}: cannot wake its device: {}", cid(), e.getMessage());
        }
    }

    boolean isServed() {
        return served;
    }

    void served(boolean now) {
        served = now;
    }

    /** A new device serves this guest; true if an earlier one did (the guest must drop stale connections). */
    boolean deviceStarted() {
        inbox.clear();
        return devices.getAndIncrement() > 0;
    }

    @Override
    public void close() {
        sockets.close(listenFd);
        linux.close(wakeFd);
        try {
            Files.deleteIfExists(config.udsPath());
        } catch (IOException e) {
            LOG.warn("cannot remove {}: {}", config.udsPath(), e.getMessage());
        }
    }
}
