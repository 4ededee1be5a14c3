package dev.vhostdevice.vhostuser.guest;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A device back-end running as users run it: {@code java -jar vhost-device-<dev>.jar …} in its own process,
 * the jar given by the {@code device.jar} system property (set by the build for guest tests).
 */
public final class DeviceProcess implements AutoCloseable {
    private final Process process;
    private final Path stderr;
    private final Path socket;

    private DeviceProcess(Process process, Path stderr, Path socket) {
        this.process = process;
        this.stderr = stderr;
        this.socket = socket;
    }

    /** Starts the device jar with {@code args} and waits until {@code socket} listens. */
    public static DeviceProcess start(Path socket, String... args) throws IOException, InterruptedException {
        String jar = System.getProperty("device.jar");
        if (jar == null || !Files.isRegularFile(Path.of(jar))) {
            throw new IllegalStateException("device.jar (" + jar + ") is not built: guest tests run after packaging");
        }
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", jar));
        cmd.addAll(List.of(args));
        return startCommand(socket, cmd);
    }

    /**
     * Starts {@code command} (a device's launcher and its arguments) and waits until {@code socket} listens: until
     * a connection to it succeeds. The socket file appears at bind(2), before listen(2); a front-end connecting
     * in between is refused. The probing connection closes at once: the daemon sees a front-end come and go.
     */
    public static DeviceProcess startCommand(Path socket, List<String> cmd) throws IOException, InterruptedException {
        Files.deleteIfExists(socket);
        Path err = Files.createTempFile("device-", ".err");
        Process process = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(err.toFile()).start();
        DeviceProcess device = new DeviceProcess(process, err, socket);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!accepts(socket)) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                device.close();
                throw new IllegalStateException("device did not listen on " + socket + ": " + device.log());
            }
            Thread.sleep(10);
        }
        return device;
    }

    /** Whether a connection to {@code socket} succeeds now (closed right away). */
    private static boolean accepts(Path socket) {
        if (!Files.exists(socket)) {
            return false;
        }
        try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            return probe.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException notYet) {
            return false; // ECONNREFUSED: bound, not listening yet
        }
    }

    public Path socket() {
        return socket;
    }

    /** The back-end's process id (for /proc: its fds and threads). */
    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** Kills the back-end at once (SIGKILL), as a crash would. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    /** What the back-end printed (its log). */
    public String log() {
        try {
            return Files.readString(stderr, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** Stops the back-end with SIGTERM. */
    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(10, TimeUnit.SECONDS);
        }
    }
}
