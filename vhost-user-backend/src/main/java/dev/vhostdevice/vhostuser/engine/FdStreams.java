package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.sys.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * Streams over a non-blocking raw fd (device-state transfer pipes). Each owns a small native buffer. A stream
 * waits for the fd in short polls so a hostile peer that keeps the fd open but stops moving bytes can neither
 * hold the thread past {@code cancelled} nor for longer than the stall timeout: either fails the stream.
 */
final class FdStreams {
    private static final int CHUNK = 64 * 1024;
    /** How soon a waiting stream notices cancellation. */
    static final int POLL_SLICE_MILLIS = 100;

    private FdStreams() {
    }

    /** {@code fd} must be non-blocking. */
    static InputStream input(Linux linux, int fd, Arena arena, BooleanSupplier cancelled, long stallMillis) {
        MemorySegment buffer = arena.allocate(CHUNK);
        return new InputStream() {
            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                int n = read(one, 0, 1);
                return n < 0 ? -1 : one[0] & 0xFF;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                if (len == 0) {
                    return 0;
                }
                long n;
                while ((n = linux.read(fd, buffer, Math.min(len, CHUNK))) < 0) {
                    awaitReady(linux, fd, Linux.POLLIN, cancelled, stallMillis);
                }
                if (n == 0) {
                    return -1;
                }
                MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, b, off, (int) n);
                return (int) n;
            }
        };
    }

    /** {@code fd} must be non-blocking. */
    static OutputStream output(Linux linux, int fd, Arena arena, BooleanSupplier cancelled, long stallMillis) {
        MemorySegment buffer = arena.allocate(CHUNK);
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                while (len > 0) {
                    int step = Math.min(len, CHUNK);
                    MemorySegment.copy(b, off, buffer, ValueLayout.JAVA_BYTE, 0, step);
                    long done = 0;
                    while (done < step) {
                        long n = linux.write(fd, buffer.asSlice(done), step - done);
                        if (n < 0) {
                            awaitReady(linux, fd, Linux.POLLOUT, cancelled, stallMillis);
                        } else if (n == 0) {
                            throw new IOException("device state fd accepts no data");
                        } else {
                            done += n;
                        }
                    }
                    off += step;
                    len -= step;
                }
            }
        };
    }

    /**
     * Waits until {@code fd} is ready for {@code events} (or hung up: the next read or write reports that). The
     * stall clock starts here, right after the fd last refused to move a byte.
     */
    private static void awaitReady(Linux linux, int fd, int events, BooleanSupplier cancelled, long stallMillis)
            throws IOException {
        long stalledSince = System.nanoTime();
        while (!linux.poll(fd, events, POLL_SLICE_MILLIS)) {
            if (cancelled.getAsBoolean()) {
                throw new IOException("device state transfer cancelled");
            }
            if (System.nanoTime() - stalledSince >= TimeUnit.MILLISECONDS.toNanos(stallMillis)) {
                throw new IOException("device state fd moved no byte for " + stallMillis + " ms");
            }
        }
        if (cancelled.getAsBoolean()) {
            throw new IOException("device state transfer cancelled");
        }
    }
}
