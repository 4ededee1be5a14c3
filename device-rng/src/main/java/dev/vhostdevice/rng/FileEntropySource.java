package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Entropy read from a file or character device ({@code /dev/urandom} by default, {@code /dev/hwrng}, or a
 * regular file). One fd serves every guest, so a regular file's bytes are never handed out twice (each read(2)
 * moves the shared file offset atomically).
 *
 * <p>Each piece is read with one read(2) straight into guest memory: no staging buffer, no copy, and none of
 * a FileChannel's per-call locking and interruption bookkeeping.
 *
 * <p>{@link #open} checks at start-up, through the JDK, that the source can be read; the native fd is opened
 * when the first piece is read, so a daemon listens before java.lang.foreign is first used (start-up time).
 */
public final class FileEntropySource implements EntropySource {
    private static final int NOT_OPEN = -1;

    private final Path path;
    private final Linux linux;
    /** The native fd, opened at the first fill; NOT_OPEN before. */
    private volatile int fd = NOT_OPEN;
    private final AtomicBoolean closed = new AtomicBoolean();

    private FileEntropySource(Path path, Linux linux) {
        this.path = path;
        this.linux = linux;
    }

    /**
     * Checks that {@code path} can be opened for reading; throws with a one-line reason if not
     * ({@link NoSuchFileException}, {@link AccessDeniedException}, else the I/O error).
     */
    public static FileEntropySource open(Path path) throws IOException {
        return open(path, Linux.system());
    }

    static FileEntropySource open(Path path, Linux linux) throws IOException {
        // Opening reads nothing, so a character device's entropy is not consumed here.
        Files.newByteChannel(path, StandardOpenOption.READ).close();
        return new FileEntropySource(path, linux);
    }

    private int fd() throws IOException {
        int current = fd;
        if (current != NOT_OPEN) {
            return current;
        }
        synchronized (this) {
            if (fd == NOT_OPEN) {
                if (closed.get()) {
                    throw new IOException(path + " is closed");
                }
                try {
                    fd = linux.openReadOnly(path);
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
            return fd;
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
        long read = linux.read(fd(), segment.asSlice(offset, length), length);
        if (read == 0) {
            return -1; // end of file
        }
        return Math.max(read, 0); // -1 is EAGAIN from a non-blocking device: nothing this time
    }

    @Override
    public void close() {
        synchronized (this) {
            if (closed.compareAndSet(false, true) && fd != NOT_OPEN) {
                linux.close(fd);
            }
        }
    }
}
