package dev.vhostdevice.vhostuser.guest;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** A guest booting or running under QEMU; its serial console is a log file the test can watch. */
public final class RunningGuest {
    private final GuestBench.Qemu qemu;
    private final Process process;
    private final Path console;
    private final Path output;
    private final Path summary;

    RunningGuest(GuestBench.Qemu qemu, Process process, Path console, Path output, Path summary) {
        this.qemu = qemu;
        this.process = process;
        this.console = console;
        this.output = output;
        this.summary = summary;
    }

    /** Waits until the console shows {@code marker}; false on timeout or if the guest ended first. */
    public boolean awaitConsole(String marker, Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (Files.exists(console) && Files.readString(console, StandardCharsets.ISO_8859_1).contains(marker)) {
                return true;
            }
            if (!process.isAlive()) {
                return Files.exists(console) && Files.readString(console, StandardCharsets.ISO_8859_1).contains(marker);
            }
            Thread.sleep(50);
        }
        return false;
    }

    /** Waits for the guest to finish (run-guest.sh enforces the timeout) and collects its result. */
    public GuestResult awaitResult() throws IOException, InterruptedException {
        if (!process.waitFor(15, TimeUnit.MINUTES)) {
            process.destroyForcibly();
        }
        String out = Files.readString(output, StandardCharsets.UTF_8);
        String sum = Files.exists(summary) ? Files.readString(summary, StandardCharsets.UTF_8).strip() : "";
        String consoleText = Files.exists(console) ? Files.readString(console, StandardCharsets.ISO_8859_1) : "";
        return new GuestResult(qemu, process.exitValue(), out, sum, consoleText);
    }
}
