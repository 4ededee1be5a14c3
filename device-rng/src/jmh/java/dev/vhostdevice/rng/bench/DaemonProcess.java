package dev.vhostdevice.rng.bench;

import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.memory.ErrnoException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A device daemon started the way a user starts it (a command line, {@code {}} standing for the socket path),
 * timed from exec until a front-end's {@code connect(2)} succeeds, and observed through {@code /proc}: resident
 * memory and threads, as {@code ps} would show them.
 */
final class DaemonProcess implements AutoCloseable {
    private static final Linux LINUX = Linux.system();
    /** How often the probe retries connect(2) while the socket is not there or not listening. */
    private static final long PROBE_INTERVAL_NANOS = 50_000;

    final Process process;
    final Path socket;
    /** Nanoseconds from just before exec until a connect succeeded. */
    final long startupNanos;
    /**
     * Nanoseconds from just before exec until the daemon answered that connection's first message
     * (GET_FEATURES): the connect succeeds from the listen backlog, the answer needs the daemon to serve.
     */
    final long firstReplyNanos;
    /**
     * CPU time all the daemon's threads had used when the connect succeeded (from each thread's schedstat): on a
     * shared machine the wall time above depends on the other load, this much less.
     */
    final long startupCpuNanos;

    private DaemonProcess(Process process, Path socket, long startupNanos, long firstReplyNanos,
                          long startupCpuNanos) {
        this.process = process;
        this.socket = socket;
        this.startupNanos = startupNanos;
        this.firstReplyNanos = firstReplyNanos;
        this.startupCpuNanos = startupCpuNanos;
    }

    /** Starts {@code command} ({@code {}} replaced by {@code socket}) and waits until a connect succeeds. */
    static DaemonProcess start(List<String> command, Path socket, Path stderr) throws IOException, ErrnoException {
        List<String> argv = new ArrayList<>(command.size());
        for (String arg : command) {
            argv.add(arg.replace("{}", socket.toString()));
        }
        ProcessBuilder builder = new ProcessBuilder(argv)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(stderr.toFile());
        long start = System.nanoTime();
        Process process = builder.start();
        long deadline = start + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            int fd;
            try {
                fd = LINUX.connectUnix(socket);
            } catch (ErrnoException e) {
                // ENOENT before bind, ECONNREFUSED between bind and listen: the daemon is not up yet.
                if (!process.isAlive()) {
                    throw new IOException("daemon exited with " + process.exitValue() + " before listening: "
                            + Files.readString(stderr).strip());
                }
                if (System.nanoTime() - deadline > 0) {
                    process.destroyForcibly();
                    throw new IOException("daemon not listening on " + socket + " after 30 s");
                }
                LockSupport.parkNanos(PROBE_INTERVAL_NANOS);
                continue;
            }
            long connected = System.nanoTime();
            long cpu = cpuNanos(process.pid());
            try {
                getFeatures(fd);
            } finally {
                LINUX.close(fd);
            }
            return new DaemonProcess(process, socket, connected - start, System.nanoTime() - start, cpu);
        }
    }

    /** Sends VHOST_USER_GET_FEATURES (request 1, version 1, no payload) and reads its 20-byte reply. */
    private static void getFeatures(int fd) throws IOException, ErrnoException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment message = arena.allocate(20, 8);
            message.set(ValueLayout.JAVA_INT, 0, 1);
            message.set(ValueLayout.JAVA_INT, 4, 0x1);
            message.set(ValueLayout.JAVA_INT, 8, 0);
            if (LINUX.write(fd, message, 12) != 12) {
                throw new IOException("GET_FEATURES not sent whole");
            }
            long got = 0;
            while (got < 20) {
                long n = LINUX.read(fd, message.asSlice(got), 20 - got);
                if (n <= 0) {
                    throw new IOException("no reply to GET_FEATURES");
                }
                got += n;
            }
            if ((message.get(ValueLayout.JAVA_INT, 4) & 0x4) == 0) {
                throw new IOException("GET_FEATURES answered without the reply flag");
            }
        }
    }

    /** The CPU time of every thread of {@code pid} so far: the first field of /proc/PID/task/TID/schedstat. */
    static long cpuNanos(long pid) throws IOException {
        long total = 0;
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    String stat = Files.readString(task.resolve("schedstat"));
                    total += Long.parseLong(stat.substring(0, stat.indexOf(' ')));
                } catch (IOException gone) {
                    // the thread ended while we listed
                }
            }
        }
        return total;
    }

    /** Resident set size in KiB ({@code VmRSS} of /proc/PID/status). */
    long rssKib() throws IOException {
        return statusField("VmRSS:");
    }

    /**
     * The part of the RSS in file-backed pages ({@code RssFile}: libjvm.so's text, the CDS archive or AOT cache),
     * which every daemon started from the same files shares; the rest ({@code RssAnon}) is this process's own.
     */
    long rssFileKib() throws IOException {
        return statusField("RssFile:");
    }

    long threads() throws IOException {
        return statusField("Threads:");
    }

    private long statusField(String name) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(process.pid()), "status"))) {
            if (line.startsWith(name)) {
                return Long.parseLong(line.substring(name.length()).trim().split("\\s+")[0]);
            }
        }
        throw new IOException(name + " not in /proc/" + process.pid() + "/status");
    }

    /** Thread names with their counts, e.g. {@code {C2 CompilerThre=1, GC Thread#0=1, ...}}. */
    TreeMap<String, Integer> threadNames() throws IOException {
        TreeMap<String, Integer> names = new TreeMap<>();
        try (var tasks = Files.list(Path.of("/proc", Long.toString(process.pid()), "task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    names.merge(Files.readString(task.resolve("comm")).strip(), 1, Integer::sum);
                } catch (IOException gone) {
                    // the thread ended while we listed
                }
            }
        }
        return names;
    }

    /**
     * SIGTERM, as systemd stops a daemon; SIGKILL if it has not exited within 60 s (a training run writes its AOT
     * cache as it exits).
     */
    @Override
    public void close() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(60, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor();
        }
    }
}
