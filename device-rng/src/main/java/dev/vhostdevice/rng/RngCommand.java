package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.ManifestVersion;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import java.io.IOException;
import java.nio.file.Path;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code vhost-device-rng}: a drop-in for rust-vmm's daemon of that name. One difference: with
 * {@code --socket-count 1} (the default) the socket is exactly {@code --socket-path}, where upstream always
 * appends 0.
 */
@Command(name = "vhost-device-rng", mixinStandardHelpOptions = true, versionProvider = ManifestVersion.class,
        description = "virtio-rng vhost-user back-end: serves random bytes from a file or device to the guest.")
public final class RngCommand extends DaemonCommand {
    /** QEMU's maximum period for its own rate limiter; also upstream's default. */
    static final int MAX_PERIOD_MS = 65536;

    @Option(names = {"-p", "--period"}, defaultValue = "65536", paramLabel = "MS",
            description = "Rate-limit period in milliseconds, 1 to 65536 (default: ${DEFAULT-VALUE}).")
    int periodMillis;

    @Option(names = {"-m", "--max-bytes"}, paramLabel = "BYTES",
            description = "Bytes allowed per period for all guests together, shared equally (default: unlimited).")
    Long maxBytes;

    @Option(names = {"-f", "--rng-source"}, defaultValue = "/dev/urandom", paramLabel = "FILE",
            description = "Entropy source (default: ${DEFAULT-VALUE}).")
    Path rngSource;

    private EntropySource source;

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) throws IOException {
        if (periodMillis < 1 || periodMillis > MAX_PERIOD_MS) {
            throw new IllegalArgumentException("--period must be 1 to " + MAX_PERIOD_MS + " ms, got " + periodMillis);
        }
        if (maxBytes != null && maxBytes < sockets.socketCount()) {
            throw new IllegalArgumentException("--max-bytes must be at least 1 per guest (" + sockets.socketCount()
                    + "), got " + maxBytes);
        }
        if (source == null) {
            try {
                source = FileEntropySource.open(rngSource);
            } catch (java.nio.file.NoSuchFileException e) {
                throw new IllegalArgumentException("rng source " + rngSource + " does not exist");
            } catch (java.nio.file.AccessDeniedException e) {
                throw new IllegalArgumentException("rng source " + rngSource + " cannot be read: permission denied");
            } catch (IOException e) {
                throw new IllegalArgumentException("rng source " + rngSource + " cannot be read: " + e);
            }
        }
        long budget = guestShare(maxBytes, sockets.socketCount(), socketIndex);
        int period = periodMillis;
        EntropySource shared = source;
        return () -> new RngDevice(shared, budget, period);
    }

    /**
     * Each guest's part of the budget: the budget divided equally, the remainder going one byte each to the first
     * guests, so together they never exceed it (upstream's plain division loses the remainder).
     */
    static long guestShare(Long maxBytes, int guests, int index) {
        if (maxBytes == null) {
            return RateLimiter.UNLIMITED;
        }
        long share = maxBytes / guests;
        return share + (index < maxBytes % guests ? 1 : 0);
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new RngCommand(), args));
    }
}
