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

/** {@link MemoryMapper} over glibc through java.lang.foreign. */
final class FfmMemoryMapper implements MemoryMapper {
    static final FfmMemoryMapper INSTANCE = new FfmMemoryMapper();

    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_SHARED = 1;
    private static final int MFD_CLOEXEC = 1;
    private static final int MFD_ALLOW_SEALING = 2;
    private static final int F_ADD_SEALS = 1033;
    private static final int F_GET_SEALS = 1034;
    private static final long MAP_FAILED = -1L;
    /** {@code struct stat}: 144 bytes on x86_64, 128 on arm64; {@code st_size} is at 48 on both. */
    private static final long STAT_BYTES = 144;
    private static final long STAT_ST_SIZE = 48;
    private static final long PAGE_SIZE = 4096;

    /** The linker and the errno capture, initialised at first use: a daemon listens before they are. */
    private static final class Abi {
        static final Linker LINKER = Linker.nativeLinker();
        static final StructLayout CALL_STATE = Linker.Option.captureStateLayout();
        static final VarHandle ERRNO =
                CALL_STATE.varHandle(MemoryLayout.PathElement.groupElement("errno"));
        static final Linker.Option CAPTURE_ERRNO = Linker.Option.captureCallState("errno");
    }

    /** Linked at first use (each handle costs milliseconds), so a server listens before it maps anything. */
    private static final class Calls {
        static final MethodHandle MMAP = downcall("mmap",
                FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        static final MethodHandle MUNMAP = Abi.LINKER.downcallHandle(
                Abi.LINKER.defaultLookup().find("munmap").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        static final MethodHandle FSTAT = downcall("fstat", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle MEMFD_CREATE =
                downcall("memfd_create", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        static final MethodHandle FTRUNCATE =
                downcall("ftruncate", FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG));
        /** fcntl(fd, cmd, int): variadic from its third argument. */
        static final MethodHandle FCNTL = Abi.LINKER.downcallHandle(
                Abi.LINKER.defaultLookup().find("fcntl").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT), Abi.CAPTURE_ERRNO,
                Linker.Option.firstVariadicArg(2));
        static final MethodHandle CLOSE = Abi.LINKER.downcallHandle(
                Abi.LINKER.defaultLookup().find("close").orElseThrow(), FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    }

    private FfmMemoryMapper() {
    }

    private static MethodHandle downcall(String name, FunctionDescriptor descriptor) {
        return Abi.LINKER.downcallHandle(Abi.LINKER.defaultLookup().find(name).orElseThrow(), descriptor,
                Abi.CAPTURE_ERRNO);
    }

    private static int errno(MemorySegment state) {
        return (int) Abi.ERRNO.get(state, 0L);
    }

    @Override
    public long fileSize(int fd) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            MemorySegment stat = call.allocate(STAT_BYTES, 8);
            int rc = (int) Calls.FSTAT.invokeExact(state, fd, stat);
            if (rc != 0) {
                throw new ErrnoException("fstat", errno(state));
            }
            return stat.get(JAVA_LONG, STAT_ST_SIZE);
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("fstat downcall", t);
        }
    }

    @Override
    public MemorySegment map(int fd, long offset, long length, Arena arena) throws ErrnoException {
        if (offset < 0 || length <= 0) {
            throw new ErrnoException("mmap", Errno.EINVAL);
        }
        // mmap wants a page-aligned file offset: map from the page boundary below and slice.
        long lead = offset % PAGE_SIZE;
        long mapLength = length + lead;
        MemorySegment base;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            base = (MemorySegment) Calls.MMAP.invokeExact(state, MemorySegment.NULL, mapLength,
                    PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset - lead);
            if (base.address() == MAP_FAILED) {
                throw new ErrnoException("mmap", errno(state));
            }
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("mmap downcall", t);
        }
        long address = base.address();
        MemorySegment mapping = base.reinterpret(mapLength, arena, unused -> unmap(address, mapLength));
        return mapping.asSlice(lead, length);
    }

    private static void unmap(long address, long length) {
        try {
            int rc = (int) Calls.MUNMAP.invokeExact(MemorySegment.ofAddress(address), length);
            assert rc == 0 : "munmap failed";
        } catch (Throwable t) {
            throw new AssertionError("munmap downcall", t);
        }
    }

    @Override
    public int createMemoryFile(String name, long size) throws ErrnoException {
        return memoryFile(name, size, false);
    }

    @Override
    public int createSealedMemoryFile(String name, long size) throws ErrnoException {
        return memoryFile(name, size, true);
    }

    /** The one memfd helper: create, size, and optionally seal against resizing. */
    private int memoryFile(String name, long size, boolean sealed) throws ErrnoException {
        if (size <= 0) {
            throw new ErrnoException("memfd_create " + name + " (size " + size + ")", Errno.EINVAL);
        }
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            int flags = MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0);
            int fd = (int) Calls.MEMFD_CREATE.invokeExact(state, call.allocateFrom(name), flags);
            if (fd < 0) {
                throw new ErrnoException("memfd_create " + name, errno(state));
            }
            try {
                if ((int) Calls.FTRUNCATE.invokeExact(state, fd, size) != 0) {
                    throw new ErrnoException("ftruncate " + name + " to " + size, errno(state));
                }
                if (sealed && (int) Calls.FCNTL.invokeExact(state, fd, F_ADD_SEALS, SEALS_FIXED_SIZE) != 0) {
                    throw new ErrnoException("fcntl(F_ADD_SEALS) " + name, errno(state));
                }
            } catch (ErrnoException e) {
                close(fd);
                throw e;
            }
            return fd;
        } catch (ErrnoException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("memfd_create downcall", t);
        }
    }

    @Override
    public int seals(int fd) throws ErrnoException {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment state = call.allocate(Abi.CALL_STATE);
            int seals = (int) Calls.FCNTL.invokeExact(state, fd, F_GET_SEALS, 0);
            if (seals < 0) {
                throw new ErrnoException("fcntl(F_GET_SEALS)", errno(state));
            }
            return seals;
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
