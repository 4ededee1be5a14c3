package dev.vhostdevice.vhostuser.cli;

import dev.vhostdevice.vhostuser.server.ServerOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The options every device daemon shares: {@code -s/--socket-path}, {@code -c/--socket-count},
 * {@code --device-state} and {@code --no-packed-ring}. With
 * N &gt; 1 sockets PATH0 … PATH(N-1) are served (a plain suffix, as the rust-vmm daemons do); with N = 1 exactly
 * PATH.
 */
public final class SocketOptions {
    /** A sane bound: each socket is a thread pair and its own device. */
    public static final int MAX_SOCKETS = 1024;

    public static final Option SOCKET_PATH = Option.value("-s", "--socket-path", Option.Type.PATH, "PATH",
            "Unix socket to listen on (with --socket-count N > 1: PATH0 .. PATH(N-1)).").asRequired();
    public static final Option SOCKET_COUNT = Option.value("-c", "--socket-count", Option.Type.INT, "N",
            "Number of sockets (guests) to serve.").withDefault("1");
    public static final Option DEVICE_STATE = Option.flag(null, "--device-state",
            "Offer device-state migration (DEVICE_STATE) for devices that can save state; the Xen bridge "
                    + "refuses back-ends offering it.");
    /** Turns the packed ring layout off: VIRTIO_F_RING_PACKED is not offered, every ring stays split. */
    public static final Option NO_PACKED_RING = Option.flag(null, "--no-packed-ring",
            "Do not offer packed virtqueues (VIRTIO_F_RING_PACKED); rings stay split.");
    /** All of them, for a command's option list. */
    public static final List<Option> OPTIONS = List.of(SOCKET_PATH, SOCKET_COUNT, DEVICE_STATE, NO_PACKED_RING);
    /** The ring-layout switch alone: also for a daemon that names its sockets itself (vsock's {@code --vm}). */
    public static final List<Option> RING_OPTIONS = List.of(NO_PACKED_RING);

    Path socketPath;
    int socketCount = 1;
    boolean deviceState;
    boolean noPackedRing;

    /** Takes the values from a parsed command line. */
    public void read(ParsedArgs args) {
        socketPath = args.path(SOCKET_PATH);
        socketCount = args.intValue(SOCKET_COUNT);
        deviceState = args.isSet(DEVICE_STATE);
        readRingOptions(args);
    }

    /** Takes only {@link #RING_OPTIONS} (a daemon without the socket options). */
    public void readRingOptions(ParsedArgs args) {
        noPackedRing = args.isSet(NO_PACKED_RING);
    }

    /** The server options these command-line choices make. */
    public ServerOptions serverOptions() {
        return ServerOptions.DEFAULTS.withDeviceState(deviceState).withPackedRing(!noPackedRing);
    }

    public Path socketPath() {
        return socketPath;
    }

    public int socketCount() {
        return socketCount;
    }

    /** The paths to serve; throws IllegalArgumentException with a one-line message for bad values. */
    public List<Path> socketPaths() {
        if (socketCount < 1 || socketCount > MAX_SOCKETS) {
            throw new IllegalArgumentException("--socket-count must be 1 to " + MAX_SOCKETS + ", got " + socketCount);
        }
        if (socketCount == 1) {
            return List.of(socketPath);
        }
        List<Path> paths = new ArrayList<>(socketCount);
        for (int i = 0; i < socketCount; i++) {
            paths.add(Path.of(socketPath.toString() + i));
        }
        return paths;
    }
}
