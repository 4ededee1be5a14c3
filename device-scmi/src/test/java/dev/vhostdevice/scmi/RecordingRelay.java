package dev.vhostdevice.scmi;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ReceivedFds;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A vhost-user socket between a real front-end (QEMU) and our back-end: every byte and fd is passed on
 * unchanged both ways, and the front-end's requests are recorded by name, so a test sees exactly what QEMU
 * sent and whether the back-end answered it (the back-end's reply count). The front-end connects to
 * {@link #path()}; the relay connects to the back-end's socket when it does.
 */
final class RecordingRelay implements AutoCloseable {
    private static final Linux LINUX = Linux.system();
    private static final ValueLayout.OfInt INT_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int HEADER = 12;

    private final Path path;
    private final int listenFd;
    private final Path backend;
    private final List<String> requests = Collections.synchronizedList(new ArrayList<>());
    private volatile int replies;
    private volatile boolean backendClosed;
    private final Thread acceptor;
    private volatile int frontendFd = -1;
    private volatile int backendFd = -1;

    RecordingRelay(Path path, Path backend) throws ErrnoException {
        this.path = path;
        this.backend = backend;
        this.listenFd = LINUX.listenUnix(path, 1);
        this.acceptor = Thread.ofPlatform().daemon().name("relay-accept").start(this::run);
    }

    Path path() {
        return path;
    }

    /** The front-end's requests so far, by name (CODE_n for unknown codes). */
    List<String> requests() {
        synchronized (requests) {
            return List.copyOf(requests);
        }
    }

    /** Messages the back-end sent back (replies and acks). */
    int replies() {
        return replies;
    }

    boolean backendClosed() {
        return backendClosed;
    }

    private void run() {
        try {
            frontendFd = LINUX.accept(listenFd);
            backendFd = LINUX.connectUnix(backend);
            Thread.ofPlatform().daemon().name("relay-b2f").start(() -> pump(backendFd, frontendFd, false));
            pump(frontendFd, backendFd, true);
        } catch (ErrnoException e) {
            // closed by the test
        }
    }

    /** Copies {@code from} to {@code to} until either end closes; records the messages it sees. */
    private void pump(int from, int to, boolean fromFrontend) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment chunk = arena.allocate(65536 + HEADER);
            ReceivedFds fds = new ReceivedFds();
            MessageCounter counter = new MessageCounter();
            int[] fdArray = new int[ReceivedFds.CAPACITY];
            while (true) {
                int n = LINUX.receive(from, chunk, (int) chunk.byteSize(), fds);
                if (n <= 0) {
                    break;
                }
                counter.feed(chunk, n, fromFrontend);
                int count = fds.count();
                for (int i = 0; i < count; i++) {
                    fdArray[i] = fds.take(i);
                }
                int sent = 0;
                while (sent < n) {
                    int s = LINUX.send(to, chunk.asSlice(sent), n - sent, fdArray, sent == 0 ? count : 0);
                    if (s <= 0) {
                        throw new ErrnoException("send", 0);
                    }
                    sent += s;
                }
                for (int i = 0; i < count; i++) {
                    LINUX.close(fdArray[i]);
                }
            }
        } catch (ErrnoException e) {
            // one end went away
        } finally {
            if (!fromFrontend) {
                backendClosed = true;
            }
            LINUX.shutdown(to);
        }
    }

    /** Splits a byte stream into vhost-user messages (12-byte header with the payload size at 8). */
    private final class MessageCounter {
        private final byte[] header = new byte[HEADER];
        private int headerBytes;
        private long payloadLeft;

        void feed(MemorySegment chunk, int n, boolean fromFrontend) {
            int at = 0;
            while (at < n) {
                if (payloadLeft > 0) {
                    int skip = (int) Math.min(payloadLeft, n - at);
                    payloadLeft -= skip;
                    at += skip;
                    continue;
                }
                header[headerBytes++] = chunk.get(ValueLayout.JAVA_BYTE, at++);
                if (headerBytes == HEADER) {
                    MemorySegment h = MemorySegment.ofArray(header);
                    int code = h.get(INT_LE, 0);
                    payloadLeft = Integer.toUnsignedLong(h.get(INT_LE, 8));
                    headerBytes = 0;
                    if (fromFrontend) {
                        FrontendRequest known = FrontendRequest.of(code);
                        requests.add(known == null ? "CODE_" + code : known.name());
                    } else {
                        replies++;
                    }
                }
            }
        }
    }

    @Override
    public void close() {
        LINUX.shutdown(listenFd);
        LINUX.close(listenFd);
        if (frontendFd >= 0) {
            LINUX.shutdown(frontendFd);
        }
        if (backendFd >= 0) {
            LINUX.shutdown(backendFd);
        }
        try {
            acceptor.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (frontendFd >= 0) {
            LINUX.close(frontendFd);
        }
        if (backendFd >= 0) {
            LINUX.close(backendFd);
        }
    }
}
