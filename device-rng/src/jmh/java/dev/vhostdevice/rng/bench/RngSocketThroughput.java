package dev.vhostdevice.rng.bench;

import dev.vhostdevice.vhostuser.sys.Linux;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * vhost-device-rng's throughput as a front-end sees it ({@code scripts/rng-socket-bench}): the daemon started
 * from its command line, a front-end over the real socket keeping {@code --in-flight} single-descriptor
 * requests of {@code --bytes} in flight on a ring of {@code --queue-size} (each used head re-posted at once,
 * kicks and interrupts as the device and driver ask for them), against {@code read(2)}s of the same size from
 * {@code /dev/urandom} in this process. Rounds alternate (raw, device, raw, device, ...) so that both see the
 * same machine; the first round of each is a warm-up. Prints each round and the median of the ratios, and the
 * CPU time per request: of this thread for a raw read, of all the daemon's threads for a served request. On a
 * shared machine the rates follow the other load (and a daemon with two threads busy gets more of the CPUs than
 * one raw reader), the CPU times much less.
 *
 * <pre>{@code RngSocketThroughput [--rounds 5] [--seconds 1] -- java -jar vhost-device-rng.jar --socket-path {}}</pre>
 */
public final class RngSocketThroughput {
    private RngSocketThroughput() {
    }

    public static void main(String[] args) throws Exception {
        int rounds = 5;
        double seconds = 1;
        int queueSize = 64;
        int inFlight = 64;
        int bytes = 4096;
        int i = 0;
        for (; i < args.length && !args[i].equals("--"); i++) {
            switch (args[i]) {
                case "--rounds" -> rounds = Integer.parseInt(args[++i]);
                case "--seconds" -> seconds = Double.parseDouble(args[++i]);
                case "--queue-size" -> queueSize = Integer.parseInt(args[++i]);
                case "--in-flight" -> inFlight = Integer.parseInt(args[++i]);
                case "--bytes" -> bytes = Integer.parseInt(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        List<String> command = List.of(args).subList(Math.min(i + 1, args.length), args.length);
        if (command.isEmpty()) {
            throw new IllegalArgumentException("usage: RngSocketThroughput [options] -- COMMAND ({} = socket)");
        }
        long nanos = (long) (seconds * 1e9);
        Path dir = Files.createTempDirectory("rng-socket-bench");
        Path socket = dir.resolve("rng.sock");
        double[] ratios = new double[rounds];
        double[] device = new double[rounds];
        double[] raw = new double[rounds];
        double[] rawCpu = new double[rounds];
        double[] deviceCpu = new double[rounds];
        java.lang.management.ThreadMXBean cpuClock = java.lang.management.ManagementFactory.getThreadMXBean();
        Linux linux = Linux.system();
        int urandom = linux.openReadOnly(Path.of("/dev/urandom"));
        try (Arena arena = Arena.ofConfined();
                DaemonProcess daemon = DaemonProcess.start(command, socket, dir.resolve("stderr"));
                RngStream stream = RngStream.connect(socket, queueSize, inFlight, bytes)) {
            MemorySegment buffer = arena.allocate(bytes, 4096);
            for (int round = -1; round < rounds; round++) {
                long cpu0 = cpuClock.getCurrentThreadCpuTime();
                long rawBytes = rawReads(linux, urandom, buffer, bytes, nanos);
                double rawUs = (cpuClock.getCurrentThreadCpuTime() - cpu0) / 1e3 / (rawBytes / bytes);
                long daemon0 = DaemonProcess.cpuNanos(daemon.process.pid());
                long kicks0 = stream.kicks;
                long sleeps0 = stream.sleeps;
                long deviceBytes = stream.run(nanos);
                long daemonCpu = DaemonProcess.cpuNanos(daemon.process.pid()) - daemon0;
                double deviceUs = daemonCpu / 1e3 / (deviceBytes / bytes);
                double rawMBs = rawBytes / seconds / 1e6;
                double deviceMBs = deviceBytes / seconds / 1e6;
                long requests = deviceBytes / bytes;
                String label = round < 0 ? "warm-up" : "round " + round;
                System.out.printf("%s: raw %.0f MB/s (%.2f µs CPU per read), device %.0f MB/s (%.2f µs daemon CPU per"
                        + " request; %.3f kicks and %.3f front-end sleeps per request), device/raw %.3f%n", label,
                        rawMBs, rawUs, deviceMBs, deviceUs, (stream.kicks - kicks0) / (double) requests,
                        (stream.sleeps - sleeps0) / (double) requests, deviceMBs / rawMBs);
                if (round >= 0) {
                    rawCpu[round] = rawUs;
                    deviceCpu[round] = deviceUs;
                    raw[round] = rawMBs;
                    device[round] = deviceMBs;
                    ratios[round] = deviceMBs / rawMBs;
                }
            }
            System.out.printf("daemon: %.1f MiB RSS, %d threads at the end%n", daemon.rssKib() / 1024.0,
                    daemon.threads());
        } finally {
            linux.close(urandom);
            Files.deleteIfExists(dir.resolve("stderr"));
            Files.deleteIfExists(socket);
            Files.deleteIfExists(dir);
        }
        Arrays.sort(rawCpu);
        Arrays.sort(deviceCpu);
        Arrays.sort(ratios);
        Arrays.sort(device);
        Arrays.sort(raw);
        System.out.printf("%d × %d B in flight, ring of %d, %d rounds of %.1f s: device median %.0f MB/s"
                + " (%.0f–%.0f),"
                + " raw median %.0f MB/s (%.0f–%.0f), device/raw median %.3f (%.3f–%.3f)%n", inFlight, bytes,
                queueSize, rounds, seconds, device[rounds / 2], device[0], device[rounds - 1], raw[rounds / 2], raw[0],
                raw[rounds - 1], ratios[rounds / 2], ratios[0], ratios[rounds - 1]);
        System.out.printf("CPU per request: raw read median %.2f µs, daemon median %.2f µs; raw/daemon %.3f%n",
                rawCpu[rounds / 2], deviceCpu[rounds / 2], rawCpu[rounds / 2] / deviceCpu[rounds / 2]);
    }

    /** Bytes read from {@code fd} in {@code nanos} by {@code read(2)}s of {@code bytes}. */
    private static long rawReads(Linux linux, int fd, MemorySegment buffer, int bytes, long nanos) throws Exception {
        long total = 0;
        long end = System.nanoTime() + nanos;
        while (System.nanoTime() - end < 0) {
            total += linux.read(fd, buffer, bytes);
        }
        return total;
    }
}
