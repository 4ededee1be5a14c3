package dev.vhostdevice.vhostuser.engine;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.memTable;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.MessageHeader;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Bad input from the front-end: clear refusals, no crash, no fd leak, and the server keeps serving. */
class HostileFrontendTest {
    @TempDir
    Path dir;

    /** Memfd names of the fds this test sends: each open copy of them in this process shows up in /proc. */
    private static final String SENT_PREFIX = "/memfd:hostile-";

    /**
     * Open fds that are copies of what the test sent. Counting only these (not every fd of the JVM, which other
     * tests' objects and their cleaners change at any time) makes a leak of even one received fd visible.
     */
    private static int openSentFds() throws java.io.IOException {
        int count = 0;
        try (var fds = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    if (java.nio.file.Files.readSymbolicLink(fd).toString().startsWith(SENT_PREFIX)) {
                        count++;
                    }
                } catch (java.io.IOException e) {
                    // the fd closed while we listed: not one of ours staying open
                }
            }
        }
        return count;
    }

    private static void awaitIdle(VhostUserServer server, int connections) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while ((server.connectionsServed() < connections || server.isConnected()) && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
    }

    @Test
    void aHundredGarbageFrontendsLeaveTheServerServingWithTheSameOpenFds() throws Exception {
        Linux linux = Linux.system();
        int memfd = MemoryMapper.system().createMemoryFile("hostile-ram", 4096);
        // Any fd will do for the requests that take (or must not take) one: a named memfd can be counted.
        int anyFd = MemoryMapper.system().createMemoryFile("hostile-fd", 8);
        Random random = new Random(42);
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("g.sock"), EchoDevice::new)) {
            // Warm up: the first connection builds FFM handles and thread-local scratch.
            try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
                fe.getU64(GET_FEATURES);
            }
            awaitIdle(server, 1);
            assertEquals(2, openSentFds(), "only the test's own two fds");
            for (int i = 0; i < 100; i++) {
                try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
                    switch (i % 10) {
                        case 0 -> fe.sendRaw(new byte[] {1, 0, 0}); // truncated header
                        case 1 -> fe.sendRaw(le(12).putInt(1).putInt(1).putInt(100_000).array(), anyFd); // oversize
                        case 2 -> fe.send(SET_FEATURES, new byte[3]); // wrong payload size
                        case 3 -> fe.sendRaw(le(12).putInt(999).putInt(1).putInt(0).array(), anyFd, anyFd); // unknown + fds
                        case 4 -> fe.send(SET_MEM_TABLE, memTable(0, 1 << 20, 0x1000, 0), memfd); // larger than file
                        case 5 -> fe.send(SET_MEM_TABLE, memTable(0, 4096, 0x1000, 0), memfd, memfd); // fd count mismatch
                        case 6 -> fe.send(SET_VRING_CALL, u64(200), anyFd); // index out of range
                        case 7 -> fe.send(GET_FEATURES, new byte[0], anyFd, anyFd, anyFd); // fds on a no-fd request
                        case 8 -> fe.send(SET_VRING_KICK, u64(0x100), anyFd); // NOFD with an fd
                        default -> {
                            byte[] junk = new byte[random.nextInt(200) + 1];
                            random.nextBytes(junk);
                            fe.sendRaw(junk, memfd);
                        }
                    }
                    if (i % 10 == 4 || i % 10 == 5) {
                        fe.send(SET_MEM_TABLE, memTable(0, 4096, 0x1000, 0), memfd); // a good table, then vanish
                        fe.send(SET_VRING_NUM, vringState(0, 16));
                    }
                }
                awaitIdle(server, i + 2);
            }
            assertEquals(2, openSentFds(), "every received fd was closed on every path");
            try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
                assertNotEquals(0, fe.getU64(GET_FEATURES), "the server still serves");
            }
        } finally {
            linux.close(memfd);
            linux.close(anyFd);
        }
    }

    @Test
    void framingErrorsCloseTheConnection() throws Exception {
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("f.sock"), EchoDevice::new);
             MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            fe.sendRaw(le(12).putInt(GET_FEATURES.code()).putInt(2).putInt(0).array()); // version 2
            assertTrue(fe.isClosedByPeer());
        }
    }

    @Test
    void anUnknownRequestIsRefusedWithAFailureAckAndTheConnectionStays() throws Exception {
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("u.sock"), EchoDevice::new);
             MiniFrontend fe = new MiniFrontend(server.socketPath())) {
            fe.send(SET_PROTOCOL_FEATURES, u64(1L << 3));
            fe.sendRaw(le(16).putInt(77).putInt(MessageHeader.VERSION | MessageHeader.NEED_REPLY).putInt(4).putInt(0).array());
            MiniFrontend.Reply reply = fe.read();
            assertEquals(77, reply.request());
            assertNotEquals(0, reply.u64());
            assertNotEquals(0, fe.getU64(GET_FEATURES));
        }
    }
}
