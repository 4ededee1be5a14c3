package dev.vhostdevice.vhostuser.cli;

import dev.vhostdevice.vhostuser.device.DeviceFactory;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;

/**
 * Base of every device daemon's command: socket options, one {@link VhostUserServer} per socket, each with its
 * own device factory, and a clean shutdown on SIGTERM/SIGINT (servers closed, socket files removed).
 *
 * <pre>{@code
 * final class RngCommand extends DaemonCommand {
 *     static final Option SOURCE = Option.value("-f", "--rng-source", Option.Type.PATH, "FILE", "Entropy source.");
 *     Path source;
 *     RngCommand() { super("vhost-device-rng", "virtio-rng vhost-user back-end.", SOURCE); }
 *     protected void configure(ParsedArgs args) { source = args.path(SOURCE); }
 *     protected DeviceFactory deviceFactory(int socketIndex) { return () -> new RngDevice(source); }
 *     public static void main(String[] args) { System.exit(DaemonCommand.execute(new RngCommand(), args)); }
 * }
 * }</pre>
 */
public abstract class DaemonCommand {
    /** Exit status for bad command-line arguments. */
    public static final int EXIT_USAGE = 2;
    /** Exit status for a failure to start serving. */
    public static final int EXIT_FAILURE = 1;

    protected final SocketOptions sockets = new SocketOptions();
    protected final WorkerOptions workers = new WorkerOptions();

    private final boolean socketOptions;
    private final OptionParser parser;
    private final List<VhostUserServer> servers = new ArrayList<>();
    private final CountDownLatch stopped = new CountDownLatch(1);

    /**
     * @param name        the executable's name, for help and error lines
     * @param description one or two sentences for {@code --help}
     * @param options     the device's own options; the socket options, help and version come with every daemon
     */
    protected DaemonCommand(String name, String description, Option... options) {
        this(name, description, true, options);
    }

    /**
     * @param socketOptions false for a daemon that names its sockets in its own options (vsock's {@code --vm}):
     *                      no {@code -s}/{@code -c}/{@code --device-state} (it overrides {@link #socketPaths()}),
     *                      but still {@code --no-packed-ring}
     */
    protected DaemonCommand(String name, String description, boolean socketOptions, Option... options) {
        this.socketOptions = socketOptions;
        List<Option> all = new ArrayList<>(SocketOptions.OPTIONS.size() + WorkerOptions.OPTIONS.size() + options.length);
        all.addAll(socketOptions ? SocketOptions.OPTIONS : SocketOptions.RING_OPTIONS);
        all.addAll(List.of(options));
        all.addAll(WorkerOptions.OPTIONS);
        this.parser = new OptionParser(name, description, all);
    }

    /** The executable's name. */
    public final String name() {
        return parser.name();
    }

    /** Reads the device's own option values (the socket options are read already). Validate in deviceFactory. */
    protected void configure(ParsedArgs args) {
    }

    /** The factory for the device behind socket {@code socketIndex} (0-based). Validate options here. */
    protected abstract DeviceFactory deviceFactory(int socketIndex) throws Exception;

    /** The sockets to serve, one server (and device factory) each; by default from the socket options. */
    protected List<Path> socketPaths() {
        return sockets.socketPaths();
    }

    /** The {@code --version} lines: from the jar's manifest. */
    protected List<String> version() {
        return ManifestVersion.of(getClass(), name());
    }

    /** The {@code --help} text. */
    public final String help() {
        return parser.help();
    }

    /**
     * Parses {@code args} into this command's options: the socket options and {@link #configure}, unless help or
     * version was asked for. Throws {@link UsageException} for bad arguments.
     */
    public final ParsedArgs parseArgs(String... args) {
        ParsedArgs parsed = parser.parse(args);
        if (!parsed.isSet(OptionParser.HELP) && !parsed.isSet(OptionParser.VERSION)) {
            if (socketOptions) {
                sockets.read(parsed);
            } else {
                sockets.readRingOptions(parsed);
            }
            workers.read(parsed);
            configure(parsed);
        }
        return parsed;
    }

    /** Starts a server on every socket and waits until {@link #stop()}; call after {@link #parseArgs}. */
    public void serve() throws Exception {
        List<Path> paths = socketPaths();
        List<DeviceFactory> factories = new ArrayList<>(paths.size());
        for (int i = 0; i < paths.size(); i++) {
            factories.add(deviceFactory(i));
        }
        Runtime.getRuntime().addShutdownHook(new Thread(new Stopper(this), "shutdown"));
        VhostUserServer last = null;
        try {
            int lastIndex = paths.size() - 1;
            for (int i = 0; i < lastIndex; i++) {
                synchronized (servers) {
                    servers.add(VhostUserServer.start(paths.get(i), factories.get(i),
                            sockets.serverOptions().withWorkers(workers.tuning())));
                }
            }
            if (lastIndex >= 0) {
                synchronized (servers) {
                    last = VhostUserServer.listen(paths.get(lastIndex), factories.get(lastIndex),
                            sockets.serverOptions());
                    servers.add(last);
                }
            }
        } catch (Exception e) {
            stop();
            throw e;
        }
        // The last socket's accept loop runs here: the main thread would otherwise only wait (one thread fewer).
        // It returns once stop() closes the servers (or its accept fails for good); then wait for stop() itself.
        if (last != null && stopped.getCount() > 0) {
            last.serveOnThisThread();
        }
        stopped.await();
    }

    /** The shutdown hook's task; a class rather than {@code this::stop}, which would spin a lambda at start-up. */
    private record Stopper(DaemonCommand command) implements Runnable {
        @Override
        public void run() {
            command.stop();
        }
    }

    /** Closes every server (removing its socket file); {@link #serve()} then returns. */
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
     * Parses {@code args} and runs {@code command}; returns the exit status: 0, {@link #EXIT_USAGE} for bad
     * arguments (also an IllegalArgumentException from the device, such as an out-of-range value), or
     * {@link #EXIT_FAILURE} for a failure to start. Errors print one line ({@code name: message}), not a stack
     * trace; argument errors add a hint to try {@code --help}. Help and version go to standard output.
     */
    public static int execute(DaemonCommand command, String... args) {
        PrintStream err = System.err;
        ParsedArgs parsed;
        try {
            parsed = command.parseArgs(args);
        } catch (UsageException e) {
            err.println(command.name() + ": " + e.getMessage());
            err.println("Try '" + command.name() + " --help' for more information.");
            err.flush();
            return EXIT_USAGE;
        } catch (IllegalArgumentException e) {
            err.println(command.name() + ": " + e.getMessage());
            err.flush();
            return EXIT_USAGE;
        }
        if (parsed.isSet(OptionParser.HELP)) {
            System.out.print(command.help());
            System.out.flush();
            return 0;
        }
        if (parsed.isSet(OptionParser.VERSION)) {
            for (String line : command.version()) {
                System.out.println(line);
            }
            System.out.flush();
            return 0;
        }
        try {
            command.serve();
            return 0;
        } catch (Exception e) {
            err.println(command.name() + ": " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            err.flush();
            return e instanceof IllegalArgumentException ? EXIT_USAGE : EXIT_FAILURE;
        }
    }
}
