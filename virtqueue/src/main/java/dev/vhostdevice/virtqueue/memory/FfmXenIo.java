package dev.vhostdevice.virtqueue.memory;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@link XenIo} over glibc through java.lang.foreign. */
final class FfmXenIo implements XenIo {
    static final FfmXenIo INSTANCE = new FfmXenIo();

    private static final int MAP_SHARED = 1;
    private static final long MAP_FAILED = -1L;
    private static final int F_DUPFD_CLOEXEC = 1030;
    /** {@code _SC_PAGESIZE} in glibc's {@code <bits/confname.h>} (the same on every Linux architecture). */
    private static final int SC_PAGESIZE = 30;

    /** The linker and the errno capture, initialised at first use: a daemon listens before they are. */
    private static final class Abi {
        static final Linker LINKER = Linker.nativeLinker();
        static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
        static final VarHandle ERRNO = CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    }

    /** Linked at first use: a daemon that never meets a Xen region never links them. */
    private static final class Calls {
        static final MethodHandle MMAP = Abi.LINKER.downcallHandle(find("mmap"),
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG),
                Abi.CAPTURE_ERRNO);
        static final MethodHandle MUNMAP =
                Abi.LINKER.downcallHandle(find("munmap"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        /** ioctl(int, unsigned long, ...): variadic from its third argument. */
        static final MethodHandle IOCTL = Abi.LINKER.downcallHandle(find("ioctl"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, ADDRESS), Abi.CAPTURE_ERRNO,
                Linker.Option.firstVariadicArg(2));
        static final MethodHandle FCNTL = Abi.LINKER.downcallHandle(find("fcntl"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Abi.CAPTURE_ERRNO,
                Linker.Option.firstVariadicArg(2));
        static final MethodHandle CLOSE =
                Abi.LINKER.downcallHandle(find("close"), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        static final MethodHandle SYSCONF =
                Abi.LINKER.downcallHandle(find("sysconf"), FunctionDescriptor.of(JAVA_LONG, JAVA_INT));
    }

    /** Read once: the page size does not change while the process runs. */
    private static final class PageSize {
        static final long VALUE = read();

        private static long read() {
            try {
                long size = (long) Calls.SYSCONF.invokeExact(SC_PAGESIZE);
                if (size <= 0) {
                    throw new IllegalStateException("sysconf(_SC_PAGESIZE) returned " + size);
                }
                return size;
            } catch (RuntimeException e) {
                throw e;
            } catch (Throwable t) {
                throw new AssertionError("sysconf downcall", t);
            }
        }
    }

    private FfmXenIo() {
    }

    private static MemorySegment find(String name) {
        return Abi.LINKER.defaultLookup().find(name).orElseThrow();
    }

    private static int errno(MemorySegment state) {
        return (int) Abi.ERRNO.get(state, 0L);
    }

    @Override
    public boolean devicesPresent() {
        return Files.exists(Path.of("/dev/xen/privcmd")) || Files.exists(Path.of("/dev/xen/gntdev"));
    }

    @Override
    public long pageSize() {
        return PageSize.VALUE;
    }

    @Override
    public long mmap(long length, int prot, int fd, long offset) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            MemorySegment base = (MemorySegment) Calls.MMAP.invokeExact(state, MemorySegment.NULL, length, prot,
                    MAP_SHARED, fd, offset);
            if (base.address() == MAP_FAILED) {
                throw new ErrnoException("mmap", errno(state));
            }
            return base.address();
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("mmap downcall", t);
        }
    }

    @Override
    public void munmap(long address, long length) {
        try {
            int ignored = (int) Calls.MUNMAP.invokeExact(MemorySegment.ofAddress(address), length);
        } catch (Throwable t) {
            throw new AssertionError("munmap downcall", t);
        }
    }

    @Override
    public void ioctl(int fd, long request, MemorySegment arg, String what) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            int rc = (int) Calls.IOCTL.invokeExact(state, fd, request, arg);
            if (rc < 0) {
                throw new ErrnoException(what, errno(state));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("ioctl downcall", t);
        }
    }

    @Override
    public int dup(int fd) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            int copy = (int) Calls.FCNTL.invokeExact(state, fd, F_DUPFD_CLOEXEC, 0);
            if (copy < 0) {
                throw new ErrnoException("fcntl(F_DUPFD_CLOEXEC)", errno(state));
            }
            return copy;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("fcntl downcall", t);
        }
    }

    @Override
    public void close(int fd) {
        try {
            int ignored = (int) Calls.CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new AssertionError("close downcall", t);
        }
    }
}
