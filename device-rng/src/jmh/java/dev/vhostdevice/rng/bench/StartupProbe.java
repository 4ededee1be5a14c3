package dev.vhostdevice.rng.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Start-up and footprint of vhost-device-rng as a user sees them ({@code scripts/startup-time}): for each run,
 * exec of the daemon's command line until a front-end's connect(2) succeeds; then resident memory and threads
 * idle (1 s after that probe connection came and went) and while serving one front-end that streams 4 KiB
 * requests. The first {@code --warmup} runs fill the page cache and are not counted; prints the median and
 * range of the others.
 *
 * <pre>{@code StartupProbe [--runs 5] [--warmup 1] -- java -jar vhost-device-rng.jar --socket-path {}}</pre>
 */
public final class StartupProbe {
    private StartupProbe() {
    }

    public static void main(String[] args) throws Exception {
        int runs = 5;
        int warmup = 1;
        int i = 0;
        for (; i < args.length && !args[i].equals("--"); i++) {
            switch (args[i]) {
                case "--runs" -> runs = Integer.parseInt(args[++i]);
                case "--warmup" -> warmup = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        List<String> command = List.of(args).subList(Math.min(i + 1, args.length), args.length);
        if (command.isEmpty()) {
            throw new IllegalArgumentException("usage: StartupProbe [--runs N] [--warmup N] -- COMMAND ({} = socket)");
        }
        Path dir = Files.createTempDirectory("startup-probe");
        double[] connectMs = new double[runs];
        double[] replyMs = new double[runs];
        double[] cpuMs = new double[runs];
        long[] idleRss = new long[runs];
        long[] idleFile = new long[runs];
        long[] servingRss = new long[runs];
        long[] idleThreads = new long[runs];
        long[] servingThreads = new long[runs];
        Map<String, Integer> idleNames = Map.of();
        Map<String, Integer> servingNames = Map.of();
        try {
            for (int run = -warmup; run < runs; run++) {
                Path socket = dir.resolve("s" + (run + warmup) + ".sock");
                try (DaemonProcess daemon = DaemonProcess.start(command, socket, dir.resolve("stderr"))) {
                    double ms = daemon.startupNanos / 1e6;
                    double reply = daemon.firstReplyNanos / 1e6;
                    double cpu = daemon.startupCpuNanos / 1e6;
                    TimeUnit.SECONDS.sleep(1);
                    long rss = daemon.rssKib();
                    long file = daemon.rssFileKib();
                    long threads = daemon.threads();
                    idleNames = daemon.threadNames();
                    long rssServing;
                    long threadsServing;
                    long bytes;
                    try (RngStream stream = RngStream.connect(socket, 64, 64, 4096)) {
                        bytes = stream.run(TimeUnit.MILLISECONDS.toNanos(700));
                        rssServing = daemon.rssKib();
                        threadsServing = daemon.threads();
                        servingNames = daemon.threadNames();
                        bytes += stream.run(TimeUnit.MILLISECONDS.toNanos(300));
                    }
                    String label = run < 0 ? "warm-up" : "run " + run;
                    System.out.printf("%s: connect %.1f ms (CPU %.1f ms), first reply %.1f ms; idle %.1f MiB (%.1f MiB"
                            + " of it file-backed), %d threads; serving (%.0f MB/s) %.1f MiB, %d threads%n", label, ms,
                            cpu, reply, rss / 1024.0,
                            file / 1024.0, threads, bytes / 1e6, rssServing / 1024.0, threadsServing);
                    if (run >= 0) {
                        connectMs[run] = ms;
                        replyMs[run] = reply;
                        cpuMs[run] = cpu;
                        idleRss[run] = rss;
                        idleFile[run] = file;
                        servingRss[run] = rssServing;
                        idleThreads[run] = threads;
                        servingThreads[run] = threadsServing;
                    }
                }
            }
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : (Iterable<Path>) files::iterator) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(dir);
        }
        Arrays.sort(connectMs);
        System.out.printf("connect: median %.1f ms (%.1f–%.1f) over %d runs%n", connectMs[runs / 2], connectMs[0],
                connectMs[runs - 1], runs);
        Arrays.sort(replyMs);
        System.out.printf("first reply (GET_FEATURES answered): median %.1f ms (%.1f–%.1f)%n", replyMs[runs / 2],
                replyMs[0], replyMs[runs - 1]);
        Arrays.sort(cpuMs);
        System.out.printf("CPU time of the daemon at connect: median %.1f ms (%.1f–%.1f)%n", cpuMs[runs / 2],
                cpuMs[0], cpuMs[runs - 1]);
        System.out.printf("RSS: idle median %.1f MiB (file-backed, shared by daemons of one install: %.1f MiB),"
                + " serving one front-end median %.1f MiB%n", median(idleRss) / 1024.0, median(idleFile) / 1024.0,
                median(servingRss) / 1024.0);
        System.out.printf("threads: idle median %d, serving median %d%n", median(idleThreads), median(servingThreads));
        System.out.println("threads idle: " + idleNames);
        System.out.println("threads serving: " + servingNames);
    }

    private static long median(long[] values) {
        long[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
