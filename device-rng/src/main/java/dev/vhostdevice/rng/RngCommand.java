package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.cli.DaemonCommand;
import dev.vhostdevice.vhostuser.cli.Option;
import dev.vhostdevice.vhostuser.cli.ParsedArgs;
import dev.vhostdevice.vhostuser.device.DeviceFactory;
import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code vhost-device-rng}: a drop-in for rust-vmm's daemon of that name. One difference: with
 * {@code --socket-count 1} (the default) the socket is exactly {@code --socket-path}, where upstream always
 * appends 0.
 */
public final class RngCommand extends DaemonCommand {
    /** QEMU's maximum period for its own rate limiter; also upstream's default. */
    static final int MAX_PERIOD_MS = 65536;

    static final Option PERIOD = Option.value("-p", "--period", Option.Type.INT, "MS",
            "Rate-limit period in milliseconds, 1 to 65536.").withDefault("65536");
    static final Option MAX_BYTES = Option.value("-m", "--max-bytes", Option.Type.LONG, "BYTES",
            "Bytes allowed per period for all guests together, shared equally (default: unlimited).");
    static final Option RNG_SOURCE = Option.value("-f", "--rng-source", Option.Type.PATH, "FILE",
            "Entropy source.").withDefault("/dev/urandom");

    int periodMillis;
    long maxBytes = RateLimiter.UNLIMITED;
    Path rngSource;

    private EntropySource source;

    public RngCommand() {
        super("vhost-device-rng",
                "virtio-rng vhost-user back-end: serves random bytes from a file or device to the guest.",
                PERIOD, MAX_BYTES, RNG_SOURCE);
    }

    @Override
    protected void configure(ParsedArgs args) {
        periodMillis = args.intValue(PERIOD);
        maxBytes = args.isSet(MAX_BYTES) ? args.longValue(MAX_BYTES) : RateLimiter.UNLIMITED;
        rngSource = args.path(RNG_SOURCE);
    }

    @Override
    protected DeviceFactory deviceFactory(int socketIndex) throws IOException {
        if (periodMillis < 1 || periodMillis > MAX_PERIOD_MS) {
            throw new IllegalArgumentException("--period must be 1 to " + MAX_PERIOD_MS + " ms, got " + periodMillis);
        }
        if (maxBytes < sockets.socketCount()) {
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
        return new Factory(source, guestShare(maxBytes, sockets.socketCount(), socketIndex), periodMillis);
    }

    /** One socket's devices; a record rather than a lambda, which would cost milliseconds at start-up. */
    private record Factory(EntropySource source, long budget, int periodMillis) implements DeviceFactory {
        @Override
        public RngDevice create() {
            return new RngDevice(source, budget, periodMillis);
        }
    }

    /**
     * Each guest's part of the budget: the budget divided equally, the remainder going one byte each to the first
     * guests, so together they never exceed it (upstream's plain division loses the remainder).
     */
    static long guestShare(long maxBytes, int guests, int index) {
        if (maxBytes == RateLimiter.UNLIMITED) {
            return RateLimiter.UNLIMITED;
        }
        long share = maxBytes / guests;
        return share + (index < maxBytes % guests ? 1 : 0);
    }

    public static void main(String[] args) {
        System.exit(DaemonCommand.execute(new RngCommand(), args));
    }
}
