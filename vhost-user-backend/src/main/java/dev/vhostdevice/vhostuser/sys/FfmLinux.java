package dev.vhostdevice.vhostuser.sys;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * {@link Linux} over glibc through java.lang.foreign. ABI values and struct layouts: java-platform.md §11
 * (LP64 Linux; epoll_event packed on x86_64 only).
 *
 * <p>Each thread gets its own scratch segments (msghdr, iovec, control buffer, errno state), so calls from
 * different threads never share native memory and the steady state allocates nothing.
 */
final class FfmLinux implements Linux {
    static final FfmLinux INSTANCE = new FfmLinux();

    private static final int AF_UNIX = 1;
    private static final int SOCK_STREAM = 1;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int SOL_SOCKET = 1;
    private static final int SCM_RIGHTS = 1;
    private static final int MSG_CTRUNC = 0x8;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final int MSG_CMSG_CLOEXEC = 0x40000000;
    private static final int SHUT_RDWR = 2;
    private static final int EFD_NONBLOCK = 0x800;
    private static final int EFD_CLOEXEC = 0x80000;
    private static final int CLOCK_MONOTONIC = 1;
    private static final int TFD_NONBLOCK = 0x800;
    private static final int TFD_CLOEXEC = 0x80000;
    private static final int EPOLL_CLOEXEC = 0x80000;
    private static final int EPOLL_CTL_ADD = 1;
    private static final int EPOLL_CTL_DEL = 2;
    private static final int EPOLL_CTL_MOD = 3;
    private static final int F_GETFL = 3;
    private static final int F_SETFL = 4;
    private static final int O_NONBLOCK = 0x800;
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;

    private static final long SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_MAX = 108;
    private static final long MSGHDR_SIZE = 56;
    private static final long CMSG_HEADER = 16;
    private static final long CONTROL_SIZE = CMSG_HEADER + 4L * ReceivedFds.CAPACITY;

    private static final int F_DUPFD_CLOEXEC = 1030;

    /**
     * The native linker and the errno capture: initialising them costs tens of milliseconds (the linker, then
     * the class-file API for the first stub), so a daemon listens before this class is touched
     * ({@link JdkListeningSocket}) and a front-end's connect succeeds meanwhile.
     */
    private static final class Abi {
        static final Linker LINKER = Linker.nativeLinker();
        static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
        static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    }

    // Downcall handles cost milliseconds each to link (a generated stub per distinct signature), so they are
    // grouped in holder classes that the JVM initialises at first use.

    /** Listening natively: when the JDK's channel cannot listen (its error is then reported with the errno). */
    private static final class Listening {
        static final MethodHandle SOCKET =
                downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle BIND =
                downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle LISTEN = downcall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }

    /** Accepting, connecting (front-ends written in Java), socket pairs and shutdown: after listening. */
    private static final class Sockets {
        static final MethodHandle CONNECT =
                downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle ACCEPT4 =
                downcall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        static final MethodHandle SOCKETPAIR =
                downcall("socketpair", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle SHUTDOWN =
                downcall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    }

    /** The vhost-user messages with their fds: needed from the first connection. */
    private static final class Messages {
        static final MethodHandle RECVMSG =
                downcall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle SENDMSG =
                downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    }

