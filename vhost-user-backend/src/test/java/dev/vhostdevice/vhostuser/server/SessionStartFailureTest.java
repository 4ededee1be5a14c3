package dev.vhostdevice.vhostuser.server;

import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.device.DeviceContext;
import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.testkit.EchoDevice;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.io.File;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A session that cannot start (the device fails to attach) closes what it opened, once, and the server goes on. */
class SessionStartFailureTest {
    private static final int CONNECTIONS = 30;

    @TempDir
    Path dir;

    /** A device whose attach throws on every connection but the last. */
    private static final class FailingAttach extends EchoDevice {
        private final boolean fail;

        FailingAttach(boolean fail) {
            this.fail = fail;
        }

        @Override
        public void attach(DeviceContext context) {
            if (fail) {
                throw new IllegalStateException("attach refused");
            }
            super.attach(context);
        }
    }

    private static int openFds() {
        String[] names = new File("/proc/self/fd").list();
        return names == null ? -1 : names.length;
    }

    @Test
    void aDeviceThatFailsToAttachLeaksNothingAndTheNextConnectionIsServed() throws Exception {
        AtomicInteger made = new AtomicInteger();
        try (VhostUserServer server = VhostUserServer.start(dir.resolve("s.sock"),
                () -> new FailingAttach(made.incrementAndGet() <= CONNECTIONS))) {
            int before = openFds();
            for (int i = 0; i < CONNECTIONS; i++) {
                try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
                    awaitConnections(server, i + 1);
                }
            }
            // Each failed start used to leave its worker's epoll fd and eventfd open (3 fds a connection with the
            // socket); a margin of a few fds absorbs what the rest of the JVM opens and closes meanwhile.
            int after = openFds();
            assertTrue(after - before < CONNECTIONS / 3, "fds before " + before + ", after " + after);
            try (MiniFrontend fe = new MiniFrontend(server.socketPath())) {
                assertNotEquals(0, fe.getU64(FrontendRequest.GET_FEATURES), "the server still serves");
            }
        }
    }

    private static void awaitConnections(VhostUserServer server, int count) throws InterruptedException {
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (server.connectionsServed() < count && System.nanoTime() < deadline) {
            Thread.sleep(1);
        }
        Thread.sleep(5); // the failed start runs right after accept
    }
}
