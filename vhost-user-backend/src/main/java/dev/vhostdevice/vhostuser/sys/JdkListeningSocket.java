package dev.vhostdevice.vhostuser.sys;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * A listening {@code AF_UNIX} socket made by the JDK's own channel, whose native code the JVM has linked already:
 * listening this way takes a few milliseconds where java.lang.foreign's first downcalls take about a hundred
 * (the linker, then a generated stub per signature), so a front-end's connect succeeds that much sooner after
 * the daemon is started. Everything after listen(2) returns (finding the fd, adopting it) happens while the
 * front-end's connection waits in the backlog.
 *
 * <p>The JDK does not expose a channel's fd: it is found as the one fd of this process that
 * {@code /proc/self/fd} links to the socket inode that {@code /proc/net/unix} lists for the path.
 */
final class JdkListeningSocket implements AutoCloseable {
    private static final Path PROC_NET_UNIX = Path.of("/proc/net/unix");
    private static final Path PROC_SELF_FD = Path.of("/proc/self/fd");
    /** /proc/net/unix columns: Num RefCount Protocol Flags Type St Inode Path. */
    private static final int INODE_COLUMN = 6;
    private static final int PATH_COLUMN = 7;

    private final ServerSocketChannel channel;
    private final int fd;

    private JdkListeningSocket(ServerSocketChannel channel, int fd) {
        this.channel = channel;
        this.fd = fd;
    }

    /**
     * Binds and listens on {@code path}; null when the JDK cannot, or its fd cannot be told for certain (the
     * socket file it bound is removed again), so the caller listens natively and reports the errno.
     */
    static JdkListeningSocket listen(Path path, int backlog) {
        ServerSocketChannel channel;
        try {
            channel = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException | RuntimeException e) {
            return null;
        }
        try {
            channel.bind(UnixDomainSocketAddress.of(path), backlog);
        } catch (IOException | RuntimeException e) {
            closeQuietly(channel);
            return null;
        }
        int fd = fdOfSocketBoundTo(path.toString());
        if (fd < 0) {
            closeQuietly(channel);
            try {
                Files.deleteIfExists(path);
            } catch (IOException e) {
                // the native bind that follows reports EADDRINUSE with the path
            }
            return null;
        }
        return new JdkListeningSocket(channel, fd);
    }

    /** The listening socket's fd, valid until {@link #close()}. */
    int fd() {
        return fd;
    }

    /** Closes the JDK's fd (a duplicate made meanwhile keeps the socket listening). */
    @Override
    public void close() {
        closeQuietly(channel);
    }

    /** The fd of this process whose socket is bound to {@code path}; -1 if none or more than one. */
    static int fdOfSocketBoundTo(String path) {
        Set<String> links = socketLinksBoundTo(path);
        if (links.isEmpty()) {
            return -1;
        }
        int found = -1;
        try (DirectoryStream<Path> fds = Files.newDirectoryStream(PROC_SELF_FD)) {
            for (Path entry : fds) {
                String target;
                try {
                    target = Files.readSymbolicLink(entry).toString();
                } catch (IOException e) {
                    continue; // closed meanwhile (the directory stream's own fd, say)
                }
                if (links.contains(target)) {
                    if (found >= 0) {
                        return -1;
                    }
                    found = Integer.parseInt(entry.getFileName().toString());
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return found;
    }

    /**
     * The fd links ({@code socket:[inode]}) of every socket /proc/net/unix lists as bound to {@code path}: more
     * than one when another process still holds a socket bound there before its file was replaced.
     */
    private static Set<String> socketLinksBoundTo(String path) {
        Set<String> links = new HashSet<>();
        try {
            for (String line : Files.readAllLines(PROC_NET_UNIX)) {
                String[] columns = line.strip().split(" +", PATH_COLUMN + 1);
                if (columns.length == PATH_COLUMN + 1 && columns[PATH_COLUMN].equals(path)) {
                    links.add("socket:[" + columns[INODE_COLUMN] + "]");
                }
            }
        } catch (IOException | RuntimeException e) {
            links.clear();
        }
        return links;
    }

    private static void closeQuietly(ServerSocketChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            // nothing to do: the fd is gone either way
        }
    }
}
