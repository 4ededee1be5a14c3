package dev.vhostdevice.gpio.bench;

import dev.vhostdevice.gpio.GpioDevice;
import dev.vhostdevice.gpio.SimulatedChip;
import dev.vhostdevice.vhostuser.device.EmbeddedDeviceHost;
import dev.vhostdevice.vhostuser.frontend.FrontendQueue;
import dev.vhostdevice.vhostuser.frontend.GuestRam;
import dev.vhostdevice.vhostuser.frontend.QemuDevice;
import dev.vhostdevice.vhostuser.frontend.TestFrontend;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.virtqueue.SplitQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.GuestMemory;
import dev.vhostdevice.virtqueue.testing.DriverQueue;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.function.LongUnaryOperator;
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
 * GET_VALUE and SET_VALUE requests through the gpio device on the simulated chip {@code s8}: line 0 an output
 * toggled by SET_VALUE, line 1 (its wired partner) read by GET_VALUE, alternately, {@link #BATCH} requests per
 * kick (the whole 64-entry ring of two-descriptor chains). {@code embedded}: the device in-process behind an
 * {@link EmbeddedDeviceHost}, kicked on the calling thread (the device's own cost per request). {@code socket}:
 * the device in its real vhost-user server, kicked over an eventfd by the test front-end, which spins until the
 * batch is used (what a guest sees, minus the guest). The driver side re-publishes the same descriptors, so it
 * allocates nothing; gc.alloc.rate.norm is the device's.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class GpioRequestBench {
    static final int BATCH = 32;
    private static final int QUEUE_SIZE = 64;

    @Param({"embedded", "socket"})
    String path;

    private final int[] heads = new int[BATCH];
    private DriverQueue driver;
    private Runnable kick;
    // embedded
    private GuestMemory memory;
    private EmbeddedDeviceHost host;
    // socket
    private Path dir;
    private VhostUserServer server;
    private TestFrontend frontend;

    @Setup(Level.Trial)
    public void start() throws Exception {
        LongUnaryOperator allocate;
        if (path.equals("embedded")) {
            memory = GuestMemory.allocate(0, 1 << 20);
            driver = DriverQueue.layout(memory, QUEUE_SIZE, 0x1000);
            DriverQueue events = DriverQueue.layout(memory, QUEUE_SIZE, 0x8000);
            SplitQueue requests = new SplitQueue("requests", GpioDevice.MAX_QUEUE_SIZE);
            SplitQueue eventQueue = new SplitQueue("events", GpioDevice.MAX_QUEUE_SIZE);
            driver.configure(requests);
            events.configure(eventQueue);
            requests.activate(memory);
            eventQueue.activate(memory);
            host = new EmbeddedDeviceHost(new GpioDevice(new SimulatedChip(8, Linux.system())),
                    new SplitQueue[] {requests, eventQueue}, q -> { }, null, new EmbeddedDeviceHost.FdWatcher() {
                        @Override
                        public void watch(int fd, int events, int token) {
                        }

                        @Override
                        public void unwatch(int fd) {
                        }
                    });
            host.setFeatures(1L << VirtioRing.VIRTIO_F_VERSION_1);
            long[] next = {0x20000};
            allocate = length -> {
                long at = next[0];
                next[0] += 64;
                return at;
            };
            kick = () -> host.kick(GpioDevice.REQUEST_QUEUE);
        } else {
            dir = Files.createTempDirectory("gpio-bench");
            server = VhostUserServer.start(dir.resolve("gpio.sock"),
                    () -> new GpioDevice(new SimulatedChip(8, Linux.system())));
            frontend = TestFrontend.connect(dir.resolve("gpio.sock"));
            GuestRam ram = frontend.ram(); // default guest RAM, before the memory table goes out
            frontend.negotiateLikeQemu10(QemuDevice.gpio().withQueueSize(QUEUE_SIZE));
            FrontendQueue queue = frontend.queue(GpioDevice.REQUEST_QUEUE);
            driver = queue.driver();
            allocate = length -> ram.allocate(length, 8);
            kick = () -> {
                try {
                    queue.kick();
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            };
        }
        // Line 0 an output at 0, through the device like any request.
        int[] setup = {prepare(allocate, GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE, 0, 0),
            prepare(allocate, GpioDevice.VIRTIO_GPIO_MSG_SET_DIRECTION, 0, GpioDevice.VIRTIO_GPIO_DIRECTION_OUT)};
        run(setup);
        driver.pollUsed(); // frees their descriptors: the batch takes the whole ring
        driver.pollUsed();
        for (int i = 0; i < BATCH; i++) {
            heads[i] = (i & 1) == 0
                    ? prepare(allocate, GpioDevice.VIRTIO_GPIO_MSG_SET_VALUE, 0, (i >>> 1) & 1)
                    : prepare(allocate, GpioDevice.VIRTIO_GPIO_MSG_GET_VALUE, 1, 0);
        }
    }

    private int prepare(LongUnaryOperator allocate, int type, int line, int value) {
        long request = allocate.applyAsLong(GpioDevice.REQUEST_SIZE);
        long response = allocate.applyAsLong(GpioDevice.RESPONSE_SIZE);
        driver.write(request, new byte[] {(byte) type, 0, (byte) line, 0, (byte) value, 0, 0, 0});
        return driver.prepare(DriverQueue.Buffer.readable(request, GpioDevice.REQUEST_SIZE),
                DriverQueue.Buffer.writable(response, GpioDevice.RESPONSE_SIZE));
    }

    private int run(int[] chains) {
        int target = (driver.usedIdx() + chains.length) & 0xFFFF;
        for (int head : chains) {
            driver.publish(head);
        }
        kick.run();
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

    /** One kick for 16 SET_VALUE and 16 GET_VALUE requests, until all are used; the score is per request. */
    @Benchmark
    @OperationsPerInvocation(BATCH)
    public int requests() {
        return run(heads);
    }

    @TearDown(Level.Trial)
    public void stop() throws Exception {
        if (host != null) {
            host.close();
            memory.close();
        } else {
            frontend.close();
            server.close();
            Files.deleteIfExists(dir.resolve("gpio.sock"));
            Files.deleteIfExists(dir);
        }
    }
}
