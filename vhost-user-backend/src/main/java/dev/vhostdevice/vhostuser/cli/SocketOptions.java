package dev.vhostdevice.vhostuser.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/**
 * The socket options every device daemon shares (picocli mixin): {@code -s/--socket-path} and
 * {@code -c/--socket-count}. With N &gt; 1 sockets PATH0 … PATH(N-1) are served (a plain suffix, as the
 * rust-vmm daemons do); with N = 1 exactly PATH.
 */
public final class SocketOptions {
    /** A sane bound: each socket is a thread pair and its own device. */
    public static final int MAX_SOCKETS = 1024;

    @Option(names = {"-s", "--socket-path"}, required = true, paramLabel = "PATH",
            description = "Unix socket to listen on (with --socket-count N > 1: PATH0 .. PATH(N-1)).")
    Path socketPath;

    @Option(names = {"-c", "--socket-count"}, defaultValue = "1", paramLabel = "N",
            description = "Number of sockets (guests) to serve (default: ${DEFAULT-VALUE}).")
    int socketCount = 1;

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
