package dev.vhostdevice.vhostuser.sys;

import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * The native seam of the vhost-user engine: every system call this module makes (sockets with fd passing,
 * eventfd, epoll, read/write, close). Memory mapping and memory files go through virtqueue's
 * {@code MemoryMapper}.
 * {@link #system()} is the real one (java.lang.foreign); tests substitute their own to inject failures.
 *
 * <p>Fds are plain ints end to end. Every method that creates an fd creates it close-on-exec.
 */
public interface Linux {
    int EPOLLIN = 0x1;
    int EPOLLOUT = 0x4;
    /** poll(2) events: the same values as their epoll counterparts. */
    int POLLIN = 0x1;
    int POLLOUT = 0x4;
    int EPOLLERR = 0x8;
    int EPOLLHUP = 0x10;

    /** {@code socket(AF_UNIX, SOCK_STREAM)}, bound to {@code path} and listening. */
    int listenUnix(Path path, int backlog) throws ErrnoException;

    /** {@code accept4(SOCK_CLOEXEC)}: blocks until a peer connects. */
    int accept(int listenFd) throws ErrnoException;

    /** A connected {@code AF_UNIX} stream socket to {@code path} (for front-ends written in Java). */
    int connectUnix(Path path) throws ErrnoException;

    /** A connected pair of {@code AF_UNIX} stream sockets. */
    int[] socketPair() throws ErrnoException;

    /** {@code shutdown(SHUT_RDWR)}: wakes a thread blocked in accept or recvmsg on {@code fd}. Errors ignored. */
    void shutdown(int fd);

    /**
     * {@code recvmsg} of at most {@code length} bytes into {@code buffer}, collecting SCM_RIGHTS fds (received
     * close-on-exec) into {@code fds}. Returns the byte count, 0 at end of stream. If the kernel truncated the
     * ancillary data (MSG_CTRUNC) the fds that did arrive are closed and an {@link ErrnoException} (EINVAL) thrown.
     */
    int receive(int socket, MemorySegment buffer, int length, ReceivedFds fds) throws ErrnoException;

    /** {@code sendmsg(MSG_NOSIGNAL)} of {@code length} bytes with {@code fdCount} fds from {@code fds}. */
    int send(int socket, MemorySegment buffer, int length, int[] fds, int fdCount) throws ErrnoException;

    /** {@code eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)}. */
    int eventfd() throws ErrnoException;

    /** Reads and resets an eventfd counter; 0 when it was not signalled (EAGAIN). Allocates nothing. */
    long readEventfd(int fd) throws ErrnoException;

    /** Adds {@code value} to an eventfd counter. Allocates nothing. */
    void writeEventfd(int fd, long value) throws ErrnoException;

    /** A monotonic-clock timerfd, non-blocking and close-on-exec; its expirations read like an eventfd. */
    int timerfd() throws ErrnoException;

    /** Arms {@code timerFd} to expire once, {@code delayNanos} (at least 1) from now; replaces any earlier arming. */
    void armTimer(int timerFd, long delayNanos) throws ErrnoException;

    /**
     * {@code open(path, O_RDONLY | O_CLOEXEC)}: a host file or character device a device reads from directly
     * (an entropy source), so its bytes can go straight into guest memory with {@link #read}.
     */
    int openReadOnly(Path path) throws ErrnoException;

    /** {@code read(2)}: bytes read, 0 at end of file; -1 on EAGAIN. */
    long read(int fd, MemorySegment buffer, long length) throws ErrnoException;

    /** {@code write(2)}: bytes written; -1 on EAGAIN. */
    long write(int fd, MemorySegment buffer, long length) throws ErrnoException;

    /**
     * Sets O_NONBLOCK on {@code fd}: a ring or log fd that is not the non-blocking eventfd the front-end should
     * send (a pipe nobody reads, say) must not block the worker in {@link #writeEventfd} or {@link #readEventfd}.
     */
    void setNonBlocking(int fd) throws ErrnoException;

    /**
     * {@code poll} for {@code events} (POLLIN = 1) on one fd: true if ready within {@code timeoutMillis}, false on
     * timeout. EINTR retries with the full timeout.
     */
    boolean poll(int fd, int events, int timeoutMillis) throws ErrnoException;

    int epollCreate() throws ErrnoException;

    void epollAdd(int epollFd, int fd, int events, long data) throws ErrnoException;

    /** Changes the events and token of an fd already in the epoll set ({@code EPOLL_CTL_MOD}). */
    void epollModify(int epollFd, int fd, int events, long data) throws ErrnoException;

    void epollDelete(int epollFd, int fd) throws ErrnoException;

    /** {@code epoll_wait} into {@code events}; returns how many are ready, 0 on timeout or EINTR. */
    int epollWait(int epollFd, EpollEvents events, int timeoutMillis) throws ErrnoException;

    /** Closes {@code fd}; errors are ignored, as after {@code close(2)} the fd is gone either way. */
    void close(int fd);

    static Linux system() {
        return FfmLinux.INSTANCE;
    }
}
