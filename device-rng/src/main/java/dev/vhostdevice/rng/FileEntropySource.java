package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Entropy read from a file or character device ({@code /dev/urandom} by default, {@code /dev/hwrng}, or a
 * regular file). One fd serves every guest, so a regular file's bytes are never handed out twice (each read(2)
 * moves the shared file offset atomically).
 *
 * <p>Each piece is read with one read(2) straight into guest memory: no staging buffer, no copy, and none of
 * a FileChannel's per-call locking and interruption bookkeeping.
 */
public final class FileEntropySource implements EntropySource {
    private final Path path;
    private final Linux linux;
    private final int fd;
    private final AtomicBoolean closed = new AtomicBoolean();

    private FileEntropySource(Path path, Linux linux, int fd) {
        this.path = path;
        this.linux = linux;
        this.fd = fd;
    }

    /**
     * Opens {@code path} for reading; throws with a one-line reason if it cannot be read
     * ({@link NoSuchFileException}, {@link AccessDeniedException}, else the errno).
     */
    public static FileEntropySource open(Path path) throws IOException {
        return open(path, Linux.system());
    }

    static FileEntropySource open(Path path, Linux linux) throws IOException {
        try {
            return new FileEntropySource(path, linux, linux.openReadOnly(path));
        } catch (ErrnoException e) {
            if (e.errno() == Errno.ENOENT) {
                throw new NoSuchFileException(path.toString());
            }
            if (e.errno() == Errno.EACCES) {
                throw new AccessDeniedException(path.toString());
            }
            throw e;
        }
    }

    @Override
    public String name() {
        return path.toString();
    }

    @Override
    public long fill(MemorySegment segment, long offset, long length) throws IOException {
        if (length == 0) {
            return 0; // read(2) of 0 bytes returns 0, which would read as end of file
        }
        // The slice bounds the kernel's write to this piece; it does not escape, so C2 allocates nothing.
        long read = linux.read(fd, segment.asSlice(offset, length), length);
        if (read == 0) {
            return -1; // end of file
        }
        return Math.max(read, 0); // -1 is EAGAIN from a non-blocking device: nothing this time
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            linux.close(fd);
        }
    }
}
