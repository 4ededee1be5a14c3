package dev.vhostdevice.vhostuser.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.protocol.FrontendRequest;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real daemon in a child JVM, stopped by a real SIGTERM or SIGINT: it exits (status 128 + signal, the JVM's
 * convention after its shutdown hooks ran) and its shutdown hook closed every server and removed every socket
 * file, also with a front-end connected.
 */
class DaemonSignalTest {
    private static final int SIGINT = 2;
    private static final int SIGTERM = 15;

    @TempDir
    Path dir;

    private Process startDaemon(Path base) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // Surefire may hand tests a manifest-only jar as java.class.path; this property is the real path.
        String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        return new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-cp", classPath,
                EchoDaemonMain.class.getName(), "--socket-path", base.toString(), "--socket-count", "2")
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(dir.resolve("daemon.out").toFile())
                .redirectError(dir.resolve("daemon.err").toFile())
                .start();
    }

    private String daemonLog() throws Exception {
        return Files.readString(dir.resolve("daemon.err"));
    }

    private void stopsCleanlyOn(int signal) throws Exception {
        Path base = dir.resolve("d.sock");
        List<Path> sockets = List.of(dir.resolve("d.sock0"), dir.resolve("d.sock1"));
        Process daemon = startDaemon(base);
        try {
            long deadline = System.nanoTime() + 20_000_000_000L;
            while (!sockets.stream().allMatch(Files::exists) && daemon.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertTrue(sockets.stream().allMatch(Files::exists), "both sockets listen; log:\n" + daemonLog());
            try (MiniFrontend fe = new MiniFrontend(sockets.get(1))) {
                assertNotEquals(0, fe.getU64(FrontendRequest.GET_FEATURES), "the daemon serves");
                if (signal == SIGTERM) {
                    daemon.destroy(); // SIGTERM on Linux
                } else {
                    // No pipes to the kill process: nothing of it stays open in this JVM.
                    Process kill = new ProcessBuilder("kill", "-INT", Long.toString(daemon.pid()))
                            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                            .redirectError(ProcessBuilder.Redirect.DISCARD)
                            .start();
                    assertEquals(0, kill.waitFor());
                }
                assertTrue(daemon.waitFor(20, TimeUnit.SECONDS), "the daemon exits; log:\n" + daemonLog());
                assertTrue(fe.isClosedByPeer(), "the connected front-end's session was ended");
            }
            assertEquals(128 + signal, daemon.exitValue(), "log:\n" + daemonLog());
            for (Path socket : sockets) {
                assertFalse(Files.exists(socket), socket + " removed by the shutdown hook");
            }
        } finally {
            daemon.destroyForcibly();
        }
    }

    @Test
    void sigtermStopsTheDaemonAndRemovesItsSockets() throws Exception {
        stopsCleanlyOn(SIGTERM);
    }

    @Test
    void sigintStopsTheDaemonAndRemovesItsSockets() throws Exception {
        stopsCleanlyOn(SIGINT);
    }
}
