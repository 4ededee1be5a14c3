package dev.vhostdevice.virtqueue.bench;

import static dev.vhostdevice.virtqueue.bench.BenchRing.check;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.readable;
import static dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer.writable;

import dev.vhostdevice.virtqueue.Chain;
import dev.vhostdevice.virtqueue.PackedQueue;
import dev.vhostdevice.virtqueue.VirtioRing;
import dev.vhostdevice.virtqueue.testing.DriverQueue.Buffer;
import dev.vhostdevice.virtqueue.testing.GuestAllocator;
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
 * {@link ChainBench}'s round trips on a packed ring: the same shapes (1-desc, 3-desc, indirect-16), the same
 * 256-entry queue, the same device work ({@link ChainBench#serve}), the same batch of {@value #BATCH} with one
 * notification decision, and the same per-chain figures, so the two layouts compare line by line. The driver
 * writes each chain's descriptors into the ring on every publish, which a packed driver must do.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {
        "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow", "-Xms512m", "-Xmx512m"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
public class PackedChainBench {
    static final int BATCH = ChainBench.BATCH;

    @Param({"1-desc", "3-desc", "indirect-16"})
    public String shape;

    @Param({BenchRing.ALLOCATE, BenchRing.MEMFD})
    public String memory;

    private PackedBenchRing ring;
    private PackedQueue queue;
    private final Chain chain = new Chain();
    private final byte[] scratch = new byte[64 * 1024];

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        ring = new PackedBenchRing(memory, ChainBench.QUEUE_SIZE, BATCH);
        queue = ring.queue;
        GuestAllocator data = new GuestAllocator(BenchRing.DATA, BenchRing.MEMORY_BYTES - BenchRing.DATA);
        for (int id = 0; id < BATCH; id++) {
            switch (shape) {
                case "1-desc" -> ring.prepare(id, writable(data.allocate(ChainBench.RESPONSE, 16), ChainBench.RESPONSE));
                case "3-desc" -> ring.prepare(id, header(data),
                        readable(data.allocate(ChainBench.PAYLOAD, 64), ChainBench.PAYLOAD),
                        writable(data.allocate(ChainBench.RESPONSE, 16), ChainBench.RESPONSE));
                case "indirect-16" -> {
                    Buffer[] table = new Buffer[16];
                    table[0] = header(data);
                    for (int b = 1; b < 15; b++) {
                        table[b] = readable(data.allocate(ChainBench.PAYLOAD, 64), ChainBench.PAYLOAD);
                    }
                    table[15] = writable(data.allocate(ChainBench.RESPONSE, 16), ChainBench.RESPONSE);
                    long tableAddress = BenchRing.TABLES + (long) id * 16 * VirtioRing.DESCRIPTOR_SIZE;
                    ring.prepareIndirect(id, tableAddress, table);
                }
                default -> throw new IllegalArgumentException("shape: " + shape);
            }
        }
        int descriptorsPerChain = switch (shape) {
            case "1-desc" -> 1;
            case "3-desc" -> 3;
            default -> 17;
        };
        long readablePerChain = switch (shape) {
            case "1-desc" -> 0;
            case "3-desc" -> ChainBench.HEADER + ChainBench.PAYLOAD;
            default -> ChainBench.HEADER + 14 * ChainBench.PAYLOAD;
        };
        // Prove the timed code does what it says, over several laps so that both wrap counters flip.
        for (int round = 0; round < 8; round++) {
            long expected = 0;
            for (int id = 0; id < BATCH; id++) {
                ring.publish(id);
                check(queue.pop(chain), "pop");
                check(chain.isValid(), "valid chain: " + chain);
                check(chain.bufferId() == id, "id");
                check(chain.descriptorCount() == descriptorsPerChain, "descriptors: " + chain.descriptorCount());
                check(chain.readableBytes() == readablePerChain, "readable bytes");
                check(chain.writableBytes() == ChainBench.RESPONSE, "writable bytes");
                ChainBench.serve(chain, scratch);
                check(chain.bytesWritten() == ChainBench.RESPONSE, "bytes written");
                queue.addUsed(chain);
                expected += BenchRing.usedChecksum(id, ChainBench.RESPONSE);
            }
            queue.needsNotification();
            check(ring.consumeUsed() == expected, "used descriptors");
            check(queue.inFlightCount() == 0, "nothing in flight");
        }
    }

    private static Buffer header(GuestAllocator data) {
        return readable(data.allocate(ChainBench.HEADER, 16), ChainBench.HEADER);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        ring.close();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long batch() {
        PackedBenchRing r = ring;
        PackedQueue q = queue;
        Chain c = chain;
        for (int i = 0; i < BATCH; i++) {
            r.publish(i);
        }
        long sink = 0;
        while (q.pop(c)) {
            sink += ChainBench.serve(c, scratch);
            q.addUsed(c);
        }
        if (q.needsNotification()) {
            sink++;
        }
        return sink + r.consumeUsed();
    }

    @Benchmark
    public long single() {
        PackedBenchRing r = ring;
        PackedQueue q = queue;
        Chain c = chain;
        r.publish(0);
        q.pop(c);
        long sink = ChainBench.serve(c, scratch);
        q.addUsed(c);
        if (q.needsNotification()) {
            sink++;
        }
        return sink + r.consumeUsed();
    }
}
