package dev.vhostdevice.scmi.bench;

import dev.vhostdevice.scmi.FakeAccelerometer;
import dev.vhostdevice.scmi.ScmiDevice;
import dev.vhostdevice.scmi.ScmiHeader;
import dev.vhostdevice.scmi.ScmiPlatform;
import dev.vhostdevice.scmi.SensorProtocol;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * SENSOR_READING_GET of the fake 3-axis accelerometer through vhost-device-scmi: the device in its real
 * vhost-user server on a Unix socket, the test front-end keeping {@link #BATCH} commands in flight per kick
 * (each a 12-byte request and Linux's 136-byte response buffer), re-publishing the same descriptors so the
 * driver side costs next to nothing. Each op is one command answered (header, status, 3 × value and timestamp).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class SensorReadingBench {
    static final int BATCH = 32;

    private Path dir;
    private VhostUserServer server;
    private TestFrontend frontend;
    private FrontendQueue queue;
    private DriverQueue driver;
    private final int[] heads = new int[BATCH];

    @Setup(Level.Trial)
    public void start() throws Exception {
        dir = Files.createTempDirectory("scmi-bench");
        server = VhostUserServer.start(dir.resolve("scmi.sock"), () -> new ScmiDevice(new ScmiPlatform(
                new SensorProtocol(List.of(new FakeAccelerometer("accel0")), System::nanoTime), List.of())));
        frontend = TestFrontend.connect(dir.resolve("scmi.sock"));
        frontend.ram();
        frontend.negotiateLikeQemu10(new QemuDevice(64, 2, null, 0, 1, false));
        queue = frontend.queue(0);
        driver = queue.driver();
        for (int i = 0; i < BATCH; i++) {
            long request = frontend.ram().allocate(12, 8);
            driver.write(request, ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN)
                    .putInt(ScmiHeader.of(SensorProtocol.ID, SensorProtocol.SENSOR_READING_GET, 0, i))
                    .putInt(0).putInt(0).array());
            long response = frontend.ram().allocate(136, 8);
            heads[i] = driver.prepare(DriverQueue.Buffer.readable(request, 12),
                    DriverQueue.Buffer.writable(response, 136));
        }
    }

    /** One kick for a batch of commands, then wait until the device has answered them all. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int readingGet() throws Exception {
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

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        frontend.close();
        server.close();
        Files.deleteIfExists(dir.resolve("scmi.sock"));
        Files.deleteIfExists(dir);
    }
}
