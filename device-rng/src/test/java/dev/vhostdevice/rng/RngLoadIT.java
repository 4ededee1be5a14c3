package dev.vhostdevice.rng;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One packaged rng daemon with {@code --socket-count 32} under 32 front-ends at once (issue 8 §5), with the
 * durations of scripts/load-rng shortened for CI. Checked are ratios and counts, never speed, so a loaded 2-core
 * machine passes: a burst of 32 connects all served, no front-end starved (slowest at least half the mean rate),
 * and no fd or thread left behind after 10 rounds in which all 32 disconnect and reconnect.
 */
class RngLoadIT {
    private static final int FRONTENDS = 32;

    @TempDir
    Path dir;

    @Test
    void thirtyTwoFrontEndsAreServedFairlyAndReconnectsLeaveNothingBehind() throws Exception {
        Path base = dir.resolve("vu");
        List<Path> sockets = RngLoad.sockets(base, FRONTENDS);
        try (DeviceProcess daemon = DeviceProcess.start(sockets.getLast(), "--socket-path", base.toString(),
                "--socket-count", Integer.toString(FRONTENDS))) {
            for (Path socket : sockets) {
                assertTrue(awaitSocket(socket), socket + " listens");
            }
            RngLoad.Report report = RngLoad.run(sockets, daemon.pid(), Duration.ofSeconds(5), 10,
                    Duration.ofMillis(100), 16, 4096, line -> System.out.println("load: " + line));

            assertEquals(FRONTENDS, report.burstServed(), "every connection of the burst was accepted and served");
            assertTrue(report.fair(), "slowest front-end at least half the mean rate: " + report.full());
            assertTrue(report.last().fds() <= report.baseline().fds(),
                    "fds after 10 reconnect rounds " + report.afterRounds() + ", baseline " + report.baseline());
            assertTrue(report.last().steadyThreads() <= report.baseline().steadyThreads(),
                    "threads after 10 reconnect rounds " + report.afterRounds() + ", baseline " + report.baseline());
            assertTrue(daemon.isAlive(), daemon.log());
        }
    }

    private static boolean awaitSocket(Path socket) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!Files.exists(socket)) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }
}
