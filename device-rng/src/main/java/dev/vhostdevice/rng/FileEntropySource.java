package dev.vhostdevice.rng;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Entropy read from a file or character device ({@code /dev/urandom} by default, {@code /dev/hwrng}, or a
 * regular file). One channel serves every guest, so a regular file's bytes are never handed out twice.
 *
 * <p>Bytes go through a per-thread direct staging buffer into guest memory: one extra copy at memcpy speed,
 * and no allocation per request.
 */
public final class FileEntropySource implements EntropySource {
    private static final int STAGING_BYTES = 64 * 1024;

    private final Path path;
    private final FileChannel channel;
    private final ThreadLocal<Staging> staging = ThreadLocal.withInitial(Staging::new);

    /** A direct buffer for the channel and the same memory as a segment for the copy. */
    private static final class Staging {
        final ByteBuffer buffer = ByteBuffer.allocateDirect(STAGING_BYTES);
        final MemorySegment segment = MemorySegment.ofBuffer(buffer);
    }

    private FileEntropySource(Path path, FileChannel channel) {
        this.path = path;
        this.channel = channel;
    }

    /** Opens {@code path} for reading; throws with a one-line reason if it cannot be read. */
    public static FileEntropySource open(Path path) throws IOException {
        return new FileEntropySource(path, FileChannel.open(path, StandardOpenOption.READ));
    }

    @Override
    public String name() {
        return path.toString();
    }

    @Override
    public long fill(MemorySegment segment, long offset, long length) throws IOException {
        Staging stage = staging.get();
        stage.buffer.clear().limit((int) Math.min(length, STAGING_BYTES));
        int read = channel.read(stage.buffer);
        if (read <= 0) {
            return read < 0 ? -1 : 0;
        }
        MemorySegment.copy(stage.segment, 0, segment, offset, read);
        return read;
    }

    @Override
    public void close() throws IOException {
        channel.close();
    }
}
