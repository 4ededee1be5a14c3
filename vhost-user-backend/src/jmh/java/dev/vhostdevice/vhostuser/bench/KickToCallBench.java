package dev.vhostdevice.vhostuser.bench;

import static dev.vhostdevice.vhostuser.protocol.FrontendRequest.*;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.le;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.memTable;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.u64;
import static dev.vhostdevice.vhostuser.testkit.MiniFrontend.vringState;

import dev.vhostdevice.vhostuser.device.DeviceQueue;
import dev.vhostdevice.vhostuser.device.VirtioDevice;
import dev.vhostdevice.vhostuser.protocol.VirtioFeatures;
import dev.vhostdevice.vhostuser.server.VhostUserServer;
import dev.vhostdevice.vhostuser.sys.EpollEvents;
import dev.vhostdevice.vhostuser.sys.Linux;
import dev.vhostdevice.vhostuser.testkit.MiniFrontend;
import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.memory.MemoryMapper;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
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
 * Requests per second through the whole engine data path: the driver (this thread) publishes chains and writes
 * the kick eventfd; the engine's worker wakes in epoll, drains the kick, the device completes each chain at once,
 * the used ring is published and the call eventfd written; the driver sleeps in epoll on the call fds until every
 * request is back. Everything runs over a real vhost-user session: Unix socket set-up, memfd guest RAM, eventfds.
 *
 * <p>Each invocation is {@value #REQUESTS} requests spread evenly over {@code queues} queues (ring size 256,
 * one 64-byte writable descriptor per chain). {@code eventIdx}: with VIRTIO_RING_F_EVENT_IDX the driver asks for
 * one call per batch (used_event) and kicks only when avail_event says so; without it, kicks and calls follow
 * the used/avail flags. Run with {@code -prof gc}: gc.alloc.rate.norm is bytes per request over both threads.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@OperationsPerInvocation(KickToCallBench.REQUESTS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class KickToCallBench {
    static final int REQUESTS = 128;
    private static final int RING = 256;
    private static final long QUEUE_STRIDE = 0x10000;
    private static final long AVAIL = 0x1000;
    private static final long USED = 0x2000;
    private static final long BUFFERS = 0x3000;
    private static final int BUFFER_BYTES = 64;
    private static final long RAM = 4 * QUEUE_STRIDE;
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.withOrder(ByteOrder.LITTLE_ENDIAN).varHandle();
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16_PLAIN = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Completes every chain as soon as it is popped, writing nothing. */
    public static final class CompleteAtOnceDevice implements VirtioDevice {
        private final Chain chain = new Chain();

        @Override
        public int queueCount() {
            return 4;
        }

        @Override
        public int maxQueueSize() {
            return RING;
        }

        @Override
        public long deviceFeatures() {
            return 0;
        }

        @Override
        public void handleQueue(DeviceQueue queue) {
            while (queue.pop(chain)) {
                queue.complete(chain);
            }
        }
    }

    @Param({"false", "true"})
    public boolean eventIdx;

    @Param({"1", "4"})
    public int queues;

    private final Linux linux = Linux.system();
    private Arena arena;
    private Path dir;
    private VhostUserServer server;
    private MiniFrontend frontend;
    private int memfd = -1;
    private MemorySegment ram;
    private int[] kick;
    private int[] call;
    private int epoll = -1;
    private EpollEvents ready;
    private int[] availIdx;
    private int perQueue;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        if (REQUESTS % queues != 0) {
            throw new IllegalArgumentException("queues must divide " + REQUESTS);
        }
        perQueue = REQUESTS / queues;
        arena = Arena.ofShared();
        dir = Files.createTempDirectory("kick-to-call");
        server = VhostUserServer.start(dir.resolve("bench.sock"), CompleteAtOnceDevice::new);
        frontend = new MiniFrontend(server.socketPath());
        memfd = MemoryMapper.system().createMemoryFile("bench-guest-ram", RAM);
        ram = MemoryMapper.system().map(memfd, 0, RAM, arena);
        kick = new int[queues];
        call = new int[queues];
        availIdx = new int[queues];
        epoll = linux.epollCreate();
        ready = new EpollEvents(8, arena);

        frontend.getU64(GET_FEATURES);
        frontend.send(SET_OWNER, new byte[0]);
        long features = (1L << VirtioFeatures.VIRTIO_F_VERSION_1)
                | (eventIdx ? 1L << VirtioFeatures.VIRTIO_RING_F_EVENT_IDX : 0);
        frontend.send(SET_FEATURES, u64(features)); // no PROTOCOL_FEATURES: rings are enabled at once
        frontend.send(SET_MEM_TABLE, memTable(0, RAM, MiniFrontend.UVA_BASE, 0), memfd);
        for (int q = 0; q < queues; q++) {
            long base = q * QUEUE_STRIDE;
            for (int d = 0; d < RING; d++) {
                long at = base + 16L * d;
                ram.set(U64, at, base + BUFFERS + (long) BUFFER_BYTES * d);
                ram.set(U32, at + 8, BUFFER_BYTES);
                ram.set(U16_PLAIN, at + 12, (short) VirtioRing.VIRTQ_DESC_F_WRITE);
            }
            kick[q] = linux.eventfd();
            call[q] = linux.eventfd();
            linux.epollAdd(epoll, call[q], Linux.EPOLLIN, q);
            frontend.send(SET_VRING_NUM, vringState(q, RING));
            frontend.send(SET_VRING_BASE, vringState(q, 0));
            frontend.send(SET_VRING_ADDR, le(40).putInt(q).putInt(0).putLong(MiniFrontend.UVA_BASE + base)
                    .putLong(MiniFrontend.UVA_BASE + base + USED).putLong(MiniFrontend.UVA_BASE + base + AVAIL)
                    .putLong(0).array());
            frontend.send(SET_VRING_CALL, u64(q), call[q]);
            frontend.send(SET_VRING_KICK, u64(q), kick[q]);
        }
        // A barrier: every set-up message above is processed once this is answered.
        frontend.getU64(GET_FEATURES);
        requests();
        for (int q = 0; q < queues; q++) {
            if (usedIdx(q) != perQueue || ram.get(U32, q * QUEUE_STRIDE + USED + 4) != 0) {
                throw new IllegalStateException("queue " + q + ": the first batch did not complete");
            }
        }
    }

    private int usedIdx(int q) {
        return Short.toUnsignedInt((short) U16.getAcquire(ram, q * QUEUE_STRIDE + USED + 2));
    }

    /** Publishes a batch on every queue, kicks where needed, and sleeps on the call fds until all are used. */
    @Benchmark
    public int requests() throws Exception {
        for (int q = 0; q < queues; q++) {
            long base = q * QUEUE_STRIDE;
            int old = availIdx[q];
            int next = (old + perQueue) & 0xFFFF;
            for (int k = 0; k < perQueue; k++) {
                int slot = (old + k) & (RING - 1);
                ram.set(U16_PLAIN, base + AVAIL + 4 + 2L * slot, (short) slot);
            }
            if (eventIdx) {
                // used_event: one call when the last request of the batch is used.
                U16.setRelease(ram, base + AVAIL + 4 + 2L * RING, (short) (next - 1));
            }
            U16.setRelease(ram, base + AVAIL + 2, (short) next);
            availIdx[q] = next;
            VarHandle.fullFence(); // publish the index before reading the device's kick suppression
            boolean kickNeeded;
            if (eventIdx) {
                int availEvent = Short.toUnsignedInt((short) U16.getAcquire(ram, base + USED + 4 + 8L * RING));
                kickNeeded = VirtioRing.needEvent(availEvent, next, old);
            } else {
                kickNeeded = (Short.toUnsignedInt((short) U16.getAcquire(ram, base + USED)) & 1) == 0;
            }
            if (kickNeeded) {
                linux.writeEventfd(kick[q], 1);
            }
        }
        for (int q = 0; q < queues; q++) {
            while (usedIdx(q) != availIdx[q]) {
                if (linux.epollWait(epoll, ready, 1000) == 0 && usedIdx(q) != availIdx[q]) {
                    throw new IllegalStateException("queue " + q + ": no call within 1 s");
                }
                for (int c = 0; c < queues; c++) {
                    linux.readEventfd(call[c]);
                }
            }
        }
        return availIdx[0];
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        frontend.close();
        server.close();
        for (int q = 0; q < queues; q++) {
            linux.close(kick[q]);
            linux.close(call[q]);
        }
        linux.close(epoll);
        linux.close(memfd);
        arena.close();
        Files.deleteIfExists(dir.resolve("bench.sock"));
        Files.deleteIfExists(dir);
    }
}
