package dev.vhostdevice.rng;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The command line, a drop-in for rust-vmm's vhost-device-rng: wrong arguments give one line and status 2. */
class RngCommandTest {
    @TempDir
    Path dir;

    private record Outcome(int status, String err) {
    }

    /** Runs the command as main() would, capturing standard error. */
    private static synchronized Outcome run(String... args) {
        java.io.PrintStream saved = System.err;
        java.io.ByteArrayOutputStream err = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(err, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            int status = DaemonCommand.execute(new RngCommand(), args);
            return new Outcome(status, err.toString(java.nio.charset.StandardCharsets.UTF_8));
        } finally {
            System.setErr(saved);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"0", "65537", "-5", "x"})
    void aPeriodOutside1To65536MillisecondsIsRefused(String period) {
        assertEquals(DaemonCommand.EXIT_USAGE, run("-s", dir.resolve("r.sock").toString(), "-p", period).status());
    }

    @Test
    void aMissingSourceIsRefusedWithOneClearLine() {
        Outcome outcome = run("-s", dir.resolve("r.sock").toString(), "-f", dir.resolve("none").toString());
        assertEquals(DaemonCommand.EXIT_USAGE, outcome.status());
        assertEquals("vhost-device-rng: rng source " + dir.resolve("none") + " does not exist", outcome.err().strip());
    }

    @Test
    void aBudgetSmallerThanTheGuestCountIsRefused() {
        assertEquals(DaemonCommand.EXIT_USAGE, run("-s", dir.resolve("r.sock").toString(), "-c", "4", "-m", "3").status());
    }

    @Test
    void aMissingSocketPathIsRefused() {
        assertEquals(DaemonCommand.EXIT_USAGE, run().status());
    }

    @Test
    void helpAndVersionExitZero() {
        assertEquals(0, run("--help").status());
        assertEquals(0, run("--version").status());
    }

    @Test
    void theDefaultsAreUpstreams() {
        RngCommand command = new RngCommand();
        command.parseArgs("-s", "/tmp/x");
        assertEquals(65536, command.periodMillis);
        assertEquals(RateLimiter.UNLIMITED, command.maxBytes);
        assertEquals(Path.of("/dev/urandom"), command.rngSource);
    }
}