    /** eventfds, timers, epoll and plain reads and writes: needed once a front-end sets up rings. */
    private static final class Events {
        static final MethodHandle EVENTFD = downcall("eventfd", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle TIMERFD_CREATE =
                downcall("timerfd_create", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle TIMERFD_SETTIME =
                downcall("timerfd_settime", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle READ =
                downcall("read", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle WRITE =
                downcall("write", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle POLL =
                downcall("poll", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        static final MethodHandle EPOLL_CREATE1 =
                downcall("epoll_create1", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        static final MethodHandle EPOLL_CTL =
                downcall("epoll_ctl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle EPOLL_WAIT =
                downcall("epoll_wait", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
    }

    /** Opening a host file to read: the one call a device may make before listening (its source). */
    private static final class Opening {
        static final MethodHandle OPEN = downcall("open", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
    }

    /** fcntl and close. */
    private static final class Files {
        static final MethodHandle FCNTL_GET = downcall("fcntl", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
        static final MethodHandle FCNTL_SET =
                Abi.LINKER.downcallHandle(find("fcntl"), FunctionDescriptor.of(JAVA_INT,
                        JAVA_INT, JAVA_INT, JAVA_INT), Abi.CAPTURE_ERRNO, Linker.Option.firstVariadicArg(2));
        static final MethodHandle CLOSE =
                Abi.LINKER.downcallHandle(find("close"), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    }

    /** Per-thread native scratch memory; lives as long as the thread (automatic arena). */
    private static final class Scratch {
        final MemorySegment state = Arena.ofAuto().allocate(Abi.CALL_STATE);
        final MemorySegment msghdr = Arena.ofAuto().allocate(MSGHDR_SIZE, 8);
        final MemorySegment iovec = Arena.ofAuto().allocate(16, 8);
        final MemorySegment control = Arena.ofAuto().allocate(CONTROL_SIZE, 8);
        final MemorySegment sockaddr = Arena.ofAuto().allocate(SOCKADDR_UN_SIZE, 8);
        final MemorySegment value = Arena.ofAuto().allocate(16, 8);
        /** The eventfd value written; its own segment so the data path slices nothing (allocates nothing). */
        final MemorySegment counter = Arena.ofAuto().allocate(8, 8);
        /** A one-shot itimerspec (interval zero) for armTimer. */
        final MemorySegment timerSpec = Arena.ofAuto().allocate(32, 8);
    }

    /** A subclass rather than {@code withInitial(Scratch::new)}: no lambda to spin on the start path. */
    private static final ThreadLocal<Scratch> SCRATCH = new ThreadLocal<>() {
        @Override
        protected Scratch initialValue() {
            return new Scratch();
        }
    };

    private FfmLinux() {
    }

    private static MemorySegment find(String name) {
        java.util.Optional<MemorySegment> symbol = Abi.LINKER.defaultLookup().find(name);
        if (symbol.isEmpty()) {
            throw new UnsatisfiedLinkError(name);
        }
        return symbol.get();
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        return Abi.LINKER.downcallHandle(find(name), descriptor, Abi.CAPTURE_ERRNO);
    }

    private static int errno(MemorySegment state) {
        return (int) Abi.ERRNO.get(state, 0L);
    }

    private static AssertionError downcallFailed(String call, Throwable t) {
        return new AssertionError(call + " downcall", t);
    }

    private static byte[] socketPathBytes(Path path) throws ErrnoException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length >= SUN_PATH_MAX) {
            throw new ErrnoException("socket path longer than 107 bytes: " + path, Errno.EINVAL);
        }
        return bytes;
    }

    private static void fillAddress(MemorySegment sockaddr, Path path) throws ErrnoException {
        byte[] bytes = socketPathBytes(path);
        sockaddr.fill((byte) 0);
        sockaddr.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, sockaddr, JAVA_BYTE, 2, bytes.length);
    }

    /**
     * Listens through the JDK's channel first (see {@link JdkListeningSocket}), then adopts its socket as an fd
     * of our own; natively when the JDK cannot, so a failure is reported with its errno.
     */
    @Override
    public int listenUnix(Path path, int backlog) throws ErrnoException {
        socketPathBytes(path);
        JdkListeningSocket listening = JdkListeningSocket.listen(path, backlog);
        if (listening == null) {
            return listenNatively(path, backlog);
        }
        try {
            return duplicate(listening.fd());
        } finally {
            listening.close(); // the duplicate keeps the socket listening, with its queued connections
        }
    }

    /** {@code fcntl(F_DUPFD_CLOEXEC)}: a close-on-exec duplicate of {@code fd}. */
    private static int duplicate(int fd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int copy = (int) Files.FCNTL_SET.invokeExact(s.state, fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                throw new ErrnoException("fcntl(F_DUPFD_CLOEXEC)", errno(s.state));
            }
            return copy;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("fcntl", t);
        }
    }

    private int listenNatively(Path path, int backlog) throws ErrnoException {
        Scratch s = SCRATCH.get();
        fillAddress(s.sockaddr, path);
        int fd;
        try {
            fd = (int) Listening.SOCKET.invokeExact(s.state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw new ErrnoException("socket", errno(s.state));
            }
            if ((int) Listening.BIND.invokeExact(s.state, fd, s.sockaddr, (int) SOCKADDR_UN_SIZE) != 0) {
                int err = errno(s.state);
                close(fd);
                throw new ErrnoException("bind " + path, err);
            }
            if ((int) Listening.LISTEN.invokeExact(s.state, fd, backlog) != 0) {
                int err = errno(s.state);
                close(fd);
                throw new ErrnoException("listen", err);
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("listen", t);
        }
    }

    @Override
    public int accept(int listenFd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                int fd = (int) Sockets.ACCEPT4.invokeExact(s.state, listenFd, MemorySegment.NULL, MemorySegment.NULL, SOCK_CLOEXEC);
                if (fd >= 0) {
                    return fd;
                }
                int err = errno(s.state);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("accept4", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("accept4", t);
        }
    }

    @Override
    public int connectUnix(Path path) throws ErrnoException {
        Scratch s = SCRATCH.get();
        fillAddress(s.sockaddr, path);
        try {
            int fd = (int) Listening.SOCKET.invokeExact(s.state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                throw new ErrnoException("socket", errno(s.state));
            }
            if ((int) Sockets.CONNECT.invokeExact(s.state, fd, s.sockaddr, (int) SOCKADDR_UN_SIZE) != 0) {
                int err = errno(s.state);
                close(fd);
                throw new ErrnoException("connect " + path, err);
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("connect", t);
        }
    }

    @Override
    public int[] socketPair() throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            if ((int) Sockets.SOCKETPAIR.invokeExact(s.state, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s.value) != 0) {
                throw new ErrnoException("socketpair", errno(s.state));
            }
            return new int[] {s.value.get(JAVA_INT, 0), s.value.get(JAVA_INT, 4)};
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("socketpair", t);
        }
    }

    @Override
    public void shutdown(int fd) {
        Scratch s = SCRATCH.get();
        try {
            int ignored = (int) Sockets.SHUTDOWN.invokeExact(s.state, fd, SHUT_RDWR);
        } catch (Throwable t) {
            throw downcallFailed("shutdown", t);
        }
    }

    private static void prepareMessage(Scratch s, MemorySegment buffer, int length, long controlLength) {
        s.iovec.set(ADDRESS, 0, buffer);
        s.iovec.set(JAVA_LONG, 8, length);
        s.msghdr.fill((byte) 0);
        s.msghdr.set(ADDRESS, 16, s.iovec);
        s.msghdr.set(JAVA_LONG, 24, 1L);
        if (controlLength > 0) {
            s.msghdr.set(ADDRESS, 32, s.control);
            s.msghdr.set(JAVA_LONG, 40, controlLength);
        }
    }

    @Override
    public int receive(int socket, MemorySegment buffer, int length, ReceivedFds fds) throws ErrnoException {
        Scratch s = SCRATCH.get();
        fds.clear();
        try {
            long n;
            while (true) {
                prepareMessage(s, buffer, length, CONTROL_SIZE);
                s.control.fill((byte) 0);
                n = (long) Messages.RECVMSG.invokeExact(s.state, socket, s.msghdr, MSG_CMSG_CLOEXEC);
                if (n >= 0) {
                    break;
                }
                int err = errno(s.state);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("recvmsg", err);
                }
            }
            collectFds(s, fds);
            if ((s.msghdr.get(JAVA_INT, 48) & MSG_CTRUNC) != 0) {
                fds.closeAll(this);
                throw new ErrnoException("recvmsg (MSG_CTRUNC: more fds than fit, message refused)", Errno.EINVAL);
            }
            return (int) n;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("recvmsg", t);
        }
    }

    private static void collectFds(Scratch s, ReceivedFds fds) {
        long controlLength = s.msghdr.get(JAVA_LONG, 40);
        long offset = 0;
        while (offset + CMSG_HEADER <= controlLength) {
            long cmsgLength = s.control.get(JAVA_LONG, offset);
            if (cmsgLength < CMSG_HEADER || offset + cmsgLength > controlLength) {
                break;
            }
            int level = s.control.get(JAVA_INT, offset + 8);
            int type = s.control.get(JAVA_INT, offset + 12);
            if (level == SOL_SOCKET && type == SCM_RIGHTS) {
                long count = (cmsgLength - CMSG_HEADER) / 4;
                for (long i = 0; i < count && fds.count() < ReceivedFds.CAPACITY; i++) {
                    fds.add(s.control.get(JAVA_INT, offset + CMSG_HEADER + 4 * i));
                }
            }
            offset += (cmsgLength + 7) & ~7L;
        }
    }

    @Override
    public int send(int socket, MemorySegment buffer, int length, int[] fds, int fdCount) throws ErrnoException {
        if (fdCount > ReceivedFds.CAPACITY) {
            throw new ErrnoException("sendmsg (too many fds)", Errno.EINVAL);
        }
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                long controlLength = 0;
                if (fdCount > 0) {
                    controlLength = (CMSG_HEADER + 4L * fdCount + 7) & ~7L;
                    s.control.fill((byte) 0);
                    s.control.set(JAVA_LONG, 0, CMSG_HEADER + 4L * fdCount);
                    s.control.set(JAVA_INT, 8, SOL_SOCKET);
                    s.control.set(JAVA_INT, 12, SCM_RIGHTS);
                    for (int i = 0; i < fdCount; i++) {
                        s.control.set(JAVA_INT, CMSG_HEADER + 4L * i, fds[i]);
                    }
                }
                prepareMessage(s, buffer, length, controlLength);
                long n = (long) Messages.SENDMSG.invokeExact(s.state, socket, s.msghdr, MSG_NOSIGNAL);
                if (n >= 0) {
                    return (int) n;
                }
                int err = errno(s.state);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("sendmsg", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("sendmsg", t);
        }
    }

    @Override
    public int eventfd() throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int fd = (int) Events.EVENTFD.invokeExact(s.state, 0, EFD_NONBLOCK | EFD_CLOEXEC);
            if (fd < 0) {
                throw new ErrnoException("eventfd", errno(s.state));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("eventfd", t);
        }
    }

    @Override
    public int timerfd() throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int fd = (int) Events.TIMERFD_CREATE.invokeExact(s.state, CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
            if (fd < 0) {
                throw new ErrnoException("timerfd_create", errno(s.state));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("timerfd_create", t);
        }
    }

    @Override
    public void armTimer(int timerFd, long delayNanos) throws ErrnoException {
        long delay = Math.max(1, delayNanos); // an all-zero it_value would disarm the timer instead
        try {
            Scratch s = SCRATCH.get();
            // struct itimerspec { timespec it_interval; timespec it_value; }, timespec = { s64 sec; s64 nsec }.
            MemorySegment spec = s.timerSpec;
            spec.set(JAVA_LONG, 16, delay / 1_000_000_000L);
            spec.set(JAVA_LONG, 24, delay % 1_000_000_000L);
            int rc = (int) Events.TIMERFD_SETTIME.invokeExact(s.state, timerFd, 0, spec, MemorySegment.NULL);
            if (rc != 0) {
                throw new ErrnoException("timerfd_settime", errno(s.state));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("timerfd_settime", t);
        }
    }

    @Override
    public long readEventfd(int fd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        long n = read(fd, s.value, 8);
        return n == 8 ? s.value.get(JAVA_LONG, 0) : 0;
    }

    @Override
    public void writeEventfd(int fd, long value) throws ErrnoException {
        Scratch s = SCRATCH.get();
        s.counter.set(JAVA_LONG, 0, value);
        // EAGAIN means the counter is saturated: the reader will wake anyway.
        write(fd, s.counter, 8);
    }

    @Override
    public int openReadOnly(Path path) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment cPath = call.allocateFrom(path.toString());
            while (true) {
                int fd = (int) Opening.OPEN.invokeExact(s.state, cPath, O_RDONLY | O_CLOEXEC);
                if (fd >= 0) {
                    return fd;
                }
                int err = errno(s.state);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("open " + path, err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("open", t);
        }
    }

    @Override
    public long read(int fd, MemorySegment buffer, long length) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                long n = (long) Events.READ.invokeExact(s.state, fd, buffer, length);
                if (n >= 0) {
                    return n;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("read", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("read", t);
        }
    }

    @Override
    public long write(int fd, MemorySegment buffer, long length) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                long n = (long) Events.WRITE.invokeExact(s.state, fd, buffer, length);
                if (n >= 0) {
                    return n;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("write", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("write", t);
        }
    }

    @Override
    public void setNonBlocking(int fd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int flags = (int) Files.FCNTL_GET.invokeExact(s.state, fd, F_GETFL);
            if (flags < 0) {
                throw new ErrnoException("fcntl(F_GETFL)", errno(s.state));
            }
            int wanted = flags | O_NONBLOCK;
            if (wanted != flags && (int) Files.FCNTL_SET.invokeExact(s.state, fd, F_SETFL, wanted) < 0) {
                throw new ErrnoException("fcntl(F_SETFL)", errno(s.state));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("fcntl", t);
        }
    }

    @Override
    public boolean poll(int fd, int events, int timeoutMillis) throws ErrnoException {
        Scratch s = SCRATCH.get();
        // struct pollfd { int fd; short events; short revents; }
        s.value.set(JAVA_INT, 0, fd);
        s.value.set(JAVA_SHORT, 4, (short) events);
        s.value.set(JAVA_SHORT, 6, (short) 0);
        try {
            while (true) {
                int n = (int) Events.POLL.invokeExact(s.state, s.value, 1L, timeoutMillis);
                if (n >= 0) {
                    return n > 0;
                }
                int err = errno(s.state);
                if (err != Errno.EINTR) {
                    throw new ErrnoException("poll", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("poll", t);
        }
    }

    @Override
    public int epollCreate() throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int fd = (int) Events.EPOLL_CREATE1.invokeExact(s.state, EPOLL_CLOEXEC);
            if (fd < 0) {
                throw new ErrnoException("epoll_create1", errno(s.state));
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("epoll_create1", t);
        }
    }

    @Override
    public void epollAdd(int epollFd, int fd, int events, long data) throws ErrnoException {
        epollCtl(epollFd, EPOLL_CTL_ADD, fd, events, data);
    }

    @Override
    public void epollModify(int epollFd, int fd, int events, long data) throws ErrnoException {
        epollCtl(epollFd, EPOLL_CTL_MOD, fd, events, data);
    }

    private void epollCtl(int epollFd, int op, int fd, int events, long data) throws ErrnoException {
        Scratch s = SCRATCH.get();
        s.value.set(JAVA_INT, 0, events);
        s.value.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, EpollEvents.DATA_OFFSET, data);
        epollCtl(s, epollFd, op, fd);
    }

    @Override
    public void epollDelete(int epollFd, int fd) throws ErrnoException {
        epollCtl(SCRATCH.get(), epollFd, EPOLL_CTL_DEL, fd);
    }

    private void epollCtl(Scratch s, int epollFd, int op, int fd) throws ErrnoException {
        try {
            if ((int) Events.EPOLL_CTL.invokeExact(s.state, epollFd, op, fd, s.value) != 0) {
                throw new ErrnoException("epoll_ctl", errno(s.state));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("epoll_ctl", t);
        }
    }

    @Override
    public int epollWait(int epollFd, EpollEvents events, int timeoutMillis) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            int n = (int) Events.EPOLL_WAIT.invokeExact(s.state, epollFd, events.segment(), events.capacity(), timeoutMillis);
            if (n >= 0) {
                return n;
            }
            int err = errno(s.state);
            if (err == Errno.EINTR) {
                return 0;
            }
            throw new ErrnoException("epoll_wait", err);
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw downcallFailed("epoll_wait", t);
        }
    }

    @Override
    public void close(int fd) {
        if (fd < 0) {
            return;
        }
        try {
            int ignored = (int) Files.CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw downcallFailed("close", t);
        }
    }
}
