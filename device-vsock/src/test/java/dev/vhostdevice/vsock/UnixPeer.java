package dev.vhostdevice.vsock;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The host program's end in tests: a real AF_UNIX socket (stream or seqpacket) through the same FFM seam,
 * with blocking-style calls that wait with poll(2) and a deadline. Also the byte pattern both sides check.
 */
final class UnixPeer implements AutoCloseable {
    static final HostSockets SOCKETS = HostSockets.system();
    static final Linux LINUX = Linux.system();
    private static final int TIMEOUT_MS = 60_000;

    final int fd;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buffer = arena.allocate(1 << 17);
    private final IoVector vector = new IoVector(arena);

    UnixPeer(int fd) {
        this.fd = fd;
    }

    static UnixPeer connect(Path path, int type) throws ErrnoException {
        return new UnixPeer(SOCKETS.connect(path, type));
    }

    /** vsock-xfer.c's pattern period: a prime no packet or buffer size divides. */
    private static final int PERIOD = 65521;

    /** pattern(i): what byte i of every checked transfer holds, as vsock-xfer.c computes it. */
    static byte pattern(long i) {
        int k = (int) (i % PERIOD);
        return (byte) ((k * (int) 2654435761L) >>> 13);
    }

    static byte[] pattern(long from, int length) {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++) {
            bytes[i] = pattern(from + i);
        }
        return bytes;
    }

    /** A listener; {@link #accept} waits for a peer. */
    static int listen(Path path, int type) throws ErrnoException {
        return SOCKETS.listen(path, type, 16);
    }

    static UnixPeer accept(int listenFd, int timeoutMs) throws IOException {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (true) {
            int fd = SOCKETS.accept(listenFd);
            if (fd >= 0) {
                return new UnixPeer(fd);
            }
            waitFor(listenFd, Linux.POLLIN, deadline);
        }
    }

    private static void waitFor(int fd, int events, long deadline) throws IOException {
        long left = (deadline - System.nanoTime()) / 1_000_000;
        if (left <= 0) {
            throw new IOException("timed out waiting on fd " + fd);
        }
        LINUX.poll(fd, events, (int) Math.min(left, 1000));
    }

    void write(byte[] bytes) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT_MS * 1_000_000L;
        int done = 0;
        while (done < bytes.length) {
            int step = (int) Math.min(bytes.length - done, buffer.byteSize());
            MemorySegment.copy(bytes, done, buffer, ValueLayout.JAVA_BYTE, 0, step);
            vector.clear();
            vector.add(buffer, 0, step);
            long n = SOCKETS.send(fd, vector);
            if (n == HostSockets.WOULD_BLOCK) {
                waitFor(fd, Linux.POLLOUT, deadline);
            } else {
                done += (int) n;
            }
        }
    }

    void writeText(String text) throws IOException {
        write(text.getBytes(StandardCharsets.US_ASCII));
    }

    /** Up to {@code max} bytes (a seqpacket socket: one message); empty at end of stream. */
    byte[] read(int max) throws IOException {
        long deadline = System.nanoTime() + TIMEOUT_MS * 1_000_000L;
        while (true) {
            vector.clear();
            vector.add(buffer, 0, Math.min(max, buffer.byteSize()));
            long n = SOCKETS.receive(fd, vector);
            if (n >= 0) {
                byte[] bytes = new byte[(int) n];
                MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, bytes, 0, (int) n);
                return bytes;
            }
            waitFor(fd, Linux.POLLIN, deadline);
        }
    }

    /** Up to {@code max} bytes if any arrive within {@code millis}, else null; empty at end of stream. */
    byte[] readWithin(int max, int millis) throws IOException {
        if (!LINUX.poll(fd, Linux.POLLIN, millis)) {
            return null;
        }
        return read(max);
    }

    /** Whether the device closed this socket: end of stream, or a reset when it left bytes unread. */
    boolean isClosedByPeer() throws IOException {
        try {
            return readLine() == null;
        } catch (ErrnoException e) {
            return e.errno() == dev.vhostdevice.virtqueue.memory.Errno.ECONNRESET;
        }
    }

    /** Everything up to end of stream. */
    byte[] readToEnd() throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        byte[] chunk;
        while ((chunk = read(1 << 17)).length > 0) {
            all.writeBytes(chunk);
        }
        return all.toByteArray();
    }

    /** Reads to end of stream checking the pattern; returns the count, throws at the first wrong byte. */
    long readPatternToEnd() throws IOException {
        long offset = 0;
        byte[] chunk;
        while ((chunk = read(1 << 17)).length > 0) {
            for (int i = 0; i < chunk.length; i++) {
                if (chunk[i] != pattern(offset + i)) {
                    throw new IOException("byte " + (offset + i) + " is " + chunk[i] + ", not " + pattern(offset + i));
                }
            }
            offset += chunk.length;
        }
        return offset;
    }

    /** Writes {@code total} pattern bytes. */
    void writePattern(long total) throws IOException {
        for (long off = 0; off < total; off += 65536) {
            write(pattern(off, (int) Math.min(65536, total - off)));
        }
    }

    /** One line (without its newline), read byte by byte so nothing after it is consumed. */
    String readLine() throws IOException {
        StringBuilder line = new StringBuilder();
        while (true) {
            byte[] b = read(1);
            if (b.length == 0) {
                return line.length() == 0 ? null : line.toString();
            }
            if (b[0] == '\n') {
                return line.toString();
            }
            line.append((char) b[0]);
        }
    }

    void shutdownOutput() {
        SOCKETS.shutdown(fd, HostSockets.SHUT_WR);
    }

    @Override
    public void close() {
        SOCKETS.close(fd);
        arena.close();
    }
}
