package dev.vhostdevice.rng;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.vhostdevice.vhostuser.guest.DeviceProcess;
import dev.vhostdevice.vhostuser.guest.GuestBench;
import dev.vhostdevice.vhostuser.guest.GuestBench.Qemu;
import dev.vhostdevice.vhostuser.guest.GuestResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The daemon's way to listening, and the installable form the build makes beside the jar
 * ({@code target/vhost-device-rng/}: launcher, runtime image, AOT cache), started as users start them.
 */
class RngStartupIT {
    @TempDir
    Path dir;

    private static Path jar() {
        return Path.of(System.getProperty("device.jar"));
    }

    /**
     * What a plain {@code java -jar} loads before it listens: the JDK's own listening channel and none of what
     * only a connection needs, which is where the start-up time went (java.lang.foreign's linker and stubs,
     * slf4j, memory mapping) and no lambda or string-concatenation bootstrap. The linker comes after (adopting
     * the channel's fd, accepting) while a front-end's connect has already succeeded.
     */
    @Test
    void theJarListensThroughTheJdkBeforeLinkingAnyDowncallOrStartingLogging() throws Exception {
        Path log = dir.resolve("classes.log");
        Path socket = dir.resolve("rng.sock");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> lines;
        try (DeviceProcess daemon = DeviceProcess.startCommand(socket, List.of(java, "-Xlog:class+load:file=" + log,
                "-jar", jar().toString(), "--socket-path", socket.toString()))) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (true) {
                lines = Files.readAllLines(log);
                if (indexOf(lines, "dev.vhostdevice.vhostuser.server.VhostUserServer$AcceptLoop ") >= 0) {
                    break;
                }
                assertTrue(System.nanoTime() < deadline, "no accept loop within 30 s: " + daemon.log());
                Thread.sleep(20);
            }
        }
        int listening = indexOf(lines, "sun.nio.ch.ServerSocketChannelImpl ");
        int accepting = indexOf(lines, "dev.vhostdevice.vhostuser.server.VhostUserServer$AcceptLoop ");
        assertTrue(listening >= 0, "the JDK's channel listens");
        List<String> beforeListening = lines.subList(0, listening);
        for (String unwanted : List.of("jdk.internal.foreign.abi.AbstractLinker ", "FfmLinux$Abi ", "org.slf4j.",
                "FfmLinux$Opening ", "FfmMemoryMapper$Abi ", "FfmXenIo$Abi ",
                "java.lang.invoke.StringConcatFactory ")) {
            assertEquals(-1, indexOf(beforeListening, unwanted), unwanted + " loaded before listening");
        }
        assertEquals(-1, indexOf(lines.subList(0, accepting), "FfmLinux$Listening "),
                "the socket was made natively: the JDK's channel failed or its fd was not found");
        for (String line : beforeListening) {
            assertFalse(line.contains("dev.vhostdevice.") && line.contains("$$Lambda"), "a lambda spun: " + line);
        }
    }

    private static int indexOf(List<String> lines, String part) {
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).contains(part)) {
                return i;
            }
        }
        return -1;
    }

    /**
     * The installable tree, copied elsewhere as an install would, serves a real guest through its launcher with
     * its AOT cache accepted (a cache the JVM cannot use is reported on the daemon's output).
     */
    @Test
    void theInstalledLauncherServesAGuestFromAnyDirectoryWithItsAotCache() throws Exception {
        Path built = jar().resolveSibling("vhost-device-rng");
        assertTrue(Files.isExecutable(built.resolve("bin/vhost-device-rng")), "the build made " + built);
        Path installed = dir.resolve("opt/vhost-device-rng");
        Files.createDirectories(installed.getParent());
        Process copy = new ProcessBuilder("cp", "-a", built.toString(), installed.toString()).inheritIO().start();
        assertEquals(0, copy.waitFor());
        Path socket = dir.resolve("rng.sock");
        try (DeviceProcess daemon = DeviceProcess.startCommand(socket, List.of(
                installed.resolve("bin/vhost-device-rng").toString(), "--socket-path", socket.toString()))) {
            GuestResult result = GuestBench.guest(Qemu.QEMU_10)
                    .vhostUser("rng", socket)
                    .command("head -c 65536 /dev/hwrng | wc -c")
                    .run();
            assertEquals(0, result.status(), result.describe() + "\n--- back-end\n" + daemon.log());
            assertEquals("65536", result.output().strip(), result.describe());
            assertTrue(daemon.isAlive(), daemon.log());
            assertFalse(daemon.log().contains("[aot]") || daemon.log().contains("[cds]"),
                    "the AOT cache was refused: " + daemon.log());
        }
    }
}
