package dev.vhostdevice.vhostuser.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.server.ServerOptions;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/** A real server on a real socket with a {@link ProbeDevice} per connection, and a {@link TestFrontend} on it. */
abstract class ConformanceBase {
    static final Duration WAIT = Duration.ofSeconds(5);
    /**
     * For "nothing happens" checks only, where no event exists to wait for: how long the back-end gets to do the
     * wrong thing. Positive checks always wait for an event.
     */
    static final Duration QUIET = Duration.ofMillis(150);
    static final long REPLY_ACK = ProtocolFeature.REPLY_ACK.mask();
    static final long ALL = -1L;

    @TempDir
    Path dir;
    VhostUserServer server;
    final List<ProbeDevice> devices = new CopyOnWriteArrayList<>();
    TestFrontend fe;

    /** Whether devices offer DEVICE_STATE. */
    boolean withState() {
        return false;
    }

    @BeforeEach
    void startServer() throws Exception {
        server = VhostUserServer.start(dir.resolve("vu.sock"), () -> {
            ProbeDevice d = new ProbeDevice(withState());
            devices.add(d);
            return d;
        }, ServerOptions.DEFAULTS.withDeviceState(withState()));
        fe = TestFrontend.connect(server.socketPath()).timeout(WAIT);
    }

    @AfterEach
    void stopServer() {
        if (fe != null) {
            fe.close();
        }
        server.close();
    }

    ProbeDevice device() {
        return devices.getLast();
    }

    /** Negotiates with PROTOCOL_FEATURES and REPLY_ACK (plus {@code protocolMask}), maps RAM. */
    long negotiateWithReplyAck(long protocolMask) throws Exception {
        return fe.negotiate(true, REPLY_ACK | protocolMask, 1);
    }

    /** Negotiated with REPLY_ACK; queue 0 started (size 16) and enabled. */
    FrontendQueue runningQueue(int index) throws Exception {
        FrontendQueue q = fe.startQueue(index, 16, 0);
        fe.setVringEnable(index, true);
        return q;
    }

    /** One round trip through the device: post, kick, check the echo. */
    static void roundTrip(FrontendQueue q, String text) throws Exception {
        q.post(text, 64);
        q.kick();
        FrontendQueue.Completion c = q.awaitUsed(WAIT);
        assertEquals(new StringBuilder(text).reverse().toString(), c.text());
    }

    /**
     * How many of this process's fds refer to a file whose link names {@code marker} (e.g. a memfd created with
     * that name). Unlike a count of all fds, unaffected by whatever else the JVM opens meanwhile.
     */
    static int openFdsNamed(String marker) throws java.io.IOException {
        int n = 0;
        try (var fds = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
            for (Path fd : (Iterable<Path>) fds::iterator) {
                try {
                    if (java.nio.file.Files.readSymbolicLink(fd).toString().contains(marker)) {
                        n++;
                    }
                } catch (java.io.IOException gone) {
                    // closed while listing
                }
            }
        }
        return n;
    }

    /** Waits for a condition that has no event of its own (engine state visible only by polling). */
    static void awaitTrue(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(1);
        }
    }
}
