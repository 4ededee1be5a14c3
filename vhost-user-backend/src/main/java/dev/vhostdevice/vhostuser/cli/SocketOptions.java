package dev.vhostdevice.vhostuser.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The socket options every device daemon shares: {@code -s/--socket-path} and {@code -c/--socket-count}. With
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
    /** Both, for a command's option list. */
    public static final List<Option> OPTIONS = List.of(SOCKET_PATH, SOCKET_COUNT);

    Path socketPath;
    int socketCount = 1;

    /** Takes the values from a parsed command line. */
    public void read(ParsedArgs args) {
        socketPath = args.path(SOCKET_PATH);
        socketCount = args.intValue(SOCKET_COUNT);
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
