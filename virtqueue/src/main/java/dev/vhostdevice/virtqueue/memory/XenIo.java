package dev.vhostdevice.virtqueue.memory;

import java.lang.foreign.MemorySegment;

/**
 * The native seam of Xen guest memory: the calls that map foreign frames (privcmd) and grants (gntdev). Nothing
 * else in the project touches {@code /dev/xen}. {@link #system()} is the real one (java.lang.foreign); tests
 * substitute a fake backed by a memory file.
 */
public interface XenIo {
    int PROT_READ = 1;
    int PROT_WRITE = 2;

    /** Whether this host has Xen's device nodes ({@code /dev/xen/privcmd}, {@code /dev/xen/gntdev}). */
    boolean devicesPresent();

    /**
     * The host's page size, {@code sysconf(_SC_PAGESIZE)}. Xen frames and grants are 4096 bytes and privcmd and
     * gntdev map them page by page, so Xen regions are refused on a host whose pages are of another size.
     */
    long pageSize();

    /** {@code mmap(NULL, length, prot, MAP_SHARED, fd, offset)}: the address of the new mapping. */
    long mmap(long length, int prot, int fd, long offset) throws ErrnoException;

    /** {@code munmap}; errors are logged by nobody: the range is gone or was never mapped. */
    void munmap(long address, long length);

    /** {@code ioctl(fd, request, arg)}; a -1 return becomes an {@link ErrnoException} naming {@code what}. */
    void ioctl(int fd, long request, MemorySegment arg, String what) throws ErrnoException;

    /** {@code fcntl(F_DUPFD_CLOEXEC)}: a region keeps its own copy of the front-end's fd while it is mapped. */
    int dup(int fd) throws ErrnoException;

    void close(int fd);

    static XenIo system() {
        return FfmXenIo.INSTANCE;
    }
}
