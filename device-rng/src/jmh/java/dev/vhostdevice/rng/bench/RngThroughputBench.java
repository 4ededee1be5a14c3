package dev.vhostdevice.rng.bench;

import dev.vhostdevice.rng.FileEntropySource;
import dev.vhostdevice.rng.RngDevice;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Bytes per second vhost-device-rng delivers to a front-end, against the raw read rate of the same source
 * ({@code /dev/urandom}). The device runs in its real vhost-user server on a Unix socket; the test front-end
 * keeps {@link #BATCH} requests of {@code requestBytes} in flight per kick, re-publishing the same descriptors so
 * that the driver side costs next to nothing. Multiply ops/s by {@code requestBytes} for bytes per second.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class RngThroughputBench {
    static final int BATCH = 32;

    @Param({"64", "4096"})
    int requestBytes;

    private Path dir;
    private VhostUserServer server;
    private TestFrontend frontend;
    private FrontendQueue queue;
    private DriverQueue driver;
    private final int[] heads = new int[BATCH];
    private FileChannel raw;
    private ByteBuffer rawBuffer;

    @Setup(Level.Trial)
    public void start() throws Exception {
        dir = Files.createTempDirectory("rng-bench");
        FileEntropySource source = FileEntropySource.open(Path.of("/dev/urandom"));
        server = VhostUserServer.start(dir.resolve("rng.sock"), () -> new RngDevice(source, Long.MAX_VALUE, 65536));
        frontend = TestFrontend.connect(dir.resolve("rng.sock"));
        frontend.ram(); // default guest RAM, before the memory table goes out
        frontend.negotiateLikeQemu10(QemuDevice.rng().withQueueSize(64));
        queue = frontend.queue(0);
        driver = queue.driver();
        for (int i = 0; i < BATCH; i++) {
            long buffer = frontend.ram().allocate(requestBytes, 64);
            heads[i] = driver.prepare(DriverQueue.Buffer.writable(buffer, requestBytes));
        }
        raw = FileChannel.open(Path.of("/dev/urandom"), StandardOpenOption.READ);
        rawBuffer = ByteBuffer.allocateDirect(requestBytes);
    }

    /** One kick for a batch of requests, then wait until the device has answered them all. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int device() throws Exception {
        int target = (driver.usedIdx() + BATCH) & 0xFFFF;
        for (int head : heads) {
            driver.publish(head);
        }
        queue.kick();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        int used;
        while ((used = driver.usedIdx()) != target) {
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("device stalled at used idx " + used + ", expected " + target);
            }
            Thread.onSpinWait();
        }
        return used;
    }

    /** The same source read directly, request by request, into a direct buffer. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int rawSource() throws IOException {
        int total = 0;
        for (int i = 0; i < BATCH; i++) {
            rawBuffer.clear();
            total += raw.read(rawBuffer);
        }
        return total;
    }

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        frontend.close();
        server.close();
        raw.close();
        Files.deleteIfExists(dir.resolve("rng.sock"));
        Files.deleteIfExists(dir);
    }
}
