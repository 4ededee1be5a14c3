package dev.vhostdevice.vhostuser.sys;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.virtqueue.memory.Errno;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link Linux#listenUnix}: listening through the JDK's channel (a front-end connects before java.lang.foreign is
 * first used) gives the same socket as listening natively: our own close-on-exec fd, the JDK's fd closed, and a
 * failure reported with its errno.
 */
class ListenUnixTest {
    private final Linux linux = Linux.system();

    @TempDir
    Path dir;

    private static long openFds() throws IOException {
        try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.count();
        }
    }

    private static boolean closeOnExec(int fd) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
            if (line.startsWith("flags:")) {
                return (Integer.parseInt(line.substring(6).strip(), 8) & 02000000) != 0; // O_CLOEXEC
            }
        }
        throw new AssertionError("no flags in fdinfo of " + fd);
    }

    private void assertServes(int listenFd, Path path) throws Exception {
        int client = linux.connectUnix(path);
        int served = linux.accept(listenFd);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(8);
            buffer.set(java.lang.foreign.ValueLayout.JAVA_LONG, 0, 0x1122334455667788L);
            assertEquals(8, linux.write(client, buffer, 8));
            MemorySegment received = arena.allocate(8);
            assertEquals(8, linux.read(served, received, 8));
            assertEquals(0x1122334455667788L, received.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0));
        } finally {
            linux.close(client);
            linux.close(served);
        }
    }

    @Test
    void aListeningSocketAcceptsAndItsFdIsOurOwnCloseOnExecOne() throws Exception {
        // The JDK opens fds of its own once per process (its SecureRandom's /dev/random and /dev/urandom, kept
        // for auto-bound names): a first socket made and closed, then only this one counted.
        linux.close(linux.listenUnix(dir.resolve("warm-up.sock"), 1));
        Path path = dir.resolve("a.sock");
        long before = openFds();
        int fd = linux.listenUnix(path, 1);
        try {
            assertEquals(before + 1, openFds(), "exactly one fd: the JDK's own was closed after adoption");
            assertTrue(closeOnExec(fd), "close-on-exec");
            assertEquals(fd, JdkListeningSocket.fdOfSocketBoundTo(path.toString()), "/proc tells the fd");
            assertServes(fd, path);
        } finally {
            linux.close(fd);
        }
        assertEquals(before, openFds());
    }

    @Test
    void aFrontEndConnectingBeforeTheFirstAcceptIsQueuedNotRefused() throws Exception {
        Path path = dir.resolve("queued.sock");
        int fd = linux.listenUnix(path, 1);
        try {
            int early = linux.connectUnix(path); // succeeds from the backlog, before any accept
            int served = linux.accept(fd);
            assertNotEquals(-1, served);
            linux.close(early);
            linux.close(served);
        } finally {
            linux.close(fd);
        }
    }

    @Test
    void aPathInUseIsRefusedWithEaddrinuseAndNothingLeaks() throws Exception {
        Path path = dir.resolve("busy.sock");
        int first = linux.listenUnix(path, 1);
        try {
            long before = openFds();
            ErrnoException e = assertThrows(ErrnoException.class, () -> linux.listenUnix(path, 1));
            assertEquals(Errno.EADDRINUSE, e.errno(), e.getMessage());
            assertEquals(before, openFds(), "no fd left behind by the refused listen");
            assertServes(first, path);
        } finally {
            linux.close(first);
        }
    }

    @Test
    void aSocketPathTooLongForSunPathIsRefusedWithEinval() {
        Path path = dir.resolve("x".repeat(110));
        ErrnoException e = assertThrows(ErrnoException.class, () -> linux.listenUnix(path, 1));
        assertEquals(Errno.EINVAL, e.errno());
    }

    /**
     * Two sockets of this process bound to one path (the first one's file replaced): /proc cannot tell which fd
     * the JDK's is, so the new socket is made natively, and it is the one a front-end reaches.
     */
    @Test
    void whenTheFdCannotBeToldForCertainTheSocketIsMadeNativelyAndServes() throws Exception {
        Path path = dir.resolve("twice.sock");
        int stale = linux.listenUnix(path, 1);
        try {
            Files.delete(path);
            long before = openFds();
            int fresh = linux.listenUnix(path, 1);
            try {
                assertEquals(before + 1, openFds());
                assertEquals(-1, JdkListeningSocket.fdOfSocketBoundTo(path.toString()), "ambiguous by design");
                assertServes(fresh, path);
            } finally {
                linux.close(fresh);
            }
        } finally {
            linux.close(stale);
        }
    }
}
