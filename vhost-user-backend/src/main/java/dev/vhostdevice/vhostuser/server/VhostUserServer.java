package dev.vhostdevice.vhostuser.server;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.engine.RegionMapper;
import dev.vhostdevice.vhostuser.engine.VhostUserSession;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import dev.vhostdevice.virtqueue.memory.AreaMapper;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves one vhost-user socket: listens on a path (replacing a stale socket file), accepts one front-end at a
 * time and runs it with a fresh device from the factory; when the front-end goes, accepts the next (QEMU
 * reconnect). {@link #close()} ends the current connection, stops listening and removes the socket file.
 *
 * <p>In-process use (tests): {@code try (var server = VhostUserServer.start(path, MyDevice::new)) { ... }}.
 */
public final class VhostUserServer implements AutoCloseable {
    /**
     * The logger, in a holder so that slf4j (tens of milliseconds to initialise) starts when the first message is
     * logged or a front-end is being served, not on the way to listening.
     */
    private static final class Log {
        static final Logger LOG = LoggerFactory.getLogger(VhostUserServer.class);
    }

    private final Path path;
    private final DeviceFactory factory;
    private final Linux linux;
    private final MemoryMapper mapper;
    private final ServerOptions options;
    private final int listenFd;
    /** The thread the accept loop runs on: its own, or the caller's with {@link #serveOnThisThread()}. */
    private final Thread thread;
    /** Counted down when the accept loop has returned, whichever thread ran it. */
    private final CountDownLatch loopEnded = new CountDownLatch(1);
    private final AtomicBoolean loopClaimed = new AtomicBoolean();
    private final AtomicInteger connections = new AtomicInteger();
    private volatile VhostUserSession current;
    private volatile boolean closing;

    private VhostUserServer(Path path, DeviceFactory factory, Linux linux, MemoryMapper mapper,
                            ServerOptions options) throws IOException {
        this.path = path;
        this.factory = factory;
        this.linux = linux;
        this.mapper = mapper;
        this.options = options;
        removeStaleSocket(path);
        this.listenFd = linux.listenUnix(path, 1);
        // A Runnable class, not this::acceptLoop: the first lambda would cost milliseconds before listening.
        this.thread = new Thread(new AcceptLoop(this), "vhost-user ".concat(String.valueOf(path.getFileName())));
    }

    /** Listens on {@code path} and serves front-ends there until closed. */
    public static VhostUserServer start(Path path, DeviceFactory factory) throws IOException {
        return start(path, factory, ServerOptions.DEFAULTS);
    }

    /** Same, with the user's choices. */
    public static VhostUserServer start(Path path, DeviceFactory factory, ServerOptions options) throws IOException {
        return start(path, factory, Linux.system(), MemoryMapper.system(), options);
    }

    /** Same, over substitute native seams. */
    public static VhostUserServer start(Path path, DeviceFactory factory, Linux linux, MemoryMapper mapper)
            throws IOException {
        return start(path, factory, linux, mapper, ServerOptions.DEFAULTS);
    }

    /** Same, over substitute native seams, with the user's choices. */
    public static VhostUserServer start(Path path, DeviceFactory factory, Linux linux, MemoryMapper mapper,
                                        ServerOptions options) throws IOException {
        VhostUserServer server = new VhostUserServer(path, factory, linux, mapper, options);
        server.loopClaimed.set(true);
        server.thread.start();
        return server;
    }

    /**
     * Listens on {@code path} without serving yet: {@link #serveOnThisThread()} then runs the accept loop on the
     * caller's thread (a daemon's main thread, which would otherwise only wait), until {@link #close()}.
     */
    public static VhostUserServer listen(Path path, DeviceFactory factory, ServerOptions options) throws IOException {
        return new VhostUserServer(path, factory, Linux.system(), MemoryMapper.system(), options);
    }

    /**
     * Runs the accept loop on the calling thread (named after the socket meanwhile) until {@link #close()} or a
     * fatal accept error. For a server made by {@link #listen}; at most once.
     */
    public void serveOnThisThread() {
        if (!loopClaimed.compareAndSet(false, true)) {
            if (closing) {
                return; // closed before it was served
            }
            throw new IllegalStateException(path + ": already served");
        }
        Thread current = Thread.currentThread();
        String name = current.getName();
        current.setName(thread.getName());
        try {
            acceptLoop();
        } finally {
            current.setName(name);
            loopEnded.countDown();
        }
    }

    private static void removeStaleSocket(Path path) throws IOException {
        if (Files.exists(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (Files.isDirectory(path) || Files.isRegularFile(path, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                throw new IOException(path + " exists and is not a socket");
            }
            Files.delete(path);
            Log.LOG.info("removed stale socket {}", path);
        }
    }

    public Path socketPath() {
        return path;
    }

    /** Front-end connections accepted so far (a finished one counts). */
    public int connectionsServed() {
        return connections.get();
    }

    /** Whether a front-end is connected right now. */
    public boolean isConnected() {
        return current != null;
    }

    private record AcceptLoop(VhostUserServer server) implements Runnable {
        @Override
        public void run() {
            try {
                server.acceptLoop();
            } finally {
                server.loopEnded.countDown();
            }
        }
    }

    private void acceptLoop() {
        while (!closing) {
            int socket;
            try {
                socket = linux.accept(listenFd);
            } catch (ErrnoException e) {
                if (closing) {
                    return;
                }
                if (isTransient(e.errno())) {
                    // Out of fds or memory for a moment, or a peer gave up before we took it: keep serving.
                    Log.LOG.warn("{}: accept failed, retrying: {}", path, e.getMessage());
                    pause();
                    continue;
                }
                Log.LOG.error("{}: accept failed, server stops: {}", path, e.getMessage());
                return;
            }
            connections.incrementAndGet();
            serve(socket);
        }
    }

    /** accept(2) errors that pass: fd or buffer exhaustion, a peer that left before it was accepted. */
    private static boolean isTransient(int errno) {
        return errno == Errno.EMFILE || errno == Errno.ENFILE || errno == Errno.ENOMEM || errno == Errno.ENOBUFS
                || errno == Errno.ECONNABORTED || errno == Errno.EINTR || errno == Errno.EAGAIN;
    }

    private static void pause() {
        try {
            Thread.sleep(100);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private void serve(int socket) {
        String name = path.getFileName() + "#" + connections.get();
        VirtioDevice device;
        try {
            device = factory.create();
        } catch (Exception | LinkageError e) {
            Log.LOG.error("{}: cannot create the device, connection refused: {}", name, e.toString());
            linux.close(socket);
            return;
        }
        VhostUserSession session;
        try {
            session = new VhostUserSession(linux, mapper, new RegionMapper(new AreaMapper(mapper, options.xen())), device, socket,
                    name, options.offerDeviceState(), options.packedRing(), options.workers());
        } catch (ErrnoException | RuntimeException | LinkageError e) {
            // The session closed the socket itself (closing it here again could hit a reused fd number).
            Log.LOG.error("{}: cannot start the session: {}", name, e.toString());
            device.close();
            return;
        }
        current = session;
        if (closing) {
            session.stop();
        }
        try {
            session.run();
        } catch (RuntimeException | Error e) {
            // Never let one connection end the server.
            Log.LOG.error("{}: session failed: {}", name, e.toString(), e);
            session.close();
        } finally {
            current = null;
        }
    }

    /** Ends the current connection, stops listening and removes the socket file. */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        VhostUserSession session = current;
        if (session != null) {
            session.stop();
        }
        linux.shutdown(listenFd);
        boolean ended = loopClaimed.compareAndSet(false, true); // never served, and now never will be
        try {
            // The latch, not join: a loop on the caller's thread (serveOnThisThread) ends, its thread goes on.
            ended = ended || loopEnded.await(15, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!ended) {
            Log.LOG.error("{}: server thread did not stop", path);
        }
        linux.close(listenFd);
        try {
            Files.deleteIfExists(path);
        } catch (IOException e) {
            Log.LOG.warn("cannot remove {}: {}", path, e.getMessage());
        }
    }
}
