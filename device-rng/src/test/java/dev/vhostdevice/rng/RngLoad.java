package dev.vhostdevice.rng;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.protocol.ProtocolFeature;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Load on one rng daemon from outside, as many guests would put it: one front-end per socket of a daemon started
 * with {@code --socket-count N} ({@link TestFrontend}s over the real sockets, memfd guest RAM, eventfds), each
 * streaming single-descriptor requests of {@code requestBytes} with {@code inFlight} kept in flight (a used head
 * is re-posted at once, kicks and calls as a Linux driver does them with EVENT_IDX).
 *
 * <p>Three measurements: {@link #stream} (requests each front-end got in the same window: the fairness),
 * {@link #burst} (N connections arriving at once, each served one request) and {@link #census} (the daemon's fds
 * and threads from /proc, to compare before and after rounds of reconnects). Used by {@code scripts/load-rng}
 * (main, full durations) and by RngLoadIT (CI, shorter).
 */
public final class RngLoad {
    private static final Linux LINUX = Linux.system();
    private static final long REPLY_ACK = ProtocolFeature.REPLY_ACK.mask();
    /**
     * Every front-end streams this long before and after the counted window, so that all of them compete
     * throughout it (32 threads released together on a loaded machine start hundreds of ms apart).
     */
    private static final Duration LEAD = Duration.ofMillis(500);
    /** Bounds every control exchange, so a stuck daemon fails the run instead of hanging it. */
    private static final Duration CONTROL_TIMEOUT = Duration.ofSeconds(30);

    private RngLoad() {
    }

    /** The sockets of {@code --socket-path base --socket-count n}: base0 .. base(n-1), or base itself for 1. */
    public static List<Path> sockets(Path base, int n) {
        if (n == 1) {
            return List.of(base);
        }
        List<Path> paths = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            paths.add(Path.of(base + Integer.toString(i)));
        }
        return paths;
    }

    /** Requests (each of {@code requestBytes}) each front-end was served in one window of {@code seconds}. */
    public record StreamResult(long[] requests, int requestBytes, double seconds) {
        public double rate(int i) {
            return requests[i] / seconds;
        }

        public double minRate() {
            return Arrays.stream(requests).min().orElse(0) / seconds;
        }

        public double maxRate() {
            return Arrays.stream(requests).max().orElse(0) / seconds;
        }

        public double meanRate() {
            return Arrays.stream(requests).average().orElse(0) / seconds;
        }

        /** Slowest over mean: 1 is perfectly fair; the load's property is at least 0.5. */
        public double fairness() {
            double mean = meanRate();
            return mean == 0 ? 0 : minRate() / mean;
        }

        public double totalMegabytesPerSecond() {
            return Arrays.stream(requests).sum() * (double) requestBytes / seconds / 1e6;
        }

        @Override
        public String toString() {
            return "%d front-ends, %.1f s: requests/s min %.0f mean %.0f max %.0f (slowest/mean %.2f), total %.1f MB/s"
                    .formatted(requests.length, seconds, minRate(), meanRate(), maxRate(), fairness(),
                            totalMegabytesPerSecond());
        }
    }

    /** The daemon's open fds and threads; {@code jitThreads} are the JVM's compiler threads, which come and go. */
    public record Census(int fds, int threads, int jitThreads) {
        /** Threads that do not come and go with the JIT's load. */
        public int steadyThreads() {
            return threads - jitThreads;
        }

        @Override
        public String toString() {
            return "%d fds, %d threads (%d of them JIT compiler threads)".formatted(fds, threads, jitThreads);
        }
    }

    /** Counts {@code /proc/PID/fd} and {@code /proc/PID/task} of the daemon. */
    public static Census census(long pid) throws IOException {
        int fds;
        try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            fds = (int) s.count();
        }
        int threads = 0;
        int jit = 0;
        try (Stream<Path> s = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : (Iterable<Path>) s::iterator) {
                String comm;
                try {
                    comm = Files.readString(task.resolve("comm")).strip();
                } catch (IOException gone) {
                    continue; // the thread ended while listing
                }
                threads++;
                if (comm.startsWith("C1 CompilerThre") || comm.startsWith("C2 CompilerThre")) {
                    jit++;
                }
            }
        }
        return new Census(fds, threads, jit);
    }

    /**
     * Waits up to {@code within} until the daemon holds no more fds and steady threads than {@code baseline}
     * (sessions end asynchronously after their front-end leaves); returns the last census.
     */
    public static Census settle(long pid, Census baseline, Duration within) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        Census now = census(pid);
        while ((now.fds() > baseline.fds() || now.steadyThreads() > baseline.steadyThreads())
                && System.nanoTime() - deadline < 0) {
            Thread.sleep(50);
            now = census(pid);
        }
        return now;
    }

    /** The census once it has not changed for half a second (at most 10 s of waiting). */
    public static Census quiet(long pid) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        Census last = census(pid);
        long since = System.nanoTime();
        while (System.nanoTime() - since < TimeUnit.MILLISECONDS.toNanos(500) && System.nanoTime() - deadline < 0) {
            Thread.sleep(50);
            Census now = census(pid);
            if (!now.equals(last)) {
                last = now;
                since = System.nanoTime();
            }
        }
        return last;
    }

    /**
     * Connects one front-end per socket, all at once; when all are set up they start streaming together and
     * count the requests completed in one common window of {@code window}, streaming {@link #LEAD} before and
     * after it; then all disconnect. Fails if any front-end fails or is served nothing.
     */
    public static StreamResult stream(List<Path> sockets, Duration window, int inFlight, int requestBytes)
            throws Exception {
        int n = sockets.size();
        CountDownLatch ready = new CountDownLatch(n);
        CountDownLatch go = new CountDownLatch(1);
        long[] span = new long[2]; // the counted window [start, end) in System.nanoTime(), set before go
        List<Callable<Long>> jobs = new ArrayList<>(n);
        for (Path socket : sockets) {
            jobs.add(() -> streamOne(socket, span, inFlight, requestBytes, ready, go));
        }
        ExecutorService pool = Executors.newFixedThreadPool(n, Thread.ofPlatform().name("load-", 0).factory());
        try {
            List<Future<Long>> futures = new ArrayList<>(n);
            for (Callable<Long> job : jobs) {
                futures.add(pool.submit(job));
            }
            if (!ready.await(CONTROL_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                for (Future<Long> f : futures) {
                    if (f.isDone()) {
                        f.get(); // the first set-up failure, as the exception
                    }
                }
                throw new AssertionError("front-ends not set up within " + CONTROL_TIMEOUT);
            }
            span[0] = System.nanoTime() + LEAD.toNanos();
            span[1] = span[0] + window.toNanos();
            go.countDown();
            long[] requests = new long[n];
            for (int i = 0; i < n; i++) {
                requests[i] = futures.get(i).get(window.toSeconds() + 3 * CONTROL_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
            }
            return new StreamResult(requests, requestBytes, window.toNanos() / 1e9);
        } finally {
            pool.shutdownNow();
            pool.awaitTermination(CONTROL_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    /** Streams from {@code go} until after {@code span}; returns the requests completed inside it. */
    private static long streamOne(Path socket, long[] span, int inFlight, int requestBytes, CountDownLatch ready,
                                  CountDownLatch go) throws Exception {
        try (TestFrontend fe = TestFrontend.connect(socket).timeout(CONTROL_TIMEOUT)) {
            long features = fe.negotiate(true, REPLY_ACK, 0);
            int size = Math.max(16, Integer.highestOneBit(Math.max(1, inFlight - 1)) << 1);
            FrontendQueue q = fe.startQueue(0, size, 0);
            fe.setVringEnable(0, true);
            DriverQueue driver = q.driver();
            driver.setEventIdx((features & TestFrontend.F_EVENT_IDX) != 0);
            long[] bufferOf = new long[size];
            for (int i = 0; i < inFlight; i++) {
                long at = fe.ram().allocate(requestBytes, 64);
                bufferOf[driver.add(Buffer.writable(at, requestBytes))] = at;
            }
            ready.countDown();
            go.await();
            q.kick();
            long start = span[0];
            long end = span[1];
            long stop = end + LEAD.toNanos();
            long giveUp = stop + CONTROL_TIMEOUT.toNanos();
            long requests = 0;
            long atStart = -1;
            long atEnd = -1;
            int seen = 0;
            // A front-end served nothing by the end goes on until its first request (a short window on a loaded
            // machine), so that "served at all" is checked without timing.
            while (true) {
                long now = System.nanoTime();
                if (atStart < 0 && now - start >= 0) {
                    atStart = requests;
                }
                if (atEnd < 0 && now - end >= 0) {
                    atEnd = requests;
                }
                if (now - stop >= 0 && (requests > 0 || now - giveUp >= 0)) {
                    break;
                }
                boolean reposted = false;
                DriverQueue.Used used;
                while ((used = driver.pollUsed()) != null) {
                    if (used.length() != requestBytes) {
                        throw new AssertionError(socket + ": used length " + used.length() + " for a request of "
                                + requestBytes);
                    }
                    requests++;
                    seen = (seen + 1) & 0xFFFF;
                    long at = bufferOf[used.head()];
                    bufferOf[driver.add(Buffer.writable(at, requestBytes))] = at;
                    reposted = true;
                }
                if (reposted && driver.kickPrepare()) {
                    q.kick();
                }
                // As Linux's driver: interrupt me at the next completion, then re-check before sleeping.
                driver.setUsedEvent(seen);
                java.lang.invoke.VarHandle.fullFence();
                if (driver.usedIdx() == seen && LINUX.poll(q.callFd(), Linux.POLLIN, 20)) {
                    LINUX.readEventfd(q.callFd());
                }
            }
            if (requests == 0) {
                throw new AssertionError(socket + ": no request served in " + CONTROL_TIMEOUT + " and more");
            }
            return atEnd - atStart;
        }
    }

    /**
     * {@code sockets.size()} connections arriving at once (one per socket, released together): each negotiates,
     * starts a ring and gets one request served. Returns how many were; fails on the first that was not.
     */
    public static int burst(List<Path> sockets, int requestBytes) throws Exception {
        int n = sockets.size();
        CountDownLatch go = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(n, Thread.ofPlatform().name("burst-", 0).factory());
        try {
            List<Future<Boolean>> futures = new ArrayList<>(n);
            for (Path socket : sockets) {
                futures.add(pool.submit(() -> {
                    go.await();
                    try (TestFrontend fe = TestFrontend.connect(socket).timeout(CONTROL_TIMEOUT)) {
                        fe.negotiate(true, REPLY_ACK, 0);
                        FrontendQueue q = fe.startQueue(0, 16, 0);
                        fe.setVringEnable(0, true);
                        q.post(new byte[0], requestBytes);
                        q.kick();
                        return q.awaitUsed(CONTROL_TIMEOUT).length() == requestBytes;
                    }
                }));
            }
            go.countDown();
            int served = 0;
            for (int i = 0; i < n; i++) {
                if (!futures.get(i).get(2 * CONTROL_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                    throw new AssertionError(sockets.get(i) + ": connection of the burst not served in full");
                }
                served++;
            }
            return served;
        } finally {
            pool.shutdownNow();
            pool.awaitTermination(CONTROL_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
        }
    }

    /** What one load run found, with the three properties. */
    public record Report(int burstServed, StreamResult full, Census baseline, List<Census> afterRounds) {
        public Census last() {
            return afterRounds.isEmpty() ? baseline : afterRounds.getLast();
        }

        public boolean fair() {
            return full.fairness() >= 0.5;
        }

        public boolean noGrowth() {
            return last().fds() <= baseline.fds() && last().steadyThreads() <= baseline.steadyThreads();
        }
    }

    /**
     * The whole run against a daemon already listening on {@code sockets} (process {@code pid}): a burst of
     * connects, one window of {@code window} (the fairness figure), then {@code rounds} rounds in which every
     * front-end reconnects and streams for {@code roundWindow}, the daemon's census taken after each.
     */
    public static Report run(List<Path> sockets, long pid, Duration window, int rounds, Duration roundWindow,
                             int inFlight, int requestBytes, java.util.function.Consumer<String> progress)
            throws Exception {
        progress.accept("idle daemon: " + quiet(pid));
        int served = burst(sockets, requestBytes);
        progress.accept("burst: " + served + " of " + sockets.size() + " simultaneous connections served");
        // The first window also warms the daemon up (classes, JIT, GC threads): the census baseline follows it.
        StreamResult full = stream(sockets, window, inFlight, requestBytes);
        progress.accept("stream: " + full);
        Census baseline = quiet(pid); // sessions of the window's front-ends end asynchronously
        progress.accept("after the window, all disconnected: " + baseline);
        List<Census> after = new ArrayList<>();
        for (int round = 1; round <= rounds; round++) {
            stream(sockets, roundWindow, inFlight, requestBytes);
            Census c = settle(pid, baseline, Duration.ofSeconds(10));
            after.add(c);
            progress.accept("reconnect round " + round + ": " + c);
        }
        return new Report(served, full, baseline, after);
    }

    /**
     * {@code RngLoad --socket-path BASE --count N --pid PID [--seconds 10] [--rounds 10] [--round-millis 500]
     * [--in-flight 16] [--bytes 4096]}: prints the figures; exit status 1 if a property fails.
     */
    public static void main(String[] args) throws Exception {
        Path base = null;
        int count = 32;
        long pid = -1;
        int seconds = 10;
        int rounds = 10;
        int roundMillis = 500;
        int inFlight = 16;
        int bytes = 4096;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String value = args[i + 1];
            switch (args[i]) {
                case "--socket-path" -> base = Path.of(value);
                case "--count" -> count = Integer.parseInt(value);
                case "--pid" -> pid = Long.parseLong(value);
                case "--seconds" -> seconds = Integer.parseInt(value);
                case "--rounds" -> rounds = Integer.parseInt(value);
                case "--round-millis" -> roundMillis = Integer.parseInt(value);
                case "--in-flight" -> inFlight = Integer.parseInt(value);
                case "--bytes" -> bytes = Integer.parseInt(value);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (base == null || pid <= 0 || args.length % 2 != 0) {
            System.err.println("usage: RngLoad --socket-path BASE --count N --pid PID [--seconds S] [--rounds R]"
                    + " [--round-millis M] [--in-flight K] [--bytes B]");
            System.exit(2);
        }
        Report r = run(sockets(base, count), pid, Duration.ofSeconds(seconds), rounds, Duration.ofMillis(roundMillis),
                inFlight, bytes, System.out::println);
        System.out.printf("per front-end requests/s: %s%n", Arrays.toString(
                Arrays.stream(r.full().requests()).map(n -> Math.round(n / r.full().seconds())).toArray()));
        System.out.printf("fairness (slowest/mean) %.2f: %s; fds %d -> %d, steady threads %d -> %d: %s%n",
                r.full().fairness(), r.fair() ? "ok" : "FAILED (< 0.5)", r.baseline().fds(), r.last().fds(),
                r.baseline().steadyThreads(), r.last().steadyThreads(), r.noGrowth() ? "no growth" : "GROWTH");
        System.exit(r.fair() && r.noGrowth() && r.burstServed() == count ? 0 : 1);
    }
}
