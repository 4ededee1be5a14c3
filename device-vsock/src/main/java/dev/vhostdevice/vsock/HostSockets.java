package dev.vhostdevice.vsock;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The native seam of the vsock device: non-blocking AF_UNIX stream and seqpacket sockets, moving bytes straight
 * between guest memory and the socket (scatter-gather through an {@link IoVector}, no intermediate buffer).
 * {@link #system()} is the real one (java.lang.foreign); tests may substitute their own. Every fd is
 * close-on-exec and non-blocking.
 *
 * <p>Return conventions: a byte count, 0 at end of stream, {@link #WOULD_BLOCK} when the call would block;
 * any other failure is an {@link ErrnoException} naming the errno (EPIPE, ECONNRESET …).
 */
public interface HostSockets {
    int SOCK_STREAM = 1;
    int SOCK_SEQPACKET = 5;
    int SHUT_RD = 0;
    int SHUT_WR = 1;
    long WOULD_BLOCK = -1;

    /** A non-blocking listener of {@code type} bound to {@code path} (the file must not exist). */
    int listen(Path path, int type, int backlog) throws ErrnoException;

    /** {@code accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)}: the new fd, or -1 when no peer is waiting. */
    int accept(int listenFd) throws ErrnoException;

    /**
     * A non-blocking socket of {@code type} connected to {@code path}. AF_UNIX connects complete at once or
     * fail: ENOENT/ECONNREFUSED when nothing listens, EAGAIN when the listener's backlog is full.
     */
    int connect(Path path, int type) throws ErrnoException;

    /** {@code recvmsg} of a stream socket into the vector's pieces. */
    long receive(int fd, IoVector vector) throws ErrnoException;

    /**
     * {@code recvmsg(MSG_TRUNC)} of one seqpacket message into the vector's pieces: returns the message's full
     * length, which is more than {@link IoVector#bytes()} when the message was cut (the rest is gone).
     */
    long receiveMessage(int fd, IoVector vector) throws ErrnoException;

    /** {@code sendmsg(MSG_NOSIGNAL)} of the vector's pieces (a seqpacket socket sends them as one message). */
    long send(int fd, IoVector vector) throws ErrnoException;

    /** {@code recv(MSG_PEEK)} of up to {@code length} bytes into {@code buffer}: nothing is consumed. */
    long peek(int fd, MemorySegment buffer, long length) throws ErrnoException;

    /** {@code shutdown(how)}; errors (the peer is gone already) are ignored. */
    void shutdown(int fd, int how);

    void close(int fd);

    static HostSockets system() {
        return FfmHostSockets.INSTANCE;
    }
}
