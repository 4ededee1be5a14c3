package dev.vhostdevice.vhostuser.bench;

import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.sys.ThreadPlacement;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Request latency as a guest sees it, from outside the daemon: starts a packaged device jar ({@code java -jar}),
 * connects over its real Unix socket as QEMU 10 does (memfd RAM, eventfds, a 4-entry ring with EVENT_IDX), and
 * keeps one request in flight at a time: publish, kick if the device asks for it (avail_event, as Linux's
 * virtqueue_kick_prepare), sleep in epoll on the call eventfd (the guest's interrupt), consume the used entry.
 * Prints p50/p99/p99.9 round-trip µs, the daemon's CPU time per MiB served and its CPU while idle afterwards.
 *
 * <p>Run by {@code scripts/latency}. Usage: {@code RoundTripLatency DEVICE JAR REQUESTS [DAEMON-ARG...]} with
 * DEVICE {@code rng} (64-byte read) or {@code i2c} (one-byte read from the simulated EEPROM at 0x50; pass
 * {@code -l sim:80}). A new device is one more {@link Workload}: vsock's 64-byte ping-pong would post a TX
 * packet on queue 1 and wait for the echo on RX queue 0, with an echo server on the daemon's host socket.
 */
public final class RoundTripLatency {
    private static final Linux LINUX = Linux.system();
    private static final long TIMEOUT_NANOS = 5_000_000_000L;
    private static final long WARMUP_NANOS = 3_000_000_000L;

    /** One kind of request: set up once, then one round trip per call. */
    interface Workload {
        /** Bytes of payload a request moves (for CPU per MiB). */
        int payloadBytes();

        QemuDevice qemuDevice();

        /** Prepares the request's descriptors in guest RAM, once. */
        void prepare(TestFrontend frontend) throws Exception;

        /** The queue the request goes to and whose call fd signals its completion. */
        int queue();

        /** The head to publish for the next request (re-used, its descriptors written once). */
        int head();

        /** Checks the answer of a completed request; throws if it is wrong. */
        void check(DriverQueue.Used used);
    }

    /** virtio-rng: one writable 64-byte buffer. */
    static final class Rng implements Workload {
        static final int BYTES = 64;
        private int head;

        @Override
        public int payloadBytes() {
            return BYTES;
        }

        @Override
        public QemuDevice qemuDevice() {
            return QemuDevice.rng();
        }

        @Override
        public void prepare(TestFrontend frontend) throws Exception {
            long buffer = frontend.ram().allocate(BYTES, 64);
            head = frontend.queue(0).driver().prepare(Buffer.writable(buffer, BYTES));
        }

        @Override
        public int queue() {
            return 0;
        }

        @Override
        public int head() {
            return head;
        }

        @Override
        public void check(DriverQueue.Used used) {
            if (used.head() != head || used.length() != BYTES) {
                throw new IllegalStateException("rng answered head " + used.head() + " with " + used.length() + " bytes");
            }
        }
    }

    /** virtio-i2c: a one-byte read from address 0x50 (out_hdr, one data byte, in_hdr status). */
    static final class I2c implements Workload {
        static final int ADDRESS = 0x50;
        static final int VIRTIO_I2C_FLAGS_M_RD = 1 << 1;
        private int head;
        private DriverQueue driver;
        private long status;

        @Override
        public int payloadBytes() {
            return 1;
        }

        @Override
        public QemuDevice qemuDevice() {
            return QemuDevice.rng(); // vhost-user-i2c: one queue of 4, no config, like rng
        }

        @Override
        public void prepare(TestFrontend frontend) throws Exception {
            driver = frontend.queue(0).driver();
            long outHdr = frontend.ram().allocate(8, 8);
            long data = frontend.ram().allocate(1, 8);
            status = frontend.ram().allocate(1, 8);
            // struct virtio_i2c_out_hdr { le16 addr (7-bit address << 1); le16 padding; le32 flags; }
            driver.write(outHdr, new byte[] {(byte) (ADDRESS << 1), 0, 0, 0, VIRTIO_I2C_FLAGS_M_RD, 0, 0, 0});
            head = driver.prepare(Buffer.readable(outHdr, 8), Buffer.writable(data, 1), Buffer.writable(status, 1));
        }

        @Override
        public int queue() {
            return 0;
        }

        @Override
        public int head() {
            return head;
        }

        @Override
        public void check(DriverQueue.Used used) {
            if (used.head() != head || used.length() != 2 || driver.read(status, 1)[0] != 0) {
                throw new IllegalStateException("i2c answered head " + used.head() + " with " + used.length()
                        + " bytes, status " + driver.read(status, 1)[0]);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: RoundTripLatency rng|i2c JAR REQUESTS [DAEMON-ARG...]");
            System.exit(2);
        }
        Workload workload = switch (args[0]) {
            case "rng" -> new Rng();
            case "i2c" -> new I2c();
            default -> throw new IllegalArgumentException("unknown device " + args[0] + " (rng, i2c)");
        };
        Path jar = Path.of(args[1]);
        int requests = Integer.parseInt(args[2]);
        List<String> daemonArgs = List.of(args).subList(3, args.length);
        String label = (jar.getFileName().toString().startsWith("vhost-device-") ? "" : jar.getFileName() + " ")
                + String.join(" ", daemonArgs);
        Path dir = Files.createTempDirectory("latency");
        Path socket = dir.resolve(args[0] + ".sock");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar", jar.toString(), "-s", socket.toString()));
        command.addAll(daemonArgs);
        Process daemon = new ProcessBuilder(command).redirectErrorStream(true)
                .redirectOutput(dir.resolve("daemon.log").toFile()).start();
        try {
            String clientCpus = System.getProperty("latency.clientCpus", "");
            if (!clientCpus.isEmpty()) {
                // After the daemon started, so it does not inherit the front-end's placement.
                ThreadPlacement.pinCurrentThread(Arrays.stream(clientCpus.split(",")).mapToInt(Integer::parseInt).toArray());
                label = label + " client@" + clientCpus;
            }
            awaitSocket(socket, daemon);
            run(workload, socket, requests, daemon.pid(), label);
        } finally {
            daemon.destroy();
            daemon.waitFor();
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir.resolve("daemon.log"));
            Files.deleteIfExists(dir);
        }
    }

    private static void awaitSocket(Path socket, Process daemon) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!Files.exists(socket)) {
            if (!daemon.isAlive() || System.nanoTime() > deadline) {
                throw new IllegalStateException("the daemon did not listen on " + socket);
            }
            Thread.sleep(10);
        }
    }

    private static void run(Workload workload, Path socket, int requests, long pid, String label) throws Exception {
        try (TestFrontend frontend = TestFrontend.connect(socket); Arena arena = Arena.ofConfined()) {
            frontend.ram();
            TestFrontend.Negotiation negotiation = frontend.negotiateLikeQemu10(workload.qemuDevice());
            workload.prepare(frontend);
            FrontendQueue queue = frontend.queue(workload.queue());
            DriverQueue driver = queue.driver();
            // The driver follows avail_event and used_event as Linux's does when EVENT_IDX was negotiated.
            driver.setEventIdx((negotiation.features() & TestFrontend.F_EVENT_IDX) != 0);
            queue.takeCalls(); // the start-up kick's scan answers nothing, but be sure no call is pending
            int epoll = LINUX.epollCreate();
            try {
                LINUX.epollAdd(epoll, queue.callFd(), Linux.EPOLLIN, 0);
                EpollEvents ready = new EpollEvents(1, arena);
                long[] micros = new long[requests];
                // Warm-up: long enough for both JITs to finish compiling the path (the daemon's C2 included).
                long warmupEnd = System.nanoTime() + WARMUP_NANOS;
                for (int i = 0; i < 5000 || System.nanoTime() < warmupEnd; i++) {
                    roundTrip(workload, queue, driver, epoll, ready);
                }
                long cpuBefore = cpuNanos(pid);
                java.util.Map<String, Long> threadsBefore = threadCpuNanos(pid);
                long kicks = 0;
                for (int i = 0; i < requests; i++) {
                    long start = System.nanoTime();
                    kicks += roundTrip(workload, queue, driver, epoll, ready) ? 1 : 0;
                    micros[i] = System.nanoTime() - start;
                }
                long busyCpu = cpuNanos(pid) - cpuBefore;
                if (Boolean.getBoolean("latency.threads")) {
                    threadCpuNanos(pid).forEach((thread, nanos) -> {
                        long delta = nanos - threadsBefore.getOrDefault(thread, 0L);
                        if (delta > 1_000_000) {
                            System.out.printf(Locale.ROOT, "  daemon thread %-24s %.1f µs/request%n", thread,
                                    delta / 1000.0 / requests);
                        }
                    });
                }
                Thread.sleep(200); // past any poll budget
                long idleStart = cpuNanos(pid);
                long idleWall = System.nanoTime();
                Thread.sleep(5000);
                double idlePercent = 100.0 * (cpuNanos(pid) - idleStart) / (System.nanoTime() - idleWall);
                report(workload, label, micros, kicks, busyCpu, idlePercent);
            } finally {
                LINUX.close(epoll);
            }
        }
    }

    /** One request; returns whether it needed a kick. */
    private static boolean roundTrip(Workload workload, FrontendQueue queue, DriverQueue driver, int epoll,
                                     EpollEvents ready) throws Exception {
        driver.publish(workload.head());
        boolean kick = driver.kickPrepare();
        if (kick) {
            queue.kick();
        }
        long deadline = System.nanoTime() + TIMEOUT_NANOS;
        DriverQueue.Used used;
        while ((used = driver.pollUsed()) == null) {
            // The guest sleeps until its interrupt: block on the call eventfd.
            if (LINUX.epollWait(epoll, ready, 1000) > 0) {
                LINUX.readEventfd(queue.callFd());
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no completion within 5 s (used idx " + driver.usedIdx() + ")");
            }
        }
        // As Linux's driver with callbacks enabled: interrupt me at the next completion (EVENT_IDX).
        driver.setUsedEvent(driver.usedIdx());
        // Linux's virtqueue_enable_cb: a full barrier between used_event and the next look at the used ring.
        java.lang.invoke.VarHandle.fullFence();
        workload.check(used);
        return kick;
    }

    /** On-CPU time of every thread of {@code pid} (schedstat's first field, ns). */
    static long cpuNanos(long pid) throws IOException {
        long total = 0;
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : tasks.toList()) {
                try {
                    String stat = Files.readString(task.resolve("schedstat"));
                    total += Long.parseLong(stat.substring(0, stat.indexOf(' ')));
                } catch (IOException | RuntimeException e) {
                    // a thread that ended meanwhile
                }
            }
        }
        return total;
    }

    /** On-CPU ns per thread of {@code pid}, keyed by tid and name. */
    static java.util.Map<String, Long> threadCpuNanos(long pid) throws IOException {
        java.util.Map<String, Long> cpu = new java.util.TreeMap<>();
        try (var tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : tasks.toList()) {
                try {
                    String stat = Files.readString(task.resolve("schedstat"));
                    cpu.put(task.getFileName() + " " + Files.readString(task.resolve("comm")).trim(),
                            Long.parseLong(stat.substring(0, stat.indexOf(' '))));
                } catch (IOException | RuntimeException e) {
                    // a thread that ended meanwhile
                }
            }
        }
        return cpu;
    }

    private static void report(Workload workload, String label, long[] nanos, long kicks, long busyCpu,
                               double idlePercent) {
        long[] sorted = nanos.clone();
        Arrays.sort(sorted);
        double mib = (double) nanos.length * workload.payloadBytes() / (1 << 20);
        System.out.printf(Locale.ROOT, "%-4s %-28s n=%d p50=%.1f p99=%.1f p99.9=%.1f max=%.0f µs  kicks=%.0f%%"
                        + "  cpu=%.2f s/MiB (%.1f µs/request)  idle-cpu=%.2f%%%n",
                workload.getClass().getSimpleName().toLowerCase(Locale.ROOT), label.isEmpty() ? "(defaults)" : label,
                nanos.length, percentile(sorted, 0.50), percentile(sorted, 0.99), percentile(sorted, 0.999),
                sorted[sorted.length - 1] / 1000.0, 100.0 * kicks / nanos.length, busyCpu / 1e9 / mib,
                busyCpu / 1000.0 / nanos.length, idlePercent);
    }

    private static double percentile(long[] sorted, double p) {
        int index = (int) Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1);
        return sorted[Math.max(0, index)] / 1000.0;
    }
}
