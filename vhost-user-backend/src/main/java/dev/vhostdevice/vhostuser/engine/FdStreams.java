package dev.vhostdevice.vhostuser.engine;

import dev.vhostdevice.vhostuser.sys.Linux;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Blocking streams over a raw fd (device-state transfer pipes). Each owns a small native buffer. */
final class FdStreams {
    private static final int CHUNK = 64 * 1024;

    private FdStreams() {
    }

    static InputStream input(Linux linux, int fd, Arena arena) {
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
                long n = linux.read(fd, buffer, Math.min(len, CHUNK));
                if (n < 0) {
                    throw new IOException("device state fd is non-blocking and empty");
                }
                if (n == 0) {
                    return -1;
                }
                MemorySegment.copy(buffer, ValueLayout.JAVA_BYTE, 0, b, off, (int) n);
                return (int) n;
            }
        };
    }

    static OutputStream output(Linux linux, int fd, Arena arena) {
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
                        if (n <= 0) {
                            throw new IOException("device state fd accepts no data");
                        }
                        done += n;
                    }
                    off += step;
                    len -= step;
                }
            }
        };
    }
}
