package dev.vhostdevice.vhostuser.cli;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine;
import picocli.CommandLine.Mixin;

/**
 * Base of every device daemon's command: socket options, one {@link VhostUserServer} per socket, each with its
 * own device factory, and a clean shutdown on SIGTERM/SIGINT (servers closed, socket files removed).
 *
 * <pre>{@code
 * @Command(name = "vhost-device-rng", mixinStandardHelpOptions = true, versionProvider = ...)
 * final class RngCommand extends DaemonCommand {
 *     @Option(names = "--rng-source") Path source;
 *     protected DeviceFactory deviceFactory(int socketIndex) { return () -> new RngDevice(source); }
 *     public static void main(String[] args) { System.exit(DaemonCommand.execute(new RngCommand(), args)); }
 * }
 * }</pre>
 */
public abstract class DaemonCommand implements Callable<Integer> {
    /** Exit status for bad command-line arguments. */
    public static final int EXIT_USAGE = 2;
    /** Exit status for a failure to start serving. */
    public static final int EXIT_FAILURE = 1;

    @Mixin
    protected SocketOptions sockets = new SocketOptions();

    private final List<VhostUserServer> servers = new ArrayList<>();
    private final CountDownLatch stopped = new CountDownLatch(1);

    /** The factory for the device behind socket {@code socketIndex} (0-based). Validate options here. */
    protected abstract DeviceFactory deviceFactory(int socketIndex) throws Exception;

    @Override
    public Integer call() throws Exception {
        List<Path> paths = sockets.socketPaths();
        List<DeviceFactory> factories = new ArrayList<>(paths.size());
        for (int i = 0; i < paths.size(); i++) {
            factories.add(deviceFactory(i));
        }
        Thread hook = Thread.ofPlatform().unstarted(this::stop);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            for (int i = 0; i < paths.size(); i++) {
                synchronized (servers) {
                    servers.add(VhostUserServer.start(paths.get(i), factories.get(i)));
                }
            }
        } catch (Exception e) {
            stop();
            throw e;
        }
        stopped.await();
        return 0;
    }

    /** Closes every server (removing its socket file); {@link #call()} then returns. */
    public void stop() {
        synchronized (servers) {
            for (VhostUserServer server : servers) {
                server.close();
            }
            servers.clear();
        }
        stopped.countDown();
    }

    /**
     * Parses {@code args} and runs {@code command}; returns the exit status. Bad arguments and start-up failures
     * print one line ({@code name: message}) and a hint, not a stack trace.
     */
    public static int execute(Object command, String... args) {
        CommandLine line = new CommandLine(command);
        line.setParameterExceptionHandler((e, ignored) -> {
            PrintWriter err = e.getCommandLine().getErr();
            err.println(e.getCommandLine().getCommandName() + ": " + e.getMessage());
            err.println("Try '" + e.getCommandLine().getCommandName() + " --help' for more information.");
            err.flush();
            return EXIT_USAGE;
        });
        line.setExecutionExceptionHandler((e, cl, parsed) -> {
            PrintWriter err = cl.getErr();
            err.println(cl.getCommandName() + ": " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            err.flush();
            return e instanceof IllegalArgumentException ? EXIT_USAGE : EXIT_FAILURE;
        });
        return line.execute(args);
    }
}
