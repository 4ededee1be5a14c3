package dev.vhostdevice.virtqueue.memory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The native seam of guest memory: the only system calls the virtqueue module makes.
 * {@link #system()} is the real one (java.lang.foreign); tests substitute their own to inject failures.
 */
public interface MemoryMapper {

    /** The size of the file behind {@code fd} ({@code fstat(2)} {@code st_size}). */
    long fileSize(int fd) throws ErrnoException;

    /**
     * Maps {@code length} bytes of {@code fd} from {@code offset}, shared and read-write. The mapping is
     * released ({@code munmap}) when {@code arena} closes. {@code offset} need not be page-aligned.
     */
    MemorySegment map(int fd, long offset, long length, Arena arena) throws ErrnoException;

    /** Seals of a memory file that forbid growing, shrinking and further sealing (F_SEAL_GROW|SHRINK|SEAL). */
    int SEALS_FIXED_SIZE = 0x4 | 0x2 | 0x1;

    /** A new anonymous memory file ({@code memfd_create}, close-on-exec) of {@code size} zero bytes. */
    int createMemoryFile(String name, long size) throws ErrnoException;

    /**
     * The same, sealed with {@link #SEALS_FIXED_SIZE} so neither side of a shared mapping can resize it under
     * the other (the inflight buffer handed to the front-end).
     */
    int createSealedMemoryFile(String name, long size) throws ErrnoException;

    /** {@code fcntl(F_GET_SEALS)}: the seals on a memory file. */
    int seals(int fd) throws ErrnoException;

    /** Closes {@code fd}; errors are ignored, as after {@code close(2)} the fd is gone either way. */
    void close(int fd);

    static MemoryMapper system() {
        return FfmMemoryMapper.INSTANCE;
    }
}
