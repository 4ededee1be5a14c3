package dev.vhostdevice.vsock;

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
 * {@link HostSockets} over glibc through java.lang.foreign (LP64 Linux layouts: sockaddr_un 110 bytes, msghdr 56
 * with iov at 16 and iovlen at 24). Per-thread scratch (errno state, msghdr, sockaddr), so the data path
 * allocates nothing.
 */
final class FfmHostSockets implements HostSockets {
    static final FfmHostSockets INSTANCE = new FfmHostSockets();

    private static final int AF_UNIX = 1;
    private static final int SOCK_NONBLOCK = 0x800;
    private static final int SOCK_CLOEXEC = 0x80000;
    private static final int MSG_PEEK = 0x2;
    private static final int MSG_TRUNC = 0x20;
    private static final int MSG_DONTWAIT = 0x40;
    private static final int MSG_NOSIGNAL = 0x4000;
    private static final long SOCKADDR_UN_SIZE = 110;
    private static final int SUN_PATH_MAX = 108;
    private static final long MSGHDR_SIZE = 56;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle SOCKET = downcall("socket", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle BIND = downcall("bind", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle LISTEN = downcall("listen", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CONNECT =
            downcall("connect", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle ACCEPT4 =
            downcall("accept4", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    private static final MethodHandle RECVMSG =
            downcall("recvmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle SENDMSG =
            downcall("sendmsg", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_INT));
    private static final MethodHandle RECV =
            downcall("recv", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
    private static final MethodHandle SHUTDOWN = downcall("shutdown", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT));
    private static final MethodHandle CLOSE = downcall("close", FunctionDescriptor.of(JAVA_INT, JAVA_INT));

    private static final class Scratch {
        final MemorySegment state = Arena.ofAuto().allocate(CALL_STATE);
        final MemorySegment msghdr = Arena.ofAuto().allocate(MSGHDR_SIZE, 8);
        final MemorySegment sockaddr = Arena.ofAuto().allocate(SOCKADDR_UN_SIZE, 8);
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private FfmHostSockets() {
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = LINKER.defaultLookup().find(name).orElseThrow(() -> new UnsatisfiedLinkError(name));
        return LINKER.downcallHandle(symbol, descriptor, Linker.Option.captureCallState("errno"));
    }

    private static int errno(MemorySegment state) {
        return (int) ERRNO.get(state, 0L);
    }

    private static AssertionError failed(String call, Throwable t) {
        return new AssertionError(call + " downcall", t);
    }

    private static void fillAddress(MemorySegment sockaddr, Path path) throws ErrnoException {
        byte[] bytes = path.toString().getBytes(StandardCharsets.UTF_8);
        if (bytes.length >= SUN_PATH_MAX) {
            throw new ErrnoException("socket path longer than 107 bytes: " + path, Errno.EINVAL);
        }
        sockaddr.fill((byte) 0);
        sockaddr.set(JAVA_SHORT, 0, (short) AF_UNIX);
        MemorySegment.copy(bytes, 0, sockaddr, JAVA_BYTE, 2, bytes.length);
    }

    private int socket(Scratch s, int type) throws Throwable {
        int fd = (int) SOCKET.invokeExact(s.state, AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            throw new ErrnoException("socket", errno(s.state));
        }
        return fd;
    }

    @Override
    public int listen(Path path, int type, int backlog) throws ErrnoException {
        Scratch s = SCRATCH.get();
        fillAddress(s.sockaddr, path);
        try {
            int fd = socket(s, type);
            if ((int) BIND.invokeExact(s.state, fd, s.sockaddr, (int) SOCKADDR_UN_SIZE) != 0
                    || (int) LISTEN.invokeExact(s.state, fd, backlog) != 0) {
                int err = errno(s.state);
                close(fd);
                throw new ErrnoException("bind/listen " + path, err);
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("listen", t);
        }
    }

    @Override
    public int accept(int listenFd) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                int fd = (int) ACCEPT4.invokeExact(s.state, listenFd, MemorySegment.NULL, MemorySegment.NULL,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd >= 0) {
                    return fd;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return -1;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("accept4", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("accept4", t);
        }
    }

    @Override
    public int connect(Path path, int type) throws ErrnoException {
        Scratch s = SCRATCH.get();
        fillAddress(s.sockaddr, path);
        try {
            int fd = socket(s, type);
            if ((int) CONNECT.invokeExact(s.state, fd, s.sockaddr, (int) SOCKADDR_UN_SIZE) != 0) {
                int err = errno(s.state);
                close(fd);
                throw new ErrnoException("connect " + path, err);
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("connect", t);
        }
    }

    private static void prepare(Scratch s, IoVector vector) {
        s.msghdr.fill((byte) 0);
        s.msghdr.set(ADDRESS, 16, vector.table());
        s.msghdr.set(JAVA_LONG, 24, vector.count());
    }

    @Override
    public long receive(int fd, IoVector vector) throws ErrnoException {
        return recvmsg(fd, vector, 0);
    }

    @Override
    public long receiveMessage(int fd, IoVector vector) throws ErrnoException {
        return recvmsg(fd, vector, MSG_TRUNC);
    }

    private long recvmsg(int fd, IoVector vector, int flags) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                prepare(s, vector);
                long n = (long) RECVMSG.invokeExact(s.state, fd, s.msghdr, flags | MSG_DONTWAIT);
                if (n >= 0) {
                    return n;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return WOULD_BLOCK;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("recvmsg", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("recvmsg", t);
        }
    }

    @Override
    public long send(int fd, IoVector vector) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                prepare(s, vector);
                long n = (long) SENDMSG.invokeExact(s.state, fd, s.msghdr, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0) {
                    return n;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return WOULD_BLOCK;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("sendmsg", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("sendmsg", t);
        }
    }

    @Override
    public long peek(int fd, MemorySegment buffer, long length) throws ErrnoException {
        Scratch s = SCRATCH.get();
        try {
            while (true) {
                long n = (long) RECV.invokeExact(s.state, fd, buffer, length, MSG_PEEK | MSG_DONTWAIT);
                if (n >= 0) {
                    return n;
                }
                int err = errno(s.state);
                if (err == Errno.EAGAIN) {
                    return WOULD_BLOCK;
                }
                if (err != Errno.EINTR) {
                    throw new ErrnoException("recv(MSG_PEEK)", err);
                }
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw failed("recv", t);
        }
    }

    @Override
    public void shutdown(int fd, int how) {
        Scratch s = SCRATCH.get();
        try {
            int ignored = (int) SHUTDOWN.invokeExact(s.state, fd, how);
        } catch (Throwable t) {
            throw failed("shutdown", t);
        }
    }

    @Override
    public void close(int fd) {
        Scratch s = SCRATCH.get();
        try {
            int ignored = (int) CLOSE.invokeExact(s.state, fd);
        } catch (Throwable t) {
            throw failed("close", t);
        }
    }
}
